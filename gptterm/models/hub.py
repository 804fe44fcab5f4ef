"""The Hugging Face Hub: search GGUF repos, list a repo's GGUF models, read pull specs.

Uses huggingface_hub (``HfApi(endpoint=...)``, its HTTP session, auth headers
and error classes). Two measured behaviours shape this module:

- ``HF_ENDPOINT`` is read once when huggingface_hub is imported, so the
  endpoint is read here on every call and passed explicitly.
- ``HfApi.list_models`` (and every paginated call) retries connection
  errors, 429 and 5xx five times with 1-2-4-8-8 s waits, printing a warning
  each time: offline, ``search`` would sit silent for 23 s. Search therefore
  sends the same request as ``list_models`` through the library's session
  without its back-off, and every call here goes through ``with_retries``:
  gptterm's one retry policy (``gptterm.retry``: a refused connection fails
  at once; 408/429/5xx and timeouts are retried ``GPTTERM_HUB_RETRIES``
  times, default 2, after 1, 2, 4… s or the ``Retry-After`` the Hub asks for,
  and not at all when it asks for more than 30 s).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from gptterm import retry
from gptterm.errors import HubError, UsageError
from gptterm.models import catalog
from gptterm.models.names import DEFAULT_QUANT, closest_quant, parse_quant, split_part, unsafe_repo_path

# Without this, huggingface_hub's header builder fetches an "agent harness"
# registry from the endpoint it read at import (once a day, 3 s timeout): a
# request nobody asked for. A user who wants it sets the variable to 0.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

DEFAULT_ENDPOINT = "https://huggingface.co"
API_TIMEOUT_S = 15.0
#: Seconds before the first retry of a Hub request; doubled for each one after it.
RETRY_DELAY_S = 1.0

T = TypeVar("T")


class RepoNotFound(HubError):
    """The Hub has no such repo (or hides it: private or gated without a token)."""

Notify = Callable[[str], None]


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def retries() -> int:
    try:
        return max(0, int(os.environ.get("GPTTERM_HUB_RETRIES", "2")))
    except ValueError:
        return 2


def retry_policy() -> retry.Policy:
    """How Hub requests and downloads are retried (read per call: tests and users change the variable)."""
    return retry.Policy(retries(), RETRY_DELAY_S)


def _quiet_library() -> None:
    # huggingface_hub logs warnings (retries, deprecations) straight to
    # stderr; gptterm reports what matters itself, in one line.
    from huggingface_hub.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


def api() -> Any:
    from huggingface_hub import HfApi  # heavy: huggingface_hub (only talking to the Hub pays for it)

    _quiet_library()
    return HfApi(endpoint=endpoint())


def auth_headers() -> dict[str, str]:
    """huggingface_hub's headers: user agent, and ``Authorization`` from HF_TOKEN or the stored login."""
    from huggingface_hub.utils import build_hf_headers  # heavy: huggingface_hub (only talking to the Hub pays for it)

    return build_hf_headers()


def token_set() -> bool:
    from huggingface_hub import get_token  # heavy: huggingface_hub (only talking to the Hub pays for it)

    return bool(get_token())


# -- errors and retries --------------------------------------------------------


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _retry_after(err: BaseException) -> float | None:
    response = getattr(err, "response", None)
    return retry.parse_retry_after(response.headers.get("Retry-After") if response is not None else None)


