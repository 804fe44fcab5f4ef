"""HTTP to an OpenAI-compatible server: auth, bounded retries, SSE, one-line errors.

Everything that can go wrong between gptterm and a server becomes a
``RemoteError`` (or ``ModelError`` / ``ContextOverflowError``) whose message
names the server and what to do. The API key travels only in the
Authorization header; no message, log or exception text ever contains it.
"""

from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx

from gptterm import retry
from gptterm.errors import GpttermError, ModelError, RemoteContextError, RemoteError


class StreamDropped(RemoteError):
    """The event stream ended before the reply did; ``reason`` says how."""

    def __init__(self, server: str, reason: str):
        super().__init__(f"the connection to the server at {server} dropped mid-reply ({reason})")
        self.server = server
        self.reason = reason


def normalize_base_url(url: str) -> str:
    """The API base URL: ``http://host:8000`` becomes ``http://host:8000/v1``; other paths are kept."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteError(f"not a server URL: {display_url(url)!r} (expected http://HOST:PORT/v1)")
    path = parts.path.rstrip("/")
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def display_url(url: str) -> str:
    """``url`` without user:password, for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def server_root(base: str) -> str:
    """Where llama.cpp-style extras live (``/tokenize``, ``/props``): the base without ``/v1``."""
    return base.removesuffix("/v1")


