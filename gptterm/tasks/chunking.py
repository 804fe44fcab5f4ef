"""Split text into pieces that each fit a token budget, at natural boundaries.

The pieces concatenate back to exactly the input (nothing dropped, nothing
repeated, order kept). Boundaries are tried from coarse to fine: paragraphs
(a fenced code block counts as one), sentences, words, and only as a last
resort characters. Sizes are measured with the model's own tokenizer.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator

Counter = Callable[[str], int]

# One UTF-8 character is at most 4 bytes, so at most 4 byte-level tokens:
# a budget this size always fits at least one character.
MIN_BUDGET = 4

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A sentence with the whitespace after it: up to sentence-ending
# punctuation followed by whitespace (or the end), a CJK full stop, or a
# run of newlines.
_SENTENCE = re.compile(r".*?(?:[.!?]+[\"')\]]*(?:[ \t]+|\n+|$)|[。！？；]+\s*|\n+|$)", re.S)
_WORD = re.compile(r"\S*\s*")


def paragraphs(text: str) -> list[str]:
    """Paragraphs with their trailing blank lines; a fenced code block stays whole."""
    units: list[str] = []
    current: list[str] = []
    fence: str | None = None
    boundary = False  # the next non-blank line starts a new unit

    def flush() -> None:
        if current:
            units.append("".join(current))
            current.clear()

    for line in text.splitlines(keepends=True):
        if fence is not None:
            current.append(line)
            if _closes(line, fence):
                fence = None
                boundary = True
            continue
        if not line.strip():
            current.append(line)
            boundary = boundary or any(part.strip() for part in current)
            continue
        opening = _FENCE.match(line)
        if boundary or (opening and any(part.strip() for part in current)):
            flush()
            boundary = False
        if opening:
            fence = opening.group(1)
        current.append(line)
    flush()
    return units


def _closes(line: str, fence: str) -> bool:
    match = _FENCE.match(line)
    return bool(match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)
                and not line.strip()[len(match.group(1)):].strip())


def _split(text: str, pattern: re.Pattern[str]) -> list[str]:
    """Consecutive non-empty matches of ``pattern``; they always join back to ``text``."""
    return [m.group(0) for m in pattern.finditer(text) if m.group(0)]


def _fit_prefix(text: str, budget: int, count: Counter) -> int:
    """Longest prefix length (in characters, at least 1) whose token count fits ``budget``."""
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _atoms(unit: str, budget: int, count: Counter) -> Iterator[str]:
    """Break one unit into parts that each fit, trying finer boundaries in turn."""
    if count(unit) <= budget:
        yield unit
        return
    for pattern in (_SENTENCE, _WORD):
        parts = _split(unit, pattern)
        if len(parts) > 1:
            for part in parts:
                yield from _atoms(part, budget, count)
            return
    while unit:  # one unbreakable run (a long URL, CJK without punctuation)
        cut = _fit_prefix(unit, budget, count)
        yield unit[:cut]
        unit = unit[cut:]


def chunk_text(text: str, budget: int, count: Counter) -> list[str]:
    """Pieces of ``text``, each at most ``budget`` tokens, joined back giving ``text``."""
    if budget < MIN_BUDGET:
        raise ValueError(f"the token budget must be at least {MIN_BUDGET} (one character can take 4 tokens)")
    atoms = [a for unit in paragraphs(text) for a in _atoms(unit, budget, count)]
    chunks: list[str] = []
    current: list[str] = []
    estimate = 0
    for atom in atoms:
        size = count(atom)
        if current and estimate + size > budget:
            chunks.extend(_settle(current, budget, count))
            current, estimate = [], 0
        current.append(atom)
        estimate += size
    if current:
        chunks.extend(_settle(current, budget, count))
    return chunks


def _settle(atoms: list[str], budget: int, count: Counter) -> list[str]:
    """Join ``atoms`` into as few chunks as fit, checked on the joined text.

    Counts of separately tokenized pieces need not add up to the count of
    their concatenation, so each chunk is measured as a whole and trimmed.
    """
    out: list[str] = []
    start = 0
    while start < len(atoms):
        end = len(atoms)
        while end - start > 1 and count("".join(atoms[start:end])) > budget:
            end -= 1
        out.append("".join(atoms[start:end]))
        start = end
    return out


def split_in_two(text: str) -> list[str]:
    """``text`` cut once, at the sentence boundary nearest its middle (else the word boundary): two pieces
    that join back to it, or ``[text]`` when it has no boundary to cut at."""
    for pattern in (_SENTENCE, _WORD):
        atoms = _split(text, pattern)
        if len(atoms) > 1:
            ends = [sum(len(a) for a in atoms[: i + 1]) for i in range(len(atoms) - 1)]
            cut = min(ends, key=lambda e: abs(len(text) - 2 * e))
            return [text[:cut], text[cut:]]
    return [text]
