"""Resumable, verified downloads of a Hub model into the Hugging Face cache.

huggingface_hub resumes only within one call (its temp file is per process
and deleted on failure) and checks sizes, not sha256. So the bytes are
fetched here (``http_get``), with huggingface_hub still supplying the URL
(``hf_hub_url``), the file metadata and the Hub's redirect
(``get_hf_file_metadata``) and the auth headers (HF_TOKEN):

- bytes go to ``blobs/<sha256>.incomplete``, which outlives the process
  (Ctrl+C, SIGKILL, a dropped connection); the next pull continues it with a
  ``Range`` request from its size;
- the sha256 is computed while writing (after re-reading a resumed part) and
  compared with the Hub's LFS sha256 before the part is renamed to its blob
  and linked into ``snapshots/``; a mismatch deletes the part;
- a lock per blob (huggingface_hub's own lock path) keeps two processes from
  appending to the same part.

``part_file`` has the machinery that lets this keep up with curl.
"""

from __future__ import annotations

import errno
import http.client
import os
import shutil
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gptterm import atomic, retry
from gptterm.errors import DownloadError, HubError, Interrupted
from gptterm.models import catalog, http_get, hub, part_file, store
from gptterm.models.hub import RemoteFile, RemoteModel
from gptterm.models.machine import this_machine
from gptterm.models.names import human_size

PART_SUFFIX = ".incomplete"
READ_TIMEOUT_S = 60.0
PROGRESS_INTERVAL_S = 0.1
HASH_CHUNK = 4 * 2**20


class DownloadCancelled(Interrupted):
    """Ctrl+C or a cancel request: the part file is kept for the next pull."""


@dataclass(frozen=True)
class Progress:
    model: str
    file: str
    phase: str  # "checking" (re-reading a part), "downloading", "done"
    done: int  # bytes of the whole model on disk
    total: int
    resumed: int  # bytes that were already on disk when this pull started

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


#: called with each progress report; what it returns is ignored
ProgressFn = Callable[[Progress], object]


@dataclass
class FilePlan:
    file: RemoteFile
    blob: Path
    part: Path
    link: Path
    have: int  # bytes already here (the part's size, or the whole file once its blob exists)
    complete: bool

    @property
    def state(self) -> str:
        if self.complete:
            return "downloaded"
        return f"partial ({self.have} bytes)" if self.have else "to download"


@dataclass
class PullPlan:
    model: RemoteModel
    name: str
    files: list[FilePlan]
    disk_free: int
    memory_needed: int

    @property
    def to_download(self) -> int:
        return sum(fp.file.size - fp.have for fp in self.files if not fp.complete)

    @property
    def already_here(self) -> bool:
        return all(fp.complete and fp.link.exists() for fp in self.files)

    @property
    def fits_disk(self) -> bool:
        return self.to_download <= self.disk_free

    def as_dict(self) -> dict:
        return {"name": self.name, "repo": self.model.repo, "commit": self.model.commit, "quant": self.model.quant,
                "size": self.model.size, "download": self.to_download, "already_downloaded": self.already_here,
                "destination": str(store.repo_dir(self.model.repo)), "disk_free": self.disk_free,
                "fits_disk": self.fits_disk, "memory": self.memory_needed,
                "fits_memory": this_machine().fits(self.memory_needed),
                "files": [{"path": fp.file.path, "size": fp.file.size, "sha256": fp.file.sha256, "state": fp.state}
                          for fp in self.files]}


def _blob_name(f: RemoteFile) -> str:
    name = f.sha256 or f.blob_id
    if not name or not all(c in "0123456789abcdef" for c in name):
        raise DownloadError(f"the Hub gives no checksum for {f.path}: refusing to download it unverified")
    return name


def memory_estimate(model: RemoteModel) -> int:
    entry = catalog.entry_for_file(model.repo, model.filename)
    if entry is not None:
        return entry.memory_needed()
    # the weights, plus a KV cache and buffers that grow roughly with them
    return int(model.size * 1.15) + catalog.OVERHEAD


def plan(model: RemoteModel) -> PullPlan:
    if model.problem:
        raise DownloadError(f"cannot pull {model.repo}/{model.filename}: {model.problem}")
    root = store.repo_dir(model.repo)
    files = []
    for f in model.files:
        blob = root / "blobs" / _blob_name(f)
        part = blob.with_name(blob.name + PART_SUFFIX)
        link = root / "snapshots" / model.commit / f.path
        # belt and braces after names.unsafe_repo_path: the link stays inside its snapshot
        if not Path(os.path.normpath(link)).is_relative_to(os.path.normpath(root / "snapshots" / model.commit)):
            raise DownloadError(f"refusing the file name {f.path!r} from the server: it leaves the model folder")
        complete = blob.exists() and blob.stat().st_size == f.size
        have = f.size if complete else (part.stat().st_size if part.exists() else 0)
        files.append(FilePlan(f, blob, part, link, min(have, f.size), complete))
    free = _disk_free(root)
    entry = catalog.entry_for_file(model.repo, model.filename)
    name = entry.id if entry else (f"{model.repo}:{model.quant}" if model.quant else f"{model.repo}/{model.filename}")
    return PullPlan(model, name, files, free, memory_estimate(model))


