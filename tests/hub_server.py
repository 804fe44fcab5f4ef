"""A small Hugging Face Hub on 127.0.0.1 for the model-download tests and bench/download.py.

It answers what huggingface_hub 2.4.0 requests (read from its source) and
what gptterm requests through it:

- ``GET /api/models?search=&filter=&sort=&limit=`` (``HfApi.list_models``'s request)
- ``GET /api/models/OWNER/NAME[/revision/REV]?blobs=true`` (``model_info(files_metadata=True)``)
- ``GET /api/models/OWNER/NAME/tree/REV[/PATH]`` (``list_repo_tree``)
- ``HEAD|GET /OWNER/NAME/resolve/REV/PATH`` (``get_hf_file_metadata``, ``hf_hub_download``): LFS files
  answer 302 to a second server on another port (the "CDN", a different origin
  as on the real Hub) with ``X-Linked-Etag`` (sha256), ``X-Linked-Size`` and
  ``X-Repo-Commit``; other files answer 200 with ``ETag`` (git oid)
- ``HEAD|GET /blobs/SHA256`` on the CDN, with ``Range`` → 206

Switches: ``fail`` (answer a status, N times), ``drop_after`` (close the
connection after N body bytes), ``corrupt`` (flip bytes, same length),
``pause_at`` + ``gate`` (stop mid-body until released), ``rate`` (bytes/s),
gated repos that want ``token``, and repos listing unsafe file names.
Every request is recorded in ``requests`` (header names in lower case).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

BODY_CHUNK = 256 * 1024


@dataclass
class HubFile:
    path: str
    data: bytes | None = None
    source: Path | None = None  # served with sendfile (large files, the benchmark)
    lfs: bool = True
    sha256: str = ""
    oid: str = ""  # git blob id
    size: int = 0

    def __post_init__(self) -> None:
        content = self.data if self.data is not None else self.source.read_bytes()
        self.size = len(content)
        self.sha256 = hashlib.sha256(content).hexdigest()
        self.oid = hashlib.sha1(b"blob %d\0" % self.size + content).hexdigest()
        if self.source is not None:
            self.data = None  # keep big files on disk

    def read(self) -> bytes:
        return self.data if self.data is not None else self.source.read_bytes()


@dataclass
class HubRepo:
    id: str
    files: dict[str, HubFile]
    commit: str
    gated: bool = False
    downloads: int = 100
    likes: int = 1
    listed_names: dict[str, str] = field(default_factory=dict)  # real path -> name shown in listings


@dataclass
class Fault:
    where: str  # "search", "info", "resolve", "cdn"
    status: int
    times: int
    headers: dict[str, str]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], OSError):  # clients that hang up (the tests kill some) are normal
            super().handle_error(request, client_address)


class HubServer:
    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[tuple[str, str, str, dict[str, str]]] = []
        self.faults: list[Fault] = []
        self.token: str | None = None
        self.use_cdn = True
        self.drop_after: int | None = None  # body bytes, for the next `drop_times` bodies
        self.drop_times = 0
        self.corrupt_times = 0
        self.pause_at: int | None = None  # absolute file offset; once
        self.gate = threading.Event()
        self.paused = threading.Event()
        self.rate: float | None = None
        self.lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self.url = self.cdn_url = ""

    # -- content ------------------------------------------------------------------

    def add_repo(self, repo_id: str, files: dict[str, bytes | Path], *, gated: bool = False, lfs: bool = True,
                 listed_names: dict[str, str] | None = None) -> HubRepo:
        made = {}
        for path, content in files.items():
            if isinstance(content, Path):
                made[path] = HubFile(path, source=content, lfs=lfs)
            else:
                made[path] = HubFile(path, data=content, lfs=lfs and path.endswith(".gguf"))
        commit = hashlib.sha1(repo_id.encode() + str(time.time_ns()).encode()).hexdigest()
        repo = HubRepo(repo_id, made, commit, gated=gated, listed_names=listed_names or {})
        self.repos[repo_id] = repo
        return repo

    def fail(self, where: str, status: int, times: int = 1, **headers: str) -> None:
        self.faults.append(Fault(where, status, times, {k.replace("_", "-"): v for k, v in headers.items()}))

    def requests_to(self, role: str | None = None, method: str | None = None, contains: str = "") -> list:
        return [r for r in self.requests if (role is None or r[0] == role) and (method is None or r[1] == method)
                and contains in r[2]]

    def _take_fault(self, where: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.where == where and f.times > 0:
                    f.times -= 1
                    return f
        return None

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> "HubServer":
        for role in ("hub", "cdn"):
            server = _QuietServer(("127.0.0.1", 0), _handler(self, role))
            threading.Thread(target=server.serve_forever, args=(0.02,), name=f"hub-{role}", daemon=True).start()
            self._servers.append(server)
        self.url = f"http://127.0.0.1:{self._servers[0].server_address[1]}"
        self.cdn_url = f"http://127.0.0.1:{self._servers[1].server_address[1]}"
        return self

    def stop(self) -> None:
        self.gate.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()


def _handler(hub: HubServer, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(_HubHandler):
        pass

    Handler.hub = hub
    Handler.role = role
    return Handler


class _HubHandler(BaseHTTPRequestHandler):
    hub: HubServer
    role: str
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # -- plumbing -----------------------------------------------------------------------

    def _record(self) -> None:
        with self.hub.lock:
            self.hub.requests.append((self.role, self.command, self.path,
                                      {k.lower(): v for k, v in self.headers.items()}))

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, data, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, status: int, code: str | None = None, message: str = "", headers: dict | None = None) -> None:
        h = dict(headers or {})
        if code:
            h["X-Error-Code"] = code
        if message:
            h["X-Error-Message"] = message
        self._json({"error": message or code or f"HTTP {status}"}, status, h)

    def _fault(self, where: str) -> bool:
        fault = self.hub._take_fault(where)
        if fault is None:
            return False
        self._error(fault.status, fault.headers.pop("X-Error-Code", None), fault.headers.get("X-Error-Message", ""),
                    fault.headers)
        return True

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def _route(self) -> None:
        self._record()
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        try:
            if self.role == "cdn":
                m = re.fullmatch(r"/blobs/([0-9a-f]+)", path)
                return self._cdn(m.group(1)) if m else self._error(404)
            if path == "/api/models":
                return self._search(query)
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
            if m:
                return self._tree(m.group(1), m.group(2), m.group(3) or "")
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
            if m:
                return self._info(m.group(1), m.group(2) or "main")
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if m:
                return self._resolve(m.group(1), m.group(2), m.group(3))
            self._error(404)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- API ----------------------------------------------------------------------------

    def _repo(self, repo_id: str, revision: str = "main") -> HubRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if revision not in ("main", repo.commit):
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return None
        return repo

    def _search(self, query: dict) -> None:
        if self._fault("search"):
            return
        text = (query.get("search") or [""])[0].lower()
        limit = int((query.get("limit") or ["1000"])[0])
        hits = [r for r in self.hub.repos.values() if text in r.id.lower()]
        hits.sort(key=lambda r: -r.downloads)
        self._json([{"_id": r.commit[:24], "id": r.id, "modelId": r.id, "likes": r.likes, "downloads": r.downloads,
                     "private": False, "gated": "manual" if r.gated else False, "tags": ["gguf"],
                     "library_name": "gguf", "createdAt": "2024-09-18T15:03:00.000Z"} for r in hits[:limit]])

    def _info(self, repo_id: str, revision: str) -> None:
        if self._fault("info"):
            return
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        siblings = []
        for f in repo.files.values():
            item = {"rfilename": repo.listed_names.get(f.path, f.path), "size": f.size, "blobId": f.oid}
            if f.lfs:
                item["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": 134}
            siblings.append(item)
        self._json({"_id": repo.commit[:24], "id": repo.id, "modelId": repo.id, "sha": repo.commit,
                    "private": False, "gated": "manual" if repo.gated else False, "disabled": False,
                    "downloads": repo.downloads, "likes": repo.likes, "tags": ["gguf"], "library_name": "gguf",
                    "lastModified": "2024-09-18T15:03:00.000Z", "siblings": siblings})

    def _tree(self, repo_id: str, revision: str, folder: str) -> None:
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        out = []
        for f in repo.files.values():
            name = repo.listed_names.get(f.path, f.path)
            if folder and not name.startswith(folder + "/"):
                continue
            item = {"type": "file", "oid": f.oid, "size": f.size, "path": name}
            if f.lfs:
                item["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
            out.append(item)
        self._json(out)

    # -- files ----------------------------------------------------------------------------

    def _resolve(self, repo_id: str, revision: str, path: str) -> None:
        if self._fault("resolve"):
            return
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        if repo.gated:
            auth = self.headers.get("Authorization")
            if self.hub.token is not None and auth is not None and auth != f"Bearer {self.hub.token}":
                return self._error(401, None, "Invalid credentials in Authorization header")
            if auth is None:
                return self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have "
                                                      "access to it and be authenticated to access it.")
        f = repo.files.get(path)
        if f is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist on \"{revision}\"")
        headers = {"X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes"}
        if f.lfs and self.hub.use_cdn:
            headers.update({"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(f.size), "ETag": f'"{f.oid}"',
                            "Location": f"{self.hub.cdn_url}/blobs/{f.sha256}"})
            return self._send(302, b"", headers)
        headers["ETag"] = f'"{f.sha256 if f.lfs else f.oid}"'
        self._body(f, headers)

    def _cdn(self, sha: str) -> None:
        if self._fault("cdn"):
            return
        for repo in self.hub.repos.values():
            for f in repo.files.values():
                if f.sha256 == sha:
                    return self._body(f, {"ETag": f'"{sha}"', "Accept-Ranges": "bytes"})
        self._error(404)

    def _body(self, f: HubFile, headers: dict[str, str]) -> None:
        start, end = 0, f.size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if m is None or int(m.group(1)) >= f.size:
                return self._send(416, b"", {**headers, "Content-Range": f"bytes */{f.size}"})
            start = int(m.group(1))
            end = min(int(m.group(2)), f.size - 1) if m.group(2) else f.size - 1
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{end}/{f.size}"}
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        hub = self.hub
        with hub.lock:
            drop = hub.drop_after if hub.drop_times > 0 else None
            if drop is not None:
                hub.drop_times -= 1
            corrupt = hub.corrupt_times > 0
            if corrupt:
                hub.corrupt_times -= 1
            pause_at = hub.pause_at
            if pause_at is not None and start <= pause_at <= end:
                hub.pause_at = None
            else:
                pause_at = None
        plain = drop is None and not corrupt and pause_at is None
        if plain and f.source is not None:
            self.wfile.flush()
            with open(f.source, "rb") as fh:
                if not hub.rate:
                    self.connection.sendfile(fh, offset=start, count=length)
                    return
                t0, sent = time.monotonic(), 0
                while sent < length:
                    n = min(max(1024, int(hub.rate / 100)), length - sent)
                    self.connection.sendfile(fh, offset=start + sent, count=n)
                    sent += n
                    _pace(t0, sent, hub.rate)
            return
        data = memoryview(f.read())[start:end + 1]
        if corrupt:
            flipped = bytearray(data)
            for i in range(0, len(flipped), 997):
                flipped[i] ^= 0xFF
            data = memoryview(bytes(flipped))
        t0, sent = time.monotonic(), 0
        while sent < length:
            n = min(BODY_CHUNK if not hub.rate else max(1024, int(hub.rate / 20)), length - sent)
            if drop is not None:
                n = min(n, drop - sent)
                if n <= 0:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
            if pause_at is not None:
                to_pause = pause_at - start - sent
                if to_pause == 0:
                    self.wfile.flush()
                    hub.paused.set()
                    hub.gate.wait(60)
                    pause_at = None
                    continue
                n = min(n, to_pause)
            self.wfile.write(data[sent:sent + n])
            sent += n
            if hub.rate:
                self.wfile.flush()
                _pace(t0, sent, hub.rate)


def _pace(t0: float, sent: int, rate: float) -> None:
    """Sleep until ``sent`` bytes are due at ``rate`` bytes/s since ``t0``: a link's pace, on a fixed
    schedule so that the sleeps' own overruns do not add up."""
    delay = t0 + sent / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def tiny_files(tmp: Path) -> dict[str, bytes]:
    """GGUF bytes for the test repos: three quantizations (really: seeds), a two-part split model and a LoRA
    adapter for them."""
    from tests.fixtures.tiny_gguf import make_tiny_gguf, make_tiny_lora

    out: dict[str, bytes] = {"lora": make_tiny_lora(tmp / "tiny-style-lora.gguf").read_bytes()}
    for seed, quant in enumerate(("Q4_K_M", "Q8_0", "Q3_K_M")):
        out[quant] = make_tiny_gguf(tmp / f"tiny-{quant}.gguf", seed=seed).read_bytes()
    split_dir = tmp / "split"
    split_dir.mkdir(exist_ok=True)
    make_tiny_gguf(split_dir / "tiny.gguf", seed=7, split_max_tensors=12)
    out["split-1"] = (split_dir / "tiny-00001-of-00002.gguf").read_bytes()
    out["split-2"] = (split_dir / "tiny-00002-of-00002.gguf").read_bytes()
    return out


