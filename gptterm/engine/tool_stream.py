"""A reply's tool calls, kept out of the streamed answer as the text arrives.

``CallSplitter`` passes the answer's text through until a call's opening
marker may be starting (``<tool_call>``, ``[TOOL_CALLS]``, a reply that
opens with ``{"name"``…); from the first marker on it holds everything back.
At the end it parses the whole reply with the family's parser: the calls go
to ``calls``, and any answer text after them is handed out then, so the
streamed text never shows call markup. Like ``thinking.ThinkSplitter``, it
holds back only what could still turn into a marker.
"""

from __future__ import annotations

from gptterm.types import ToolCall
from gptterm.engine.tool_formats import CallFormat


class CallSplitter:
    def __init__(self, fmt: CallFormat) -> None:
        self.fmt = fmt
        #: the answer text handed out so far
        self.shown = ""
        self._held = ""
        self._inside = False
        self.calls: list[ToolCall] = []
        #: the whole answer without its calls, once finished (differs from ``shown`` + the flushed text only
        #: when a call was written in a shape that is not held back, such as Gemma's bare ``[f(a=1)]``)
        self.answer: str | None = None

    def feed(self, piece: str) -> str:
        """The part of ``piece`` (with what was held before) that can be shown now."""
        if self._inside:
            self._held += piece
            return ""
        text = self._held + piece
        self._held = ""
        at = self.fmt.find_opening(self.shown, text)
        if at >= 0:
            self._inside = True
            self._held = text[at:]
            return self._show(text[:at])
        keep = self.fmt.partial_opening(self.shown, text)
        self._held = text[len(text) - keep:] if keep else ""
        return self._show(text[: len(text) - keep])

    def _show(self, text: str) -> str:
        self.shown += text
        return text

    @property
    def in_call(self) -> bool:
        return self._inside

    def flush(self) -> str:
        """At the end of the reply: parse it; the answer text still to show."""
        full = self.shown + self._held
        self._held = ""
        answer, self.calls = self.fmt.parse(full)
        self.answer = answer
        shown = self.shown.rstrip()
        if not answer.startswith(shown):
            return ""  # markup was shown after all (see ``answer``)
        rest = answer[len(shown):]
        already = self.shown[len(shown):]  # the blank space shown after the last word: not shown twice
        rest = rest[len(already):] if rest.startswith(already) else rest.lstrip(" \t\n")
        return rest if rest.strip() else ""

    @property
    def leaked(self) -> bool:
        """Whether the shown text holds a call after all (its ``answer`` should replace it)."""
        return self.answer is not None and not self.answer.startswith(self.shown.rstrip())