def plan_pull(spec: str, *, notify: hub.Notify | None = None) -> PullPlan:
    """The plan for a pull spec (catalog id, ``OWNER/NAME[:QUANT]``, ``OWNER/NAME/FILE.gguf``, a Hub URL):
    the repo listed, the model it names chosen, what is already on disk counted. ``plan.model`` is what
    ``pull`` takes."""
    parsed = hub.parse_spec(spec)
    return plan(hub.choose(hub.list_repo(parsed.repo, notify=notify), parsed))


def _disk_free(folder: Path) -> int:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


@dataclass
class PullResult:
    model: store.LocalModel
    downloaded: int
    resumed: int
    seconds: float
    already: bool


def pull(model: RemoteModel, *, progress: ProgressFn | None = None, cancel: threading.Event | None = None,
         notify: hub.Notify | None = None) -> PullResult:
    """Download every file of ``model`` (resuming parts), verify each, and link it into the cache."""
    p = plan(model)
    start = time.perf_counter()
    if not p.already_here:
        if not p.fits_disk:
            raise DownloadError(f"not enough disk space in {store.hub_cache_dir()}: the download needs "
                                f"{_mb(p.to_download)}, {_mb(p.disk_free)} is free")
        downloaded = resumed = 0
        before = 0
        for fp in p.files:
            if not fp.complete:
                got, kept = _fetch_locked(p, fp, before, progress, cancel, notify)
                downloaded += got
                resumed += kept
            before += fp.file.size
        for fp in p.files:
            _link(fp)
        _write_ref(store.repo_dir(model.repo), model.commit)
    else:
        downloaded = resumed = 0
    if progress:
        progress(Progress(p.name, model.filename, "done", model.size, model.size, resumed))
    local = store.lookup(f"{model.repo}/{model.filename}")
    if local is None:  # pragma: no cover - the link was just written
        raise DownloadError(f"the downloaded model is not where it was written: {p.files[0].link}")
    return PullResult(local, downloaded, resumed, time.perf_counter() - start, p.already_here)


def _mb(n: int) -> str:
    return human_size(n)


def _fetch_locked(p: PullPlan, fp: FilePlan, before: int, progress: ProgressFn | None,
                  cancel: threading.Event | None, notify: hub.Notify | None) -> tuple[int, int]:
    import filelock  # filelock (~15 ms): only a download takes its lock

    # huggingface_hub's lock path for this blob: hf_hub_download in another
    # process waits for us instead of writing the same blob.
    locks = store.hub_cache_dir() / ".locks" / store.repo_dir(p.model.repo).name
    locks.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(locks / f"{fp.blob.name}.lock"), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise DownloadError(f"another process is downloading {fp.file.path} right now; wait for it to finish"
                            ) from None
    try:
        return _Fetch(p, fp, before, progress, cancel, notify).run()
    finally:
        lock.release()


