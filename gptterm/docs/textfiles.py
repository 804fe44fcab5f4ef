"""Which files a question can be asked of, and their text.

Folders are walked recursively (hidden folders, version control, virtual
environments and build output left out). A file is read when its name says
text (prose, markup, source code, data) or, for any other name, when its
first bytes hold no NUL; every other file is skipped with a reason, never a
crash. HTML is reduced to its text with each piece kept on the line it came
from, so line numbers point into the original file. Files above
``STREAM_BYTES`` are read in blocks (memory stays flat); the rest whole,
through the one decoder of every input (``gptterm.textio``). Large HTML is
read as plain text.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

from gptterm import textio
from gptterm.docs.passages import CODE_SUFFIXES
from gptterm.errors import InputError

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache",
                       ".pytest_cache", "dist", "build", ".idea", ".vscode", "target"})
TEXT_SUFFIXES = frozenset("""
.txt .text .md .markdown .rst .org .adoc .tex .csv .tsv .json .jsonl .yaml .yml .toml .ini .cfg .conf .xml .html .htm
.xhtml .css .scss .log .py .pyi .js .jsx .ts .tsx .c .h .cc .cpp .hpp .cs .java .kt .go .rs .rb .php .swift .scala .sh
.bash .zsh .fish .pl .lua .r .jl .m .sql .proto .graphql .vue .svelte .dockerfile .make .mk .cmake .gradle .properties
.srt .vtt .bib .ipynb
""".split())
BINARY_SUFFIXES = frozenset("""
.png .jpg .jpeg .gif .bmp .ico .webp .tiff .pdf .zip .gz .tgz .bz2 .xz .7z .rar .tar .jar .whl .exe .dll .so .dylib
.o .a .class .pyc .gguf .bin .safetensors .pt .onnx .npy .npz .mp3 .mp4 .wav .flac .ogg .mov .avi .mkv .woff .woff2
.ttf .otf .sqlite .sqlite3 .db .doc .docx .xls .xlsx .ppt .pptx .odt
""".split())
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
SNIFF_BYTES = 8192
STREAM_BYTES = 8 * 1024 * 1024
BLOCK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def walk(roots: list[Path]) -> Iterator[tuple[Path, os.stat_result] | Skipped]:
    """The files under ``roots`` with their ``stat`` (files given directly are taken as they are), sorted,
    each once by its real path. One ``stat`` a file: a folder of thousands is checked in milliseconds."""
    seen: set[str] = set()
    for root in roots:
        root = Path(root).expanduser()
        try:
            st = root.stat()
        except FileNotFoundError:
            yield Skipped(root, "no such file or folder")
            continue
        except OSError as err:
            yield Skipped(root, f"cannot read it ({err.strerror or err})")
            continue
        real = str(root.resolve())
        if not stat.S_ISDIR(st.st_mode):
            if stat.S_ISREG(st.st_mode) and real not in seen:
                seen.add(real)
                yield Path(real), st
            continue
        yield from _walk_folder(real, seen)


def _walk_folder(folder: str, seen: set[str]) -> Iterator[tuple[Path, os.stat_result] | Skipped]:
    """A folder's files (sorted), then its subfolders' in turn; symbolic links to folders are not followed
    (as ``os.walk`` does), links to files are taken at their real path."""
    try:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as err:
        yield Skipped(Path(folder), f"cannot read the folder ({err.strerror or err})")
        return
    subfolders = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIP_DIRS:
                    subfolders.append(entry.path)
                continue
            if not entry.is_file():
                continue
            path = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
            st = entry.stat()
        except OSError:
            continue  # gone since the folder was listed, or a dangling link
        if path not in seen:
            seen.add(path)
            yield Path(path), st
    for sub in subfolders:
        yield from _walk_folder(sub, seen)


def kind(path: Path) -> str | None:
    """"code", "html" or "text" for a file worth reading; None for one that is not (by its name)."""
    suffix = path.suffix.lower()
    if suffix in BINARY_SUFFIXES:
        return None
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in CODE_SUFFIXES:
        return "code"
    return "text"


def sniff(path: Path) -> str | None:
    """Why ``path`` is not text, judged from its name and first bytes; None when it looks like text."""
    if path.suffix.lower() in BINARY_SUFFIXES:
        return "binary file"
    if path.suffix.lower() in TEXT_SUFFIXES:
        return None
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    bom = any(head.startswith(b) for b, _, _ in textio.BOMS)
    return "binary file" if b"\x00" in head and not bom else None


class Opened:
    """A file being read: the note on how it was decoded, its text in slices, and (once the slices are
    consumed) the sha256 of its bytes."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path, self.name = path, name or str(path)
        self._sha = hashlib.sha256()
        self.note: str | None = None
        if path.stat().st_size <= STREAM_BYTES:
            data = path.read_bytes()
            self._sha.update(data)
            decoded = textio.decode(data, self.name)
            self.note = decoded.note(self.name)
            text = html_text(decoded.text) if path.suffix.lower() in HTML_SUFFIXES else decoded.text
            self.slices: Iterator[tuple[int, str]] = iter([(1, text)])
        else:
            self.slices = self._stream()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def _stream(self) -> Iterator[tuple[int, str]]:
        """Blocks that end at a line break (or anywhere, within a line longer than a block)."""
        with open(self.path, "rb") as fh:
            sample = fh.read(256 * 1024)
            decoded = textio.decode(sample, self.name)  # detected on the first bytes; the rest follows it
            self.note = decoded.note(self.name) if decoded.detected else None
            fh.seek(0)
            decoder = codecs.getincrementaldecoder(decoded.encoding)("replace")
            line, carry = 1, ""
            while block := fh.read(BLOCK_BYTES):
                self._sha.update(block)
                text = carry + decoder.decode(block)
                cut = text.rfind("\n")
                text, carry = (text, "") if cut < 0 else (text[:cut + 1], text[cut + 1:])
                if text:
                    yield line, text.removeprefix("\ufeff") if line == 1 else text
                    line += text.count("\n")
            rest = carry + decoder.decode(b"", final=True)
            if rest:
                yield line, rest


class _TextOnly(HTMLParser):
    """Collects an HTML page's text, each piece on the line of the page it came from."""

    HIDDEN = frozenset({"script", "style", "head", "noscript", "template", "svg"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: dict[int, list[str]] = {}
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if self.hidden or not data.strip():
            return
        line = self.getpos()[0]
        for k, part in enumerate(data.split("\n")):
            if part.strip():
                self.lines.setdefault(line + k, []).append(part.strip())


def html_text(page: str) -> str:
    parser = _TextOnly()
    try:
        parser.feed(page)
        parser.close()
    except (AssertionError, ValueError) as err:  # malformed markup beyond what the parser forgives
        raise InputError(f"cannot read the HTML: {err}") from None
    last = max(parser.lines, default=0)
    return "\n".join(" ".join(parser.lines.get(n, [])) for n in range(1, last + 1))
