"""What long-text tasks (summarize, translate) share: events, cancellation, cleanup.

A job is iterated for ``TaskEvent``s: ``progress`` before each model call,
``chunk`` when one finishes (with its result), ``text`` for the output as
it streams. ``cancel()`` may come from any thread; the job then ends after
the current model call, keeping everything finished so far.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Iterator, TYPE_CHECKING

from gptterm.types import Reply
from gptterm.tasks.progress import PartCount

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.settings import Params


# Tasks copy and condense text: greedy decoding without a repeat penalty,
# unless the user sets these parameters explicitly (CLI flags).
# A reasoning model's thinking is switched off: its answer is the result, and thinking would spend the
# token cap a part's reply has (a model that thinks anyway has its <think> block left out: Reply.text).
TASK_DEFAULTS = {"temperature": 0.0, "repeat_penalty": 1.0, "thinking": "off"}


@dataclass
class TaskEvent:
    kind: str  # "progress" | "chunk" | "text"
    text: str = ""
    index: int = 0
    total: int = 0
    level: int = 0
    result: dict[str, Any] | None = None
    #: why the total grew since the last progress event ("part 8 was split in 2"), else ""
    note: str = ""


@dataclass
class Job(ABC):
    """A multi-part task over an engine: ``run(text)`` yields its events; ``text`` is the output."""

    engine: Engine
    params: Params
    chunks: list[dict[str, Any]] = field(default_factory=list)
    cancelled: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    #: the whole output once ``run`` is exhausted (what was finished, when cancelled)
    text: str = field(default="", init=False)
    #: the parts done and planned (the total grows when a part is split and done again)
    count: PartCount = field(default_factory=PartCount, init=False)
    #: numbers (1-based) of the parts that reached the token cap and could not be split further
    incomplete: list[int] = field(default_factory=list, init=False)

    @abstractmethod
    def run(self, text: str) -> Iterator[TaskEvent]:
        """Do the job on ``text``, yielding ``TaskEvent``s; sets ``self.text`` at the end."""

    def cancel(self) -> None:
        self._stop.set()
        self.engine.cancel()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def record(self, reply: Reply, **info: Any) -> dict[str, Any]:
        result = {**info, "output": reply.text, **reply.summary()}
        self.chunks.append(result)
        if reply.finish_reason == "cancelled":
            self.cancelled = True
        return result

    def stats(self) -> dict[str, Any]:
        generated = sum(c.get("completion_tokens", 0) for c in self.chunks)
        seconds = sum(c.get("total_s", 0.0) for c in self.chunks)
        return {"model_calls": len(self.chunks), "prompt_tokens": sum(c.get("prompt_tokens", 0) for c in self.chunks),
                "completion_tokens": generated, "seconds": round(seconds, 3), "cancelled": self.cancelled,
                "parts": self.count.total, "trimmed": sum(1 for c in self.chunks if c.get("trimmed")),
                "incomplete_parts": list(self.incomplete)}

    def progress(self, level: int = 0) -> TaskEvent:
        """The event before a model call: which part, of how many, and why the total grew if it did."""
        return TaskEvent("progress", index=self.count.done, total=self.count.total, level=level,
                         note=self.count.take_note())


# "Sure! Here is the summary:" / "Translation:" — a first line that only announces the answer.
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|okay|ok|absolutely)[!.,]\s*|"
    r"(?:here(?:'s| is| are)|below is|the following is)\b[^\n]*?[:：]\s*|"
    r"(?:summary|translation|translated text|tl;dr)\s*[:：]\s*)",
    re.IGNORECASE,
)


def strip_preamble(text: str) -> str:
    """Drop an announcing first line (small models add them despite the prompt)."""
    while True:
        match = _PREAMBLE.match(text)
        if not match or not match.group(0).strip():
            return text.lstrip("\n") if match else text
        text = text[match.end():]


class PreambleFilter:
    """Streaming version of ``strip_preamble``: holds back the start until it can decide."""

    HOLD = 160

    def __init__(self) -> None:
        self._buffer = ""
        self._decided = False
        self._leading = True  # nothing emitted yet: leading newlines are dropped

    def feed(self, piece: str) -> str:
        if self._decided:
            if self._leading:
                piece = piece.lstrip("\n")
                self._leading = not piece
            return piece
        self._buffer += piece
        head = self._buffer.lstrip()
        if len(head) < self.HOLD and "\n" not in head and not re.search(r"[:：]\s", head):
            return ""
        return self._release()

    def _release(self) -> str:
        self._decided = True
        out, self._buffer = strip_preamble(self._buffer).lstrip("\n"), ""
        self._leading = not out
        return out

    def flush(self) -> str:
        return "" if self._decided else self._release()


# Where a complete sentence (or a line: a bullet, a heading) ends: after . ! ? … and closing quotes or
# brackets followed by white space, after a CJK full stop, or at a line break.
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*(?=\s)|[。！？][」』”’）]*|\n")


_LIST_NUMBER = re.compile(r"\s*(?:[-*+]\s+)?(?:\d{1,3}|[A-Za-z]|[ivx]{1,4})")


def last_boundary(text: str) -> int:
    """Where the last complete sentence of ``text`` ends (0: none yet); "1." opening a list item is none."""
    end = 0
    for match in _SENTENCE_END.finditer(text):
        if match.group(0)[0] == ".":
            line_start = text.rfind("\n", 0, match.start()) + 1
            if _LIST_NUMBER.fullmatch(text, line_start, match.start()):
                continue
        end = match.end()
    return end


def trim_to_sentence(text: str) -> tuple[str, bool]:
    """``text`` cut after its last complete sentence, and whether anything was cut. A text without a
    complete sentence is kept whole: half a sentence says more than nothing."""
    body = text.rstrip()
    cut = min(last_boundary(body + " "), len(body))  # a sentence that ends the text ends there too
    if cut == 0 or not text[cut:].strip():
        return text, False
    return text[:cut].rstrip(), True


class SentenceHold:
    """Streams a reply up to its last complete sentence; the tail waits for the end: written when the
    reply ended by itself, dropped when the token cap cut it (``trimmed`` then says so)."""

    def __init__(self) -> None:
        self._held = ""
        self.emitted = False
        self.trimmed = False

    def feed(self, piece: str) -> str:
        self._held += piece
        cut = last_boundary(self._held)
        if cut == 0:
            return ""
        out = self._held[:cut].rstrip()  # the line breaks after it wait for what follows: a cut drops them
        self._held = self._held[len(out):]
        self.emitted = self.emitted or bool(out.strip())
        return out

    def finish(self, cut: bool) -> str:
        held, self._held = self._held, ""
        if cut and self.emitted and held.strip():
            self.trimmed = True
            return ""
        return held


class LoopGuard:
    """Spots a reply that has started repeating itself (small models loop under greedy decoding)."""

    MIN_SENTENCE = 30
    # A phrase said over and over with no sentence end ("LemAlleravolutionLemAllera…"):
    # the text's tail repeats with a period of 2-40 characters, five times or more and
    # over at least RUN characters, and the repeated unit has a letter in it (not a rule
    # of dashes or a row of zeros).
    RUN = 80
    MAX_UNIT = 40
    REPEATS = 5

    def __init__(self) -> None:
        self.text = ""
        self.seen: set[str] = set()
        self.checked = 0
        self.tripped = False
        self.keep = 0  # length of the text before the repetition

    def feed(self, piece: str) -> bool:
        self.text += piece
        if self._repeated_sentence() or self._repeated_phrase():
            self.tripped = True
            return True
        return False

    def _repeated_sentence(self) -> bool:
        while True:
            match = re.search(r"[^.!?。！？\n]+[.!?。！？\n]", self.text[self.checked:])
            if not match:
                return False
            start = self.checked + match.start()
            self.checked += match.end()
            sentence = " ".join(match.group(0).split())
            if len(sentence) >= self.MIN_SENTENCE:
                if sentence in self.seen:
                    self.keep = start
                    return True
                self.seen.add(sentence)

    def _repeated_phrase(self) -> bool:
        # Periodicity of the tail, tested by comparing it with itself shifted by each
        # candidate length: string comparisons in C, a few microseconds per piece.
        text = self.text
        for unit in range(2, self.MAX_UNIT + 1):
            span = max(self.RUN, self.REPEATS * unit)
            if len(text) < span:
                break
            tail = text[-span:]
            if tail[unit:] != tail[:-unit]:
                continue
            start = len(text) - span
            while start > 0 and text[start - 1] == text[start - 1 + unit]:
                start -= 1
            if any(c.isalpha() for c in text[start:start + unit]):
                self.keep = start + unit  # the phrase once
                return True
        return False


def stream_reply(job: Job, reply: Reply, *, emit: bool, strip: bool = True,
                 hold: SentenceHold | None = None) -> Iterator[TaskEvent]:
    """Run ``reply``; with ``emit`` its text streams out as ``text`` events (preamble removed; with
    ``hold``, only up to its last complete sentence until the reply ends, see ``SentenceHold``).

    A reply caught repeating a sentence is stopped there and marked
    ``finish_reason = "repetition"`` (not a user's cancel).
    """
    filt = PreambleFilter() if strip else None
    guard = LoopGuard()
    for piece in reply:
        if guard.tripped:
            continue  # the stop is on its way; drop what comes meanwhile
        if guard.feed(piece):
            job.engine.cancel()
            continue
        if emit:
            out = filt.feed(piece) if filt else piece
            if out and hold is not None:
                out = hold.feed(out)
            if out:
                yield TaskEvent("text", out)
    if guard.tripped and not job.stopping:
        reply.finish_reason = "repetition"
        reply.parts[:] = [guard.text[:guard.keep].rstrip() + "\n"]
    if emit:
        tail = filt.flush() if filt else ""
        if hold is not None:
            tail = hold.feed(tail) + hold.finish(cut=reply.finish_reason == "length")
        if tail:
            yield TaskEvent("text", tail)