def hub_error(err: BaseException, repo: str | None = None, filename: str | None = None) -> HubError:
    """One line that says what went wrong with the Hub and what to do about it."""
    import httpx2  # heavy: httpx2, huggingface_hub (only talking to the Hub pays for them)
    from huggingface_hub import errors as hf

    ep = endpoint()
    where = f"{repo}/{filename}" if repo and filename else repo or ep
    if isinstance(err, hf.OfflineModeIsEnabled):
        return HubError("offline mode is on (HF_HUB_OFFLINE is set): the Hub cannot be reached")
    if isinstance(err, hf.HFValidationError):
        return HubError(f"not a valid Hub repo id: {repo!r} (expected OWNER/NAME)")
    if isinstance(err, httpx2.ConnectError):
        return HubError(f"cannot reach the Hub at {ep} ({_reason(err)}): check the network or HF_ENDPOINT")
    if isinstance(err, httpx2.TimeoutException):
        return HubError(f"the Hub at {ep} did not answer in time: try again later")
    if isinstance(err, (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.WriteError)):
        return HubError(f"the connection to {ep} broke ({_reason(err)}): try again")
    if isinstance(err, hf.GatedRepoError):
        if token_set():
            return HubError(f"{repo} is gated and HF_TOKEN has no access yet: accept its terms at {ep}/{repo} "
                            "with the account of that token")
        return HubError(f"{repo} is gated: accept its terms at {ep}/{repo}, then set HF_TOKEN to an access token "
                        "of that account")
    status = _status(err)
    if isinstance(err, hf.RemoteEntryNotFoundError):
        return HubError(f"{repo} has no file {filename}")
    if isinstance(err, hf.RevisionNotFoundError):
        return HubError(f"{repo} has no such revision")
    message = getattr(getattr(err, "response", None), "headers", {}).get("X-Error-Message", "")
    if status == 401 and message == "Invalid credentials in Authorization header":
        return HubError("the Hub refused HF_TOKEN (invalid credentials): set HF_TOKEN to a valid access token")
    if isinstance(err, hf.RepositoryNotFoundError):
        hint = "" if token_set() else "; a private or gated repo needs HF_TOKEN"
        return RepoNotFound(f"no model repo {repo} on the Hub{hint}")
    if status == 401:
        return HubError(f"the Hub refused access to {where} (401 Unauthorized): set HF_TOKEN to an access token "
                        "that may read it")
    if status == 403:
        return HubError(f"the Hub denied access to {where} (403 Forbidden): HF_TOKEN lacks the permission")
    if status == 404:
        return HubError(f"not found on the Hub: {where}")
    if status == 429:
        wait = _retry_after(err)
        later = f"in {wait:.0f} s" if wait else "in a minute"
        return HubError(f"the Hub is rate-limiting requests (429 Too Many Requests): try again {later}"
                        + ("" if token_set() else "; HF_TOKEN raises the limit"))
    if status is not None:
        return HubError(status_line(status, where))
    return HubError(f"Hub request failed: {_reason(err)}")


def status_line(status: int, where: str) -> str:
    """The line for an HTTP status from the Hub (or its storage) that needs no advice of its own."""
    if status >= 500:
        return f"the Hub failed (HTTP {status}) for {where}: try again later"
    return f"the Hub answered HTTP {status} for {where}"


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _retryable(err: BaseException) -> bool:
    import httpx2  # heavy: httpx2 (only talking to the Hub pays for it)

    if isinstance(err, httpx2.ConnectError):
        return False  # no network or wrong endpoint: waiting rarely helps, and offline must fail fast
    if isinstance(err, (httpx2.TimeoutException, httpx2.RemoteProtocolError, httpx2.ReadError)):
        return True
    return retry.transient(_status(err))


def with_retries(call: Callable[[], T], *, notify: Notify | None = None, repo: str | None = None,
                 filename: str | None = None, stop: retry.Stop | None = None) -> T:
    """``call()``, retried on transient failures; any failure becomes a HubError line.

    A ``stop`` during a wait raises KeyboardInterrupt, as Ctrl+C would: the
    caller's cancel path (a download keeps its part file) takes it from there.
    """
    import httpx2  # heavy: httpx2, huggingface_hub (only talking to the Hub pays for them)
    from huggingface_hub import errors as hf

    policy = retry_policy()
    attempt = 0
    while True:
        try:
            return call()
        except (httpx2.HTTPError, hf.HfHubHTTPError, hf.OfflineModeIsEnabled, hf.HFValidationError) as err:
            wait = policy.delay(attempt, _retry_after(err)) if _retryable(err) else None
            if wait is None:
                raise hub_error(err, repo, filename) from None
            attempt += 1
            if notify:
                what = f"HTTP {_status(err)}" if _status(err) else _reason(err)
                notify(f"the Hub answered {what}; retrying in {wait:.0f} s ({attempt}/{policy.retries})")
            if not retry.sleep(wait, stop):
                raise KeyboardInterrupt


# -- search --------------------------------------------------------------------


@dataclass(frozen=True)
class RepoHit:
    repo: str
    downloads: int | None
    likes: int | None
    updated: str | None
    gated: bool

    def as_dict(self) -> dict:
        return {"repo": self.repo, "downloads": self.downloads, "likes": self.likes, "updated": self.updated,
                "gated": self.gated}


