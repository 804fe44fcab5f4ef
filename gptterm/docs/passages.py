"""Text cut into passages a question can be answered from, each with its line range.

A passage is a few paragraphs (about ``TARGET_CHARS``): cuts fall on blank
lines, and a heading (Markdown ``#``, a reStructuredText underline) or a
top-level definition in source code (``def``, ``class``, ``function``, ``fn``,
``func``, …) always starts a new passage, so a passage stays about one thing.
A block longer than ``MAX_CHARS`` is cut between lines, and a line longer than
that (minified files, a 50 MB single line) between characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator

TARGET_CHARS = 1200
MAX_CHARS = 2400

HEADING = re.compile(r"^(#{1,6}\s|\.\. |[=\-~^*#]{3,}\s*$)")
DEFINITION = re.compile(r"^(async\s+def|def|class|function|fn|func|pub\s+fn|impl|struct|enum|interface|"
                        r"type|export\s+(default\s+)?(function|class|const)|public|private|protected|static|"
                        r"(sub|package|module|trait|object))\b")
CODE_SUFFIXES = frozenset(".py .pyi .js .jsx .ts .tsx .c .h .cc .cpp .hpp .cs .java .kt .go .rs .rb .php .swift "
                          ".scala .sh .bash .zsh .pl .lua .r .jl .m .sql".split())


@dataclass(frozen=True)
class Passage:
    start_line: int  # 1-based, inclusive
    end_line: int
    text: str


def _blocks(lines: list[str], first_line: int, code: bool) -> Iterator[tuple[int, list[str]]]:
    """Runs of lines between blank lines; a heading or a definition starts a new run."""
    block: list[str] = []
    start = first_line
    for i, line in enumerate(lines):
        number = first_line + i
        if not line.strip():
            if block:
                yield start, block
                block = []
            continue
        starts_new = HEADING.match(line) if not code else DEFINITION.match(line)
        # an underline belongs to the title above it
        underline = not code and block and re.fullmatch(r"[=\-~^*#]{3,}\s*", line)
        if block and starts_new and not underline:
            yield start, block
            block = []
        if not block:
            start = number
        block.append(line)
    if block:
        yield start, block


def _split_long(start: int, block: list[str]) -> Iterator[tuple[int, int, str]]:
    """A block over MAX_CHARS as pieces between lines, and overlong lines between characters."""
    piece: list[str] = []
    size = 0
    piece_start = start
    for i, line in enumerate(block):
        number = start + i
        if len(line) > MAX_CHARS:
            if piece:
                yield piece_start, number - 1, "\n".join(piece)
                piece, size = [], 0
            for k in range(0, len(line), TARGET_CHARS):
                yield number, number, line[k:k + TARGET_CHARS]
            piece_start = number + 1
            continue
        if piece and size + len(line) > TARGET_CHARS:
            yield piece_start, number - 1, "\n".join(piece)
            piece, size = [], 0
        if not piece:
            piece_start = number
        piece.append(line)
        size += len(line) + 1
    if piece:
        yield piece_start, start + len(block) - 1, "\n".join(piece)


def cut(text: str, *, first_line: int = 1, code: bool = False) -> Iterator[Passage]:
    """``text`` (starting at line ``first_line`` of its file) as passages."""
    lines = text.split("\n")
    pending: list[tuple[int, int, str]] = []
    size = 0
    for start, block in _blocks(lines, first_line, code):
        pieces = list(_split_long(start, block)) if sum(len(x) + 1 for x in block) > MAX_CHARS \
            else [(start, start + len(block) - 1, "\n".join(block))]
        for piece in pieces:
            head_of_section = pending and (HEADING.match(piece[2]) if not code else DEFINITION.match(piece[2]))
            if pending and (size + len(piece[2]) > TARGET_CHARS or head_of_section):
                yield _join(pending)
                pending, size = [], 0
            pending.append(piece)
            size += len(piece[2]) + 2
    if pending:
        yield _join(pending)


def _join(pieces: Iterable[tuple[int, int, str]]) -> Passage:
    items = list(pieces)
    return Passage(items[0][0], items[-1][1], "\n\n".join(p[2] for p in items))