def _error_text(response: httpx.Response) -> str:
    """The server's own explanation from an error body, shortened to one line."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        text = response.text.strip()
        return "" if "<" in text[:1] else " ".join(text.split())[:200]
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err.get("code")
        if isinstance(err, list):  # FastAPI validation details
            err = "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in err)
        if err:
            return " ".join(str(err).split())[:300]
    return ""


def _retry_after(response: httpx.Response) -> float | None:
    return retry.parse_retry_after(response.headers.get("retry-after"))


_CTX_NUMBER = re.compile(r"(?:maximum context length is|context (?:window|size|length)(?: is| of)?)\D{0,20}(\d+)", re.IGNORECASE)


class ServerAPI:
    """One server: JSON requests and event streams, retried where that is safe."""

    def __init__(self, url: str, *, api_key: str | None = None, key_source: str | None = None,
                 key_hint: str = "GPTTERM_API_KEY", timeout: float = 600.0, retries: int = 3,
                 retry_delay: float = 0.5, transport: httpx.BaseTransport | None = None):
        """``transport``: httpx's (a test's scripted server); None for the network."""
        self.base = normalize_base_url(url)
        self.root = server_root(self.base)
        self.shown = display_url(self.base)
        self.key_source = key_source
        self.key_hint = key_hint
        self.policy = retry.Policy(max(0, retries), max(0.0, retry_delay))
        self._key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            follow_redirects=True,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def url(self, path: str, *, root: bool = False) -> str:
        return (self.root if root else self.base) + path

    # -- errors -----------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """``text`` without the API key, should a server echo it back."""
        return text.replace(self._key, "***") if self._key else text

    def transport_error(self, err: Exception) -> RemoteError:
        if isinstance(err, httpx.ConnectTimeout):
            return RemoteError(f"cannot connect to the server at {self.shown}: no answer within the connect timeout")
        if isinstance(err, httpx.ConnectError):
            reason = str(err).split("]")[-1].strip() or type(err).__name__
            return RemoteError(f"cannot connect to the server at {self.shown} ({reason}): is it running, "
                               "and is the URL right?")
        if isinstance(err, httpx.TimeoutException):
            return RemoteError(f"the server at {self.shown} sent nothing for too long (timeout)")
        if isinstance(err, httpx.UnsupportedProtocol):
            return RemoteError(f"not a server URL: {self.shown}")
        return RemoteError(f"the connection to the server at {self.shown} failed: {type(err).__name__}: {err}")

    def status_error(self, response: httpx.Response, path: str, *, tries: int = 1) -> GpttermError:
        code = response.status_code
        phrase = f"{code} {response.reason_phrase}".strip()
        detail = self.scrub(_error_text(response))
        said = f": {detail}" if detail else ""
        if code in (401, 403):
            if self.key_source:
                fix = f"the API key from {self.key_source} was not accepted"
            else:
                fix = f"no API key was sent: put one in {self.key_hint}"
            return RemoteError(f"the server at {self.shown} refused the request ({phrase}){said}; {fix}")
        if code == 404 and path == "/models":
            return RemoteError(f"no OpenAI-compatible API at {self.shown} (404 on /models): check the URL, "
                               "which usually ends in /v1")
        if code == 404 or "model_not_found" in response.text[:2000]:
            return ModelError(f"the server at {self.shown} has no such model ({phrase}){said}")
        if code in (400, 413) and ("context" in detail.lower() or "too long" in detail.lower()):
            match = _CTX_NUMBER.search(detail)
            return RemoteContextError(f"the server says the prompt does not fit its context{said}",
                                      int(match.group(1)) if match else None)
        if retry.transient(code):
            again = f" after {tries} tries" if tries > 1 else ""
            what = "is busy" if code == 429 else "failed"
            return RemoteError(f"the server at {self.shown} {what} ({phrase}){again}{said}; try again later")
        return RemoteError(f"the server at {self.shown} rejected the request to {path} ({phrase}){said}")

    # -- requests -----------------------------------------------------------------

    def _retry_wait(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying ``response``'s request; None: it is final (see gptterm.retry)."""
        if not retry.transient(response.status_code):
            return None
        return self.policy.delay(attempt, _retry_after(response))

    def request_json(self, method: str, path: str, body: Any = None, *, root: bool = False,
                     timeout: float | None = None) -> Any:
        """A JSON request, retried on transient statuses; the decoded JSON answer."""
        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        attempt = 0
        while True:
            try:
                response = self._client.request(method, self.url(path, root=root), json=body, **kwargs)
            except httpx.HTTPError as err:
                raise self.transport_error(err) from None
            wait = self._retry_wait(attempt, response)
            if wait is not None:
                retry.sleep(wait)
                attempt += 1
                continue
            if response.status_code >= 400:
                raise self.status_error(response, path, tries=attempt + 1)
            try:
                return response.json()
            except (ValueError, UnicodeDecodeError):
                kind = response.headers.get("content-type", "no content type").split(";")[0]
                raise RemoteError(f"the answer of {self.shown} to {path} is not JSON ({kind}): "
                                  "is this an OpenAI-compatible server?") from None

    def probe_json(self, method: str, path: str, body: Any = None, *, root: bool = True) -> Any | None:
        """An optional endpoint: its JSON, or None when the server lacks it (any failure)."""
        try:
            response = self._client.request(method, self.url(path, root=root), json=body, timeout=10.0)
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        try:
            return response.json()
        except (ValueError, UnicodeDecodeError):
            return None

    @contextmanager
    def events(self, path: str, body: dict[str, Any], *, stop: threading.Event,
               on_open: Callable[[httpx.Response], None] | None = None) -> Iterator[Iterator[dict[str, Any]]]:
        """POST ``body`` with ``stream: true``; yields an iterator of decoded event objects.

        Retries transient statuses before the stream starts (nothing was
        received yet, so a retry loses nothing). ``on_open(response)`` is called once the
        stream is open, so that another thread can shut its socket to stop it.
        The iterator ends at ``[DONE]``; a stream that ends without it raises
        ``StreamDropped``.
        """
        attempt = 0
        while True:
            if stop.is_set():
                yield iter(())
                return
            try:
                with self._client.sse(self.url(path), method="POST", json=body) as source:
                    response = source.response
                    wait = self._retry_wait(attempt, response)
                    if wait is not None:
                        response.read()
                        if not retry.sleep(wait, stop):
                            yield iter(())
                            return
                        attempt += 1
                        continue
                    if response.status_code >= 400:
                        response.read()
                        raise self.status_error(response, path, tries=attempt + 1)
                    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if kind != "text/event-stream":
                        response.read()
                        detail = self.scrub(_error_text(response)) if kind == "application/json" else ""
                        raise RemoteError(f"the answer of {self.shown} to {path} is not an event stream "
                                          f"({kind or 'no content type'}){': ' + detail if detail else ''}")
                    if on_open is not None:
                        on_open(response)
                    yield self._decode(source, path)
                    return
            except httpx.HTTPError as err:
                raise self.transport_error(err) from None

    def _decode(self, source: Any, path: str) -> Iterator[dict[str, Any]]:
        try:
            for event in source:
                data = event.data.strip()
                if not data:
                    continue
                if data == "[DONE]":
                    return
                try:
                    obj = json.loads(data)
                except ValueError:
                    raise RemoteError(f"the server at {self.shown} sent an event that is not JSON: "
                                      f"{self.scrub(data[:80])!r}") from None
                if not isinstance(obj, dict):
                    raise RemoteError(f"the server at {self.shown} sent an unexpected event: {self.scrub(data[:80])!r}")
                if "error" in obj and not obj.get("choices"):
                    err = obj["error"]
                    message = err.get("message") if isinstance(err, dict) else err
                    raise RemoteError(f"the server at {self.shown} reported an error mid-reply: "
                                      f"{self.scrub(str(message))}")
                yield obj
        except httpx.SSEError as err:
            raise RemoteError(f"the server at {self.shown} sent an invalid event stream: {err}") from None
        except (httpx.TransportError, httpx.StreamError) as err:
            raise StreamDropped(self.shown, f"{type(err).__name__}: {err}") from None
        raise StreamDropped(self.shown, "the stream ended without finishing the reply")
