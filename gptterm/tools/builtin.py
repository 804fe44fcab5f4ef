"""The tools gptterm brings: read_file, list_dir, search_docs, run_shell, fetch_url.

All are off until named (``-T read_file,list_dir``). The readers see only the
folders the user allowed (``--allow PATH``, default the current directory):
a path outside them, a ``..`` that climbs out, a link whose target lies
outside, something that is not a regular file, or a file over the size limit
is refused to the model as a tool error and never opened. ``run_shell`` asks
for every command. ``fetch_url`` is the only one that reaches the network.

Each tool's ``run(arguments, stop)`` returns the text for the model or raises
``Refused`` with the one line the model gets instead.
"""

from __future__ import annotations

import html.parser
import os
import signal
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from gptterm import retry, textio
from gptterm.errors import InputError, UsageError
from gptterm.models.names import human_size
from gptterm.tasks.ask import relevant
from gptterm.types import Tool

if TYPE_CHECKING:
    from gptterm.docs.embed import Embedder
    from gptterm.docs.index import DocIndex

#: read_file refuses a larger file (the result would be cut to the context anyway)
MAX_FILE_BYTES = 1 << 20
MAX_ENTRIES = 500
#: bytes of a command's output or a page that are read at most; the rest is dropped (and said so)
MAX_OUTPUT_BYTES = 1 << 20
FETCH_TIMEOUT = 20.0

#: every built-in, with what it is for (``gptterm tools``, doctor and --help list these)
BUILTINS = {
    "read_file": "read a text file under the allowed folders",
    "list_dir": "list a folder under the allowed folders",
    "search_docs": "search the document index (the passages ask uses) for passages and their sources",
    "run_shell": "run a shell command (asks before every command)",
    "fetch_url": "fetch a web page or file over http(s) (reaches the network; asks first)",
}
#: built-ins that reach the network: off by default, and named as such by doctor
NETWORK = frozenset({"fetch_url"})


class Refused(Exception):
    """What the model is told instead of a result (one line)."""


