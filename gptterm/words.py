"""Counts as people write them: "1 message", "2 messages"."""

from __future__ import annotations

IRREGULAR = {"passage": "passages", "is": "are"}


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word``, in the plural unless ``n`` is 1 (``many`` for irregular plurals)."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {many or IRREGULAR.get(word, word + 's')}"
