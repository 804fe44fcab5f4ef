"""A reply's ``<think>…</think>`` block, told apart from its answer as the text streams.

Reasoning models (Qwen3, SmolLM3, the DeepSeek-R1 distills, QwQ) write their
thinking between ``<think>`` and ``</think>`` before the answer; some chat
templates open the block in the prompt already, so the reply starts inside
it and only ``</think>`` appears. ``ThinkSplitter`` takes the streamed
pieces and hands back ``("thinking", text)`` and ``("answer", text)``
pieces; it holds back only what could still be the start of a tag.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"

THINKING = "thinking"
ANSWER = "answer"


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is the beginning of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


class ThinkSplitter:
    """Feed it a reply's pieces; it returns (kind, text) pieces with the tags removed."""

    def __init__(self, *, inside: bool = False) -> None:
        #: "start" (a <think> may come first), "thinking", or "answer"
        self.state = THINKING if inside else "start"
        self._held = ""
        #: right after </think>: the blank lines before the answer are dropped
        self._after_close = False

    def feed(self, piece: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        text = self._held + piece
        self._held = ""
        while text:
            if self.state == "start":
                stripped = text.lstrip()
                if stripped.startswith(OPEN):
                    self.state = THINKING
                    text = stripped[len(OPEN):]
                    continue
                if OPEN.startswith(stripped):  # could still become <think>
                    self._held = text
                    return out
                self.state = ANSWER
                continue
            if self.state == THINKING:
                end = text.find(CLOSE)
                if end >= 0:
                    if text[:end]:
                        out.append((THINKING, text[:end]))
                    self.state = ANSWER
                    self._after_close = True
                    text = text[end + len(CLOSE):]
                    continue
                keep = _partial_suffix(text, CLOSE)
                if len(text) > keep:
                    out.append((THINKING, text[: len(text) - keep]))
                self._held = text[len(text) - keep:]
                return out
            if self._after_close:  # the blank lines after </think> are not part of the answer
                text = text.lstrip("\n")
                if not text:
                    return out
                self._after_close = False
            out.append((ANSWER, text))
            return out
        return out

    def flush(self) -> list[tuple[str, str]]:
        """What is held back, at the end of the reply."""
        held, self._held = self._held, ""
        if not held:
            return []
        if self.state == THINKING:
            return [(THINKING, held)]
        if self.state == "start" and not held.strip():
            return []
        return [(ANSWER, held)]

    @property
    def in_thinking(self) -> bool:
        return self.state == THINKING


def split(text: str, *, inside: bool = False) -> tuple[str, str]:
    """(thinking, answer) of a whole reply's text."""
    splitter = ThinkSplitter(inside=inside)
    pieces = splitter.feed(text) + splitter.flush()
    return ("".join(t for k, t in pieces if k == THINKING), "".join(t for k, t in pieces if k == ANSWER))


def template_thinks(template: str | None) -> bool:
    """Whether a chat template knows a thinking mode (a <think> block, or a switch for one)."""
    return template is not None and any(k in template for k in ("<think>", "enable_thinking", "/no_think",
                                                                 "reasoning_content"))