def populate(hub: HubServer, files: dict[str, bytes]) -> None:
    """The repos the tests use; names follow real Hub conventions."""
    readme = b"# a test repo\n"
    hub.add_repo("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
                 {"smollm2-135m-instruct-q8_0.gguf": files["Q4_K_M"], "README.md": readme}).downloads = 5000
    hub.add_repo("test/Tiny-Chat-GGUF", {"tiny-chat-Q4_K_M.gguf": files["Q4_K_M"],
                                          "tiny-chat-Q8_0.gguf": files["Q8_0"],
                                          "tiny-chat-Q3_K_M.gguf": files["Q3_K_M"],
                                          "README.md": readme, "config.json": b"{}"}).downloads = 900
    hub.add_repo("test/Tiny-NoQ4-GGUF", {"tiny-noq4.Q8_0.gguf": files["Q8_0"],
                                          "tiny-noq4.Q3_K_M.gguf": files["Q3_K_M"]}).downloads = 10
    hub.add_repo("test/Tiny-Split-GGUF", {"Q4_K_M/tiny-split-Q4_K_M-00001-of-00002.gguf": files["split-1"],
                                           "Q4_K_M/tiny-split-Q4_K_M-00002-of-00002.gguf": files["split-2"]})
    hub.add_repo("test/Tiny-Gated-GGUF", {"tiny-gated-Q4_K_M.gguf": files["Q4_K_M"]}, gated=True)
    hub.add_repo("test/Tiny-Evil-GGUF", {"evil-Q4_K_M.gguf": files["Q4_K_M"]},
                 listed_names={"evil-Q4_K_M.gguf": "../../evil-Q4_K_M.gguf"})
    hub.add_repo("test/Tiny-Style-LoRA-GGUF", {"tiny-style-lora-F16.gguf": files["lora"],
                                               "README.md": readme}).downloads = 40
    hub.add_repo("test/Tiny-Git-GGUF", {"tiny-git-Q4_K_M.gguf": files["Q4_K_M"]}, lfs=False)


def env_for(hub: HubServer) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.url}


def main() -> None:
    """python -m tests.hub_server [--serve REPO FILE_IN_REPO PATH]: the test repos, or one file."""
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description="a local Hub for trying gptterm by hand and for bench/download.py")
    ap.add_argument("--serve", nargs=3, metavar=("REPO", "NAME", "PATH"), help="serve only this file")
    ap.add_argument("--rate-mb", type=float, help="send file bodies at this many MB/s (a network link)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        server = HubServer().start()
        server.rate = args.rate_mb * 1e6 if args.rate_mb else None
        if args.serve:
            repo, name, path = args.serve
            server.add_repo(repo, {name: Path(path)})
        else:
            populate(server, tiny_files(Path(d)))
        print(f"HF_ENDPOINT={server.url} CDN={server.cdn_url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            server.stop()
            os._exit(0)


if __name__ == "__main__":
    main()