def _object(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class Folders:
    """The folders the readers may see; model-given paths are relative to the first."""

    def __init__(self, roots: Sequence[str | Path]) -> None:
        self.given: list[Path] = []
        self.real: list[Path] = []
        for root in roots or [Path.cwd()]:
            path = Path(os.path.abspath(os.path.expanduser(str(root))))
            if not path.is_dir():
                raise UsageError(f"--allow {root}: no such folder")
            self.given.append(path)
            self.real.append(Path(os.path.realpath(path)))

    def shown(self) -> str:
        return ", ".join(str(p) for p in self.given)

    def resolve(self, given: str) -> Path:
        """The real path ``given`` names, if it stays under the allowed folders; else ``Refused``."""
        if not isinstance(given, str) or not given.strip():
            raise Refused("give a path")
        if "\x00" in given:
            raise Refused("a path cannot hold a NUL character")
        path = Path(os.path.expanduser(given.strip()))
        if not path.is_absolute():
            path = self.given[0] / path
        lexical = Path(os.path.normpath(path))
        if not any(_within(lexical, r) for r in self.given + self.real):
            raise Refused(f"{given} is outside the allowed folders ({self.shown()})")
        real = Path(os.path.realpath(lexical))
        if not any(_within(real, r) for r in self.real):
            raise Refused(f"{given} leads outside the allowed folders (a link to {real}); it was not read")
        return real

    def relative(self, path: Path) -> str:
        for given, real in zip(self.given, self.real):
            if _within(path, real):
                rel = path.relative_to(real)
                return str(rel) if str(rel) != "." else "."
        return str(path)


class Builtin:
    tool: Tool

    def run(self, arguments: dict[str, Any], stop: threading.Event, timeout: float) -> str:
        raise NotImplementedError


class ReadFile(Builtin):
    def __init__(self, folders: Folders, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.folders, self.max_bytes = folders, max_bytes
        # Small models copy what a description shows into the arguments (a folder spelled out came back as
        # "/that/folder1.txt"): the description gives an example of a relative path, and the folders the
        # readers may see are said in the refusal, where they matter.
        self.tool = Tool("read_file", "Read a text file and return its text. The path is relative to the "
                         "current folder, for example notes.txt or src/main.py.",
                         _object({"path": {"type": "string", "description": "the file's path, e.g. notes.txt"}},
                                 ["path"]),
                         read_only=True)

    def run(self, arguments: dict[str, Any], stop: threading.Event, timeout: float) -> str:
        path = self.folders.resolve(arguments.get("path", ""))
        try:
            info = path.stat()
        except FileNotFoundError:
            raise Refused(f"no such file: {arguments['path']}") from None
        except OSError as err:
            raise Refused(f"cannot read {arguments['path']}: {err.strerror}") from None
        if stat.S_ISDIR(info.st_mode):
            raise Refused(f"{arguments['path']} is a folder: list it with list_dir")
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{arguments['path']} is not a regular file (a device, pipe or socket); it was not read")
        if info.st_size > self.max_bytes:
            raise Refused(f"{arguments['path']} is {info.st_size:,} bytes, over the limit of {self.max_bytes:,}; "
                          "it was not read")
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as f:
                data = f.read(self.max_bytes + 1)
        except OSError as err:
            raise Refused(f"cannot read {arguments['path']}: {err.strerror}") from None
        if len(data) > self.max_bytes:  # it grew since it was measured
            raise Refused(f"{arguments['path']} is over the limit of {self.max_bytes:,} bytes; it was not read")
        try:
            return textio.decode(data, str(arguments["path"])).text
        except InputError as err:
            raise Refused(str(err)) from None


class ListDir(Builtin):
    def __init__(self, folders: Folders) -> None:
        self.folders = folders
        self.tool = Tool("list_dir", "List the files and folders in a folder (folders end with /). The path is "
                         "relative to the current folder; . is the current folder itself.",
                         _object({"path": {"type": "string", "description": "the folder's path, e.g. . or src"}}),
                         read_only=True)

    def run(self, arguments: dict[str, Any], stop: threading.Event, timeout: float) -> str:
        given = arguments.get("path") or "."
        path = self.folders.resolve(given)
        if not path.is_dir():
            raise Refused(f"{given} is not a folder" if path.exists() else f"no such folder: {given}")
        try:
            entries = sorted(os.scandir(path), key=lambda e: (not e.is_dir(follow_symlinks=False), e.name.lower()))
        except OSError as err:
            raise Refused(f"cannot list {given}: {err.strerror}") from None
        lines = []
        for entry in entries[:MAX_ENTRIES]:
            try:
                if entry.is_symlink():
                    lines.append(f"{entry.name} -> {os.readlink(entry.path)}")
                elif entry.is_dir():
                    lines.append(entry.name + "/")
                else:
                    lines.append(f"{entry.name}\t{human_size(entry.stat().st_size)}")
            except OSError:
                lines.append(entry.name)
        if len(entries) > MAX_ENTRIES:
            lines.append(f"[… and {len(entries) - MAX_ENTRIES} more entries]")
        head = f"{self.folders.relative(path)}: {len(entries)} entries"
        return head + ("\n" + "\n".join(lines) if lines else " (empty)")


@dataclass
class DocsScope:
    """What search_docs searches: the index, the files in scope (``DocIndex.scope``), how they were named."""

    index: DocIndex
    file_ids: list[int]
    label: str = "the documents"
    embedder: Embedder | None = None


class SearchDocs(Builtin):
    def __init__(self, scope: DocsScope, k: int = 4) -> None:
        self.scope, self.k = scope, k
        self.tool = Tool("search_docs", f"Search {scope.label} for passages about a question or some keywords. Returns "
                         "the best passages with their sources (path:lines). Search again with other words if "
                         "nothing fits.",
                         _object({"query": {"type": "string", "description": "what to look for"},
                                  "k": {"type": "integer", "minimum": 1, "maximum": 10,
                                        "description": f"how many passages (default {k})"}}, ["query"]),
                         read_only=True)

    def run(self, arguments: dict[str, Any], stop: threading.Event, timeout: float) -> str:
        query = str(arguments.get("query") or "").strip()
        if not query:
            raise Refused("give a query")
        hits = self.scope.index.search(query, self.scope.file_ids, int(arguments.get("k") or self.k),
                                       embedder=self.scope.embedder)
        if not hits or not relevant(hits):
            return f"no passage of {self.scope.label} matches {query!r}; try other words"
        return "\n\n".join(f"[{i}] {h.where()}\n{h.text}" for i, h in enumerate(hits, start=1))


def _read_limited(stream: Any, limit: int, out: list[bytes], dropped: list[int]) -> None:
    size = 0
    while chunk := stream.read(65536):
        if size < limit:
            out.append(chunk[: limit - size])
        size += len(chunk)
    dropped.append(max(0, size - limit))


def _as_text(data: bytes, name: str) -> str:
    try:
        return textio.decode(data, name).text
    except InputError:
        return data.decode("utf-8", "replace")


class RunShell(Builtin):
    def __init__(self, folders: Folders) -> None:
        self.folders = folders
        self.tool = Tool("run_shell", f"Run a shell command in {folders.given[0]} and return its output (stdout and "
                         "stderr) and exit status. The user approves every command first.",
                         _object({"command": {"type": "string", "description": "the command line (sh)"}}, ["command"]),
                         read_only=False, confirm_each=True)

    def run(self, arguments: dict[str, Any], stop: threading.Event, timeout: float) -> str:
        command = str(arguments.get("command") or "")
        if not command.strip():
            raise Refused("give a command")
        try:
            proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=self.folders.given[0], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as err:
            raise Refused(f"cannot run the command: {err.strerror}") from None
        chunks: list[bytes] = []
        dropped: list[int] = []
        reader = threading.Thread(target=_read_limited, args=(proc.stdout, MAX_OUTPUT_BYTES, chunks, dropped),
                                  daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        ended = None
        while proc.poll() is None:
            if stop.is_set():
                ended = "stopped"
            elif time.monotonic() >= deadline:
                ended = f"stopped after the time limit of {timeout:g} s"
            if ended:
                _kill_group(proc)
                break
            time.sleep(0.02)
        proc.wait()
        reader.join(timeout=2)
        output = _as_text(b"".join(chunks), "the output").rstrip("\n")
        status = ended or (f"exit status {proc.returncode}" if proc.returncode >= 0
                           else f"killed by signal {-proc.returncode}")
        more = f"\n[… {dropped[0]:,} more bytes of output dropped]" if dropped and dropped[0] else ""
        if ended:
            raise Refused(f"the command was {status}; its output so far:\n{output}{more}")
        return f"{output}{more}\n[{status}]" if output else f"[no output; {status}]"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=1)
            return
        except subprocess.TimeoutExpired:
            continue


class _Text(html.parser.HTMLParser):
    """An HTML page's readable text (scripts and styles dropped, blocks on their own lines)."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section", "article", "table"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style", "noscript", "template"):
            self._skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "noscript", "template"):
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        out: list[str] = []
        for line in lines:
            if line or (out and out[-1]):
                out.append(line)
        return "\n".join(out).strip()


class FetchUrl(Builtin):
    def __init__(self) -> None:
        self.tool = Tool("fetch_url", "Fetch a web page or text file over http(s) and return its text (HTML is turned "
                         f"into plain text; at most {MAX_OUTPUT_BYTES:,} bytes are read).",
                         _object({"url": {"type": "string", "description": "an http:// or https:// URL"}}, ["url"]),
                         read_only=False)

    def run(self, arguments: dict[str, Any], stop: threading.Event, timeout: float) -> str:
        from gptterm.models import http_get  # ssl, http: only fetch_url pays for them

        url = str(arguments.get("url") or "").strip()
        if not url.startswith(("http://", "https://")):
            raise Refused("give an http:// or https:// URL")
        policy = retry.Policy(2, 0.5)
        attempt = 0
        while True:
            try:
                response = http_get.get(url, {"User-Agent": "gptterm", "Accept": "text/html, text/plain, */*"},
                                        timeout=min(timeout, FETCH_TIMEOUT))
                break
            except http_get.HTTPStatusError as err:
                wait = policy.delay(attempt, retry.parse_retry_after(err.retry_after)) if retry.transient(
                    err.status) else None
                if wait is None:
                    raise Refused(f"{url} answered HTTP {err.status}") from None
                if not retry.sleep(wait, stop):
                    raise Refused("stopped") from None
                attempt += 1
            except (OSError, ValueError) as err:
                raise Refused(f"cannot fetch {url}: {err}") from None
        with response:
            kind = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            data = bytearray()
            try:
                for chunk in response.chunks():
                    data += chunk
                    if len(data) > MAX_OUTPUT_BYTES or stop.is_set():
                        break
            except OSError as err:
                raise Refused(f"the download of {url} broke off: {err}") from None
        if kind and not (kind.startswith("text/") or kind in ("application/json", "application/xml",
                                                              "application/xhtml+xml")):
            raise Refused(f"{url} is {kind}, not text")
        text = _as_text(bytes(data[:MAX_OUTPUT_BYTES]), url)
        if kind in ("text/html", "application/xhtml+xml") or text.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
            parser = _Text()
            parser.feed(text)
            text = parser.text()
        cut = f"\n[… the page is longer than {MAX_OUTPUT_BYTES:,} bytes: the rest was not read]" \
            if len(data) > MAX_OUTPUT_BYTES else ""
        return text + cut


def make(name: str, folders: Folders, docs: DocsScope | None, max_file_bytes: int = MAX_FILE_BYTES) -> Builtin:
    """The built-in ``name``; a UsageError for an unknown name, or search_docs without documents."""
    if name == "read_file":
        return ReadFile(folders, max_file_bytes)
    if name == "list_dir":
        return ListDir(folders)
    if name == "run_shell":
        return RunShell(folders)
    if name == "fetch_url":
        return FetchUrl()
    if name == "search_docs":
        if docs is None:
            raise UsageError("search_docs needs documents to search: give --docs PATH or @COLLECTION")
        return SearchDocs(docs)
    raise UsageError(f"unknown tool {name!r}; the built-in tools are: {', '.join(BUILTINS)}")
