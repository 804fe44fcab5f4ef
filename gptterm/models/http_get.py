"""The GET that carries a model's bytes: the standard library's http.client, read in large pieces.

Measured on a 268 MB file from 127.0.0.1: reading the body through httpx2
(huggingface_hub's client, 64 KiB per socket read, an h11 event per read)
costs 0.17-0.28 s of CPU; ``HTTPResponse.read1(1 MiB)`` costs 0.05 s. With
the sha256 (0.19 s) that decides whether a pull keeps up with curl, so the
metadata requests go through huggingface_hub and only this one does not.

What a client library would otherwise do is here, small: redirects (the
``Authorization`` header is dropped when one leaves the origin, as
huggingface_hub and browsers do), proxies from the environment
(``HTTPS_PROXY``/``NO_PROXY``, via ``urllib.request``), and certificates
from the system store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured).
"""

from __future__ import annotations

import http.client
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urljoin, urlsplit

MAX_REDIRECTS = 5
READ_SIZE = 1 << 20  # per read: at most one socket read, so progress and cancel stay prompt


class HTTPStatusError(Exception):
    def __init__(self, status: int, url: str, retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status} for {url}")
        self.status = status
        self.url = url
        self.retry_after = retry_after


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(parts.scheme)


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    url: str
    _raw: http.client.HTTPResponse
    _conn: http.client.HTTPConnection

    def readinto(self, buffer: memoryview) -> int:
        """Up to ``len(buffer)`` bytes of the body into ``buffer``, with one socket read; 0 at its end.

        Into the caller's buffer, not a new bytes object per read: a fresh
        process otherwise maps and faults in a new 1 MiB block for every read.
        """
        raw = self._raw
        if raw.chunked or raw.length is None:  # no Content-Length: let http.client find the end
            data = raw.read1(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        if raw.length == 0:
            return 0
        assert raw.fp is not None
        n = raw.fp.readinto1(buffer[: raw.length])
        if n == 0:  # the server promised more than it sent
            raise http.client.IncompleteRead(b"", raw.length)
        raw.length -= n
        return n

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives, in pieces of at most READ_SIZE bytes."""
        buffer = memoryview(bytearray(READ_SIZE))
        while n := self.readinto(buffer):
            yield bytes(buffer[:n])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_context: ssl.SSLContext | None = None


def _ssl_context() -> ssl.SSLContext:
    global _context
    if _context is None:
        _context = ssl.create_default_context()
    return _context


def _connect(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """A connection for ``url`` (through the environment's proxy, if any) and the request target."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and urllib.request.proxy_bypass(host):
        proxy = None
    if parts.scheme == "https":
        if proxy:
            p = urlsplit(proxy if "://" in proxy else "http://" + proxy)
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                p.hostname or "", p.port or 80, timeout=timeout, context=_ssl_context())
            conn.set_tunnel(host, port or 443)
        else:
            conn = http.client.HTTPSConnection(host, port or 443, timeout=timeout, context=_ssl_context())
        return conn, target
    if parts.scheme != "http":
        raise ValueError(f"cannot download from a {parts.scheme!r} URL")
    if proxy:
        p = urlsplit(proxy if "://" in proxy else "http://" + proxy)
        return http.client.HTTPConnection(p.hostname or "", p.port or 80, timeout=timeout), url
    return http.client.HTTPConnection(host, port or 80, timeout=timeout), target


def get(url: str, headers: dict[str, str], *, timeout: float) -> Response:
    """GET ``url``, following redirects; the caller reads the body and closes the response.

    A status of 400 or more raises HTTPStatusError (the response is closed).
    """
    headers = dict(headers)
    start = origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        conn, target = _connect(url, timeout)
        try:
            conn.request("GET", target, headers=headers)
            raw = conn.getresponse()
        except BaseException:
            conn.close()
            raise
        if raw.status in (301, 302, 303, 307, 308) and raw.getheader("Location"):
            location = urljoin(url, raw.getheader("Location", ""))
            conn.close()
            if origin(location) != start:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            url = location
            continue
        if raw.status >= 400:
            retry_after = raw.getheader("Retry-After")
            conn.close()
            raise HTTPStatusError(raw.status, url, retry_after)
        return Response(raw.status, raw.headers, url, raw, conn)
    raise HTTPStatusError(310, url)  # too many redirects