def search(query: str, *, limit: int = 20, notify: Notify | None = None) -> list[RepoHit]:
    """GGUF model repos matching ``query``, most downloaded first.

    The request ``HfApi.list_models(search=, filter="gguf", sort="downloads",
    limit=)`` sends, without its built-in back-off (see the module note).
    """
    from huggingface_hub.hf_api import ModelInfo  # heavy: huggingface_hub (only talking to the Hub pays for it)
    from huggingface_hub.utils import get_session, hf_raise_for_status

    _quiet_library()
    params: dict[str, str | int] = {"search": query, "filter": "gguf", "sort": "downloads", "limit": limit}

    def call() -> list:
        r = get_session().get(f"{endpoint()}/api/models", params=params, headers=auth_headers(),
                              timeout=API_TIMEOUT_S)
        hf_raise_for_status(r)
        return r.json()

    items = with_retries(call, notify=notify)
    hits = []
    for item in items[:limit]:
        info = ModelInfo(**item)
        updated = info.last_modified or info.created_at
        hits.append(RepoHit(info.id, info.downloads, info.likes, updated.date().isoformat() if updated else None,
                            bool(info.gated)))
    return hits


def find(query: str, *, limit: int = 20, notify: Notify | None = None) -> RepoListing | list[RepoHit]:
    """What a search box means by ``query``: an existing repo's GGUF models for ``OWNER/NAME``, else the
    Hub's search for the text (``qwen2.5``; also ``Qwen/2.5``, which names no repo)."""
    query = query.strip()
    if query.count("/") == 1:
        try:
            return list_repo(query, notify=notify)
        except (RepoNotFound, UsageError):
            pass  # not a repo (or not a valid id): search for the text instead
    return search(query, limit=limit, notify=notify)


# -- a repo's GGUF models ------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # LFS files (every real GGUF); None for a small file kept in git
    blob_id: str | None  # git object id: the ETag of a non-LFS file


@dataclass
class RemoteModel:
    """One GGUF model of a repo: a single file, or every part of a split one."""

    repo: str
    commit: str
    files: list[RemoteFile]
    quant: str | None
    expected_parts: int = 1
    problem: str | None = None  # why it cannot be pulled (unsafe name, missing part)

    @property
    def filename(self) -> str:
        return self.files[0].path

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def as_dict(self) -> dict:
        return {"repo": self.repo, "file": self.filename, "quant": self.quant, "size": self.size,
                "parts": len(self.files), "sha256": [f.sha256 for f in self.files], "commit": self.commit,
                "problem": self.problem}


@dataclass
class RepoListing:
    repo: str
    commit: str
    gated: bool
    models: list[RemoteModel] = field(default_factory=list)


def check_repo_id(repo: str) -> None:
    from huggingface_hub.errors import HFValidationError  # heavy: huggingface_hub (only talking to the Hub pays for it)
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError:
        raise UsageError(f"not a valid Hub repo id: {repo!r} (expected OWNER/NAME: letters, digits, '-', '_', '.')"
                         ) from None
    if repo.count("/") != 1:
        raise UsageError(f"not a valid Hub repo id: {repo!r} (expected OWNER/NAME)")


def list_repo(repo: str, *, revision: str = "main", notify: Notify | None = None) -> RepoListing:
    """The repo's GGUF models with sizes and sha256, split parts grouped (``model_info(files_metadata=True)``).

    ``model_info`` lists every file, folders included, in one request;
    ``list_repo_tree`` would need one request per folder.
    """
    check_repo_id(repo)
    hf = api()
    info = with_retries(lambda: hf.model_info(repo, revision=revision, files_metadata=True, timeout=API_TIMEOUT_S),
                        notify=notify, repo=repo)
    files = []
    for s in info.siblings or []:
        if s.rfilename.lower().endswith(".gguf"):
            files.append(RemoteFile(s.rfilename, s.size or (s.lfs.size if s.lfs else 0),
                                    s.lfs.sha256 if s.lfs else None, s.blob_id))
    listing = RepoListing(info.id or repo, info.sha or revision, bool(info.gated))
    listing.models = group_files(listing.repo, listing.commit, files)
    return listing


def group_files(repo: str, commit: str, files: list[RemoteFile]) -> list[RemoteModel]:
    groups: dict[str, list[RemoteFile]] = {}
    for f in sorted(files, key=lambda f: f.path):
        part = split_part(f.path)
        groups.setdefault(part.prefix if part else f.path, []).append(f)
    models = []
    for members in groups.values():
        first = split_part(members[0].path)
        model = RemoteModel(repo, commit, members, parse_quant(members[0].path),
                            expected_parts=first.count if first else 1)
        unsafe = [(f.path, why) for f in members if (why := unsafe_repo_path(f.path))]
        if unsafe:
            model.problem = f"unsafe file name {unsafe[0][0]!r} from the server ({unsafe[0][1]})"
        elif first is not None and (first.part != 1 or len(members) != first.count):
            model.problem = f"split model with {len(members)} of {first.count} parts on the Hub"
        models.append(model)
    return models