class _Fetch:
    """One file: ranged GETs into the part file until it is whole, then the checksum and the rename."""

    def __init__(self, p: PullPlan, fp: FilePlan, before: int, progress: ProgressFn | None,
                 cancel: threading.Event | None, notify: hub.Notify | None) -> None:
        self.p, self.fp, self.before = p, fp, before
        self.progress, self.cancel, self.notify = progress, cancel, notify
        self.size = fp.file.size
        self.have = 0
        self.resumed = 0
        self.got = 0
        self.hasher = part_file.new_hasher(fp.file)
        self._last_report = 0.0

    def report(self, phase: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.progress and (force or now - self._last_report >= PROGRESS_INTERVAL_S):
            self._last_report = now
            self.progress(Progress(self.p.name, self.fp.file.path, phase, self.before + self.have,
                                   self.p.model.size, self.resumed))

    def run(self) -> tuple[int, int]:
        fp = self.fp
        fp.blob.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._reread_part()
            self.buffers = part_file.Buffers()
            self.hasher = part_file.HashThread(self.hasher, self.buffers)
            self.flusher = part_file.Flusher(fp.part)
            try:
                if self.have < self.size:
                    url, headers = self._source()
                    self._download(url, headers)
                self.flusher.stop()
                self._verify_and_commit()
            finally:
                self.hasher.stop()
                self.flusher.stop()
        except KeyboardInterrupt:
            raise self._stopped() from None
        except OSError as err:
            if err.errno is None:  # huggingface_hub's connection errors are OSErrors too
                raise hub.hub_error(err, self.p.model.repo, self.fp.file.path) from None
            raise self._disk_error(err) from None
        return self.got, self.resumed

    def _stopped(self) -> DownloadCancelled:
        kept = self.fp.part.stat().st_size if self.fp.part.exists() else 0
        return DownloadCancelled(f"download stopped: {_mb(kept)} of {self.fp.file.path} kept in {self.fp.part}; "
                                 "run the same pull again to resume")

    def _disk_error(self, err: OSError) -> DownloadError:
        kept = self.fp.part.stat().st_size if self.fp.part.exists() else 0
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            return DownloadError(f"the disk is full ({self.fp.part.parent}): {_mb(kept)} kept in the part file; "
                                 "free some space and pull again to resume")
        return DownloadError(f"cannot write {self.fp.part}: {err.strerror or err}")

    def _reread_part(self) -> None:
        part = self.fp.part
        if not part.exists():
            return
        size = part.stat().st_size
        if size > self.size:
            part.unlink()  # longer than the file: not ours to trust
            return
        with open(part, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK):
                self._check_cancel()
                self.hasher.update(chunk)
                self.have += len(chunk)
                self.report("checking")
        self.resumed = self.have
        if self.notify and self.have:
            self.notify(f"resuming {self.fp.file.path} from {_mb(self.have)} of {_mb(self.size)}")

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise KeyboardInterrupt

    def _source(self) -> tuple[str, dict[str, str]]:
        """The URL the bytes come from (after the Hub's redirect) and the headers it may see."""
        # heavy: huggingface_hub (only talking to the Hub pays for it)
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        model, f = self.p.model, self.fp.file
        ep = hub.endpoint()
        url = hf_hub_url(model.repo, f.path, revision=model.commit, endpoint=ep)
        meta = hub.with_retries(lambda: get_hf_file_metadata(url, timeout=hub.API_TIMEOUT_S, endpoint=ep),
                                notify=self.notify, repo=model.repo, filename=f.path, stop=self.cancel)
        expected = f.sha256 or f.blob_id
        if meta.etag and expected and meta.etag != expected:
            raise HubError(f"the Hub's metadata for {f.path} disagree (listing {expected[:12]}…, "
                           f"file {meta.etag[:12]}…): the repo changed meanwhile; pull again")
        if meta.size is not None and meta.size != self.size:
            raise HubError(f"the Hub's sizes for {f.path} disagree ({self.size} vs {meta.size}); pull again")
        location = meta.location or url
        # The token goes only to the Hub itself, never to the storage host it redirects to.
        if http_get.origin(location) == http_get.origin(ep):
            headers = hub.auth_headers()
        else:
            headers = {"user-agent": hub.auth_headers().get("user-agent", "gptterm")}
        headers["Accept-Encoding"] = "identity"
        return location, headers

    def _download(self, url: str, headers: dict[str, str]) -> None:
        policy = hub.retry_policy()
        failures = 0
        while self.have < self.size:
            before = self.have
            try:
                self._one_request(url, headers)
            except (http_get.HTTPStatusError, http.client.HTTPException, OSError) as err:
                if isinstance(err, OSError) and not _transfer_error(err):
                    raise  # the disk, not the network
                if self.have > before:
                    failures = 0  # it was moving: try again at once
                    if self.notify:
                        self.notify(f"connection lost at {_mb(self.have)} ({_describe(err)}); resuming")
                    continue
                wait = policy.delay(failures, _retry_after(err)) if _retryable(err) else None
                if wait is None:
                    raise self._transfer_failed(err) from None
                failures += 1
                if self.notify:
                    self.notify(f"download failed ({_describe(err)}); retrying in {wait:.0f} s "
                                f"({failures}/{policy.retries})")
                if not retry.sleep(wait, self.cancel):
                    raise KeyboardInterrupt

    def _transfer_failed(self, err: BaseException) -> HubError:
        where = f"{self.p.model.repo}/{self.fp.file.path}"
        kept = f"; {_mb(self.have)} kept, pull again to resume" if self.have else ""
        if isinstance(err, http_get.HTTPStatusError):
            line = _STORAGE_LINES.get(err.status)
            if line is None:
                return HubError(hub.status_line(err.status, where) + kept)
            return HubError(line.format(status=err.status, where=where, kept=kept))
        if isinstance(err, (ConnectionRefusedError, socket.gaierror)):
            return HubError(f"cannot reach the Hub's storage for {where} ({_describe(err)}): check the network"
                            + kept)
        return HubError(f"the connection keeps failing ({_describe(err)}){kept or f' for {where}'}")

    def _one_request(self, url: str, headers: dict[str, str]) -> None:
        request_headers = dict(headers)
        if self.have:
            request_headers["Range"] = f"bytes={self.have}-"
        try:
            r = http_get.get(url, request_headers, timeout=READ_TIMEOUT_S)
        except http_get.HTTPStatusError as err:
            if err.status == 416 and self.have:
                self._restart("the server refused to resume")
                return
            raise
        with r:
            if self.have and r.status == 200:
                self._restart("the server does not resume downloads")
            elif r.status == 206 and not (r.headers.get("Content-Range") or "").startswith(f"bytes {self.have}-"):
                self._restart("the server resumed from the wrong place")
                return
            # Unbuffered: what was received is on disk, so after a crash the
            # part's size is exactly where the next Range request starts. The
            # sha256 runs in another thread, beside the socket and the disk.
            with open(self.fp.part, "ab", buffering=0) as out:
                while True:
                    buffer = self.buffers.take()
                    n = r.readinto(buffer)
                    self._check_cancel()  # what arrived after a cancel is not kept
                    if n == 0:
                        self.buffers.give(buffer)
                        break
                    if self.have + n > self.size:
                        out.close()
                        self.fp.part.unlink(missing_ok=True)
                        raise DownloadError(f"the server sent more than the {self.size} bytes of "
                                            f"{self.fp.file.path}: the part file was deleted")
                    part_file.write_all(out, buffer[:n])
                    self.hasher.update(buffer, n)  # gives the buffer back once hashed
                    self.flusher.written(n)
                    self.have += n
                    self.got += n
                    self.report("downloading")

    def _restart(self, why: str) -> None:
        if self.notify:
            self.notify(f"{why}: downloading {self.fp.file.path} from the start")
        self.fp.part.unlink(missing_ok=True)
        self.have = self.resumed = 0
        self.hasher.stop()
        self.hasher = part_file.HashThread(part_file.new_hasher(self.fp.file), self.buffers)

    def _verify_and_commit(self) -> None:
        self.report("downloading", force=True)
        f = self.fp.file
        digest = self.hasher.finish()
        expected = _blob_name(f)  # sha256 or git oid, checked when the pull was planned
        if digest != expected:
            self.fp.part.unlink(missing_ok=True)
            raise DownloadError(f"checksum mismatch for {f.path}: the Hub says {'sha256' if f.sha256 else 'git oid'} "
                                f"{expected[:16]}…, the download is {digest[:16]}…; the part file was deleted, "
                                "pull again to download it afresh")
        with open(self.fp.part, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(self.fp.part, 0o644)
        os.replace(self.fp.part, self.fp.blob)


_REFUSED = ("the Hub refused the download of {where} (HTTP {status}): set HF_TOKEN to an access token "
            "that may read it")
# What the statuses that need their own advice mean from the storage a download is redirected to.
_STORAGE_LINES = {
    401: _REFUSED,
    403: _REFUSED,
    404: "{where} is missing from the Hub's storage (HTTP 404): try again later",
    429: "the Hub is rate-limiting downloads (429 Too Many Requests): try again later{kept}",
}


def _transfer_error(err: OSError) -> bool:
    """Whether an OSError came from the connection (retry, resume) rather than the disk (stop)."""
    if isinstance(err, (ConnectionError, TimeoutError, socket.gaierror, ssl.SSLError)):
        return True
    return err.errno in (errno.ECONNRESET, errno.ECONNABORTED, errno.ENETUNREACH, errno.EHOSTUNREACH,
                         errno.ETIMEDOUT, errno.EPIPE) or err.errno is None


def _retryable(err: BaseException) -> bool:
    if isinstance(err, http_get.HTTPStatusError):
        return retry.transient(err.status)
    # refused or unknown host: no network or a wrong endpoint, waiting rarely helps
    return not isinstance(err, (ConnectionRefusedError, socket.gaierror))


def _retry_after(err: BaseException) -> float | None:
    return retry.parse_retry_after(err.retry_after if isinstance(err, http_get.HTTPStatusError) else None)


def _describe(err: BaseException) -> str:
    if isinstance(err, http_get.HTTPStatusError):
        return f"HTTP {err.status}"
    if isinstance(err, http.client.IncompleteRead):
        return "the server closed the connection early"
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _link(fp: FilePlan) -> None:
    """Point ``snapshots/<commit>/<path>`` at the blob, as huggingface_hub does (a relative symlink)."""
    fp.link.parent.mkdir(parents=True, exist_ok=True)
    if fp.link.is_symlink() or fp.link.exists():
        if store.same_file(fp.link, fp.blob):
            return
        fp.link.unlink()
    try:
        os.symlink(os.path.relpath(fp.blob, fp.link.parent), fp.link)
    except OSError:
        # No symlinks here (Windows without developer mode): huggingface_hub
        # then keeps the file itself in the snapshot, and so does this.
        os.replace(fp.blob, fp.link)


def _write_ref(root: Path, commit: str) -> None:
    ref = root / "refs" / "main"
    ref.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(ref, commit)
