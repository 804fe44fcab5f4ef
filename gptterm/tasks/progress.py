"""Where a long job is, in words every face shows the same way: part k of n, tokens/s, elapsed, time left.

A job counts its parts as it plans them (``PartCount``); when a part has to
be split and done again (it reached the token cap) or redone line by line,
the total grows and the next progress event says why. ``PartProgress``
follows a job's events and makes the line a face shows: the CLI's status
line (or, off a terminal, plain lines) and the TUI panes' progress label.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.tasks.job import TaskEvent


@dataclass
class PartCount:
    """The parts a job has done and plans to do; ``grow`` adds parts and says why."""

    total: int = 0
    done: int = 0
    #: why the total last grew, until the next progress event carries it
    pending_note: str = ""
    notes: list[str] = field(default_factory=list)

    def grow(self, more: int, why: str) -> None:
        self.total += more
        self.pending_note = why
        self.notes.append(why)

    def take_note(self) -> str:
        note, self.pending_note = self.pending_note, ""
        return note


def clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class PartProgress:
    """A job's progress from its events: ``update(event)`` returns a line worth printing on its own
    (a part done, the total grown) and ``text()`` is the live line."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.started: float | None = None
        self.index = 0
        self.total = 0
        self.done = 0
        self.level = 0
        self.rate: float | None = None
        self.note = ""
        self.note_until = 0.0

    def update(self, event: TaskEvent) -> str | None:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        if event.total:
            self.total = max(event.total, 1)
        self.level = event.level
        line = None
        if event.note:
            self.note, self.note_until = event.note, now + 8.0
            line = f"{self.verb}: {event.note}; now {self.total} parts"
        if event.kind == "progress":
            self.index = event.index
        elif event.kind == "chunk":
            self.done = max(self.done, event.index + 1)
            result = event.result or {}
            if result.get("tokens_per_s"):
                self.rate = float(result["tokens_per_s"])
            if self.total > 1:
                rate = f", {result['tokens_per_s']:.0f} tok/s" if result.get("tokens_per_s") else ""
                line = (f"{self.verb}: part {event.index + 1} of {self.total} done "
                        f"({result.get('input_tokens', 0)} tokens in{rate})")
        return line

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None

    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started is not None else 0.0

    def eta(self) -> float | None:
        if not self.done or not self.total or self.done >= self.total:
            return None
        return self.elapsed() / self.done * (self.total - self.done)

    def text(self) -> str:
        """'translating: part 9 of 14 · 45 tok/s · 0:12 · ~0:30 left (part 8 was split in 2)'."""
        parts = [f"{self.verb}: part {min(self.index + 1, self.total)} of {self.total}"
                 + (f" (round {self.level + 1})" if self.level else "")]
        if self.rate:
            parts.append(f"{self.rate:.0f} tok/s")
        parts.append(clock(self.elapsed()))
        eta = self.eta()
        if eta is not None:
            parts.append(f"~{clock(eta)} left")
        line = " · ".join(parts)
        if self.note and time.monotonic() < self.note_until:
            line += f" ({self.note})"
        return line

    def finished(self, stats: dict) -> str:
        """The last line: 'done · 9 model calls · 812 tokens · 14.2 s' (or 'stopped')."""
        return (f"{'stopped' if stats.get('cancelled') else 'done'} · {plural(stats['model_calls'], 'model call')} · "
                f"{plural(stats['completion_tokens'], 'token')} · {stats['seconds']:.1f} s")