# -- pull specs --------------------------------------------------------------------


@dataclass(frozen=True)
class PullSpec:
    repo: str
    file: str | None = None
    quant: str | None = None
    catalog_id: str | None = None
    #: without a file or quantization: the quantization to choose when the repo has it (else the closest)
    prefer: str | None = None

    def describe(self) -> str:
        return self.catalog_id or (f"{self.repo}/{self.file}" if self.file else
                                   f"{self.repo}:{self.quant}" if self.quant else self.repo)


_URL_PREFIX = re.compile(r"^(?:https?://)?(?:www\.)?(?:hf\.co|huggingface\.co)/", re.IGNORECASE)


def parse_spec(spec: str) -> PullSpec:
    """``CATALOG_ID``, ``OWNER/NAME[:QUANT]``, ``OWNER/NAME/FILE.gguf`` or a Hub URL of either."""
    text = spec.strip()
    entry = catalog.find_entry(text)
    if entry is not None:  # an entry without a file is resolved from its repo's listing, by its quantization
        return PullSpec(entry.repo, file=entry.file or None, catalog_id=entry.id, prefer=entry.quant)
    text = _URL_PREFIX.sub("", text)
    if text.startswith(endpoint() + "/"):
        text = text[len(endpoint()) + 1:]
    quant = None
    if ":" in text:
        text, _, quant = text.rpartition(":")
        if not quant or "/" in quant:
            raise UsageError(f"cannot read {spec!r}: expected OWNER/NAME:QUANT, e.g. "
                             f"bartowski/Llama-3.2-1B-Instruct-GGUF:{DEFAULT_QUANT}")
    parts = text.split("/")
    if len(parts) < 2:
        raise UsageError(f"{spec!r} is not in the catalog ('gptterm models catalog') nor a Hub repo (OWNER/NAME)")
    repo = "/".join(parts[:2])
    rest = parts[2:]
    if len(rest) >= 2 and rest[0] in ("resolve", "blob"):
        rest = rest[2:]  # .../resolve/main/file.gguf, as copied from the Hub's web page
    file = "/".join(rest) or None
    if file is not None and quant is not None:
        raise UsageError(f"give a file or a quantization, not both: {spec!r}")
    if file is not None and not file.lower().endswith(".gguf"):
        raise UsageError(f"{file!r} is not a .gguf file; expected OWNER/NAME/FILE.gguf or OWNER/NAME:QUANT")
    check_repo_id(repo)
    return PullSpec(repo, file=file, quant=quant.upper() if quant else None)


def choose(listing: RepoListing, spec: PullSpec) -> RemoteModel:
    """The model of ``listing`` that ``spec`` names; the default quantization when it names none."""
    models = listing.models
    repo = listing.repo
    if not models:
        raise HubError(f"{repo} has no .gguf files")
    if spec.file is not None:
        for m in models:
            if any(f.path == spec.file for f in m.files):
                return m
        for m in models:
            if any(f.path.casefold() == spec.file.casefold() for f in m.files):
                return m
        raise HubError(f"{repo} has no file {spec.file}; its GGUF models: {_names(models)}")
    if spec.quant is not None:
        found = [m for m in models if (m.quant or "").upper() == spec.quant]
        if not found:
            quants = sorted({m.quant for m in models if m.quant})
            raise HubError(f"{repo} has no {spec.quant} model; it has: {', '.join(quants) or _names(models)}")
        if len(found) > 1:
            raise HubError(f"{repo} has several {spec.quant} models ({_names(found)}): pull {repo}/FILE.gguf")
        return found[0]
    usable = [m for m in models if m.problem is None] or models
    # a vision model's projector (mmproj-*.gguf) is not a model to chat with
    usable = [m for m in usable if not m.filename.rsplit("/", 1)[-1].lower().startswith("mmproj")] or usable
    quant = closest_quant(sorted({m.quant for m in usable if m.quant}), spec.prefer or DEFAULT_QUANT)
    found = [m for m in usable if m.quant == quant] if quant else usable
    if len(found) > 1:
        raise HubError(f"{repo} has several models{f' in {quant}' if quant else ''} ({_names(found)}): "
                       f"pull {repo}/FILE.gguf")
    return found[0]


def _names(models: list[RemoteModel], limit: int = 6) -> str:
    names = [m.filename for m in models]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")
