"""One way for every pane to generate: borrow the engine, stream, pace the redraws, stop, give it back.

A pane composes a ``Generation`` (an invisible widget) and hands it the
work to run in a thread worker: an iterable of events (a turn's deltas, a
job's progress, anything). The events reach the pane's ``on_events`` on the
UI thread in batches; on a small machine the batches are spaced so that
drawing them keeps the UI thread near ``UI_CPU_SHARE`` of one core (each
millisecond spent drawing stalls llama.cpp's threads, which use every core).
When the work ends — finished, stopped with Esc, failed with a user's error,
or broken by a bug — the engine is given back, the error (if any) is
notified here, and ``on_finished`` hears how it ended, exactly once per run.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable

from textual.message import Message
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from gptterm.errors import GpttermError
from gptterm.tui.host import host

if TYPE_CHECKING:
    from gptterm.session import Lease


def _ui_cpu_share() -> float:
    """Share of one core the UI may spend redrawing while a reply streams."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return 0.02 if cores <= 4 else 0.5


UI_CPU_SHARE = _ui_cpu_share()
# Events reach the pane at most this often (seconds); the interval grows when
# drawing them costs more than UI_CPU_SHARE of a core.
MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 0.5


@dataclass
class Run:
    """What the work of one run may use: the engine it borrowed, and whether it was asked to stop."""

    lease: Lease
    stopped: threading.Event = field(default_factory=threading.Event)
    _on_stop: list[Callable[[], None]] = field(default_factory=list)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the UI thread) when the user stops the run: a job's cancel, say."""
        self._on_stop.append(callback)


Events = Callable[[list[Any]], Awaitable[None] | None]
Finished = Callable[[str | None], Awaitable[None] | None]


class Generation(Widget):
    DEFAULT_CSS = "Generation { display: none; }"

    @dataclass
    class Batch(Message):
        run: int
        events: list[Any]

    @dataclass
    class Done(Message):
        run: int
        error: str | None

    def __init__(self, verb: str, *, on_events: Events, on_finished: Finished,
                 urgent: Callable[[Any], bool] | None = None, **kwargs: Any) -> None:
        """``verb``: what the status line says while it runs ("generating", "summarizing", …); ``urgent``: the
        events that reach the pane at once, with what came before them (a step that may be followed by a wait)."""
        super().__init__(**kwargs)
        self._urgent = urgent
        self.verb = verb
        self._on_events = on_events
        self._on_finished = on_finished
        self._number = 0
        self.current: Run | None = None
        #: the seconds between batches, read by the worker
        self.interval = MIN_INTERVAL_S
        # UI thread CPU time and wall time at the first batch of the run (not at its start: the time the
        # prompt took would be credit spent on early updates)
        self._clock: tuple[float, float] | None = None

    @property
    def running(self) -> bool:
        return self.current is not None

    # -- borrowing -----------------------------------------------------------------

    def borrow(self, verb: str | None = None) -> Lease | None:
        """The engine for a run about to start; None (the user was told why) when it is not free."""
        if self.current is not None:
            self.notify(f"Already {self.verb} (Esc stops it)", severity="warning")
            return None
        lease = host(self).acquire_engine(self, verb or self.verb)
        if lease is not None:
            self.current = Run(lease)
        return lease

    def give_back(self) -> None:
        """Return a borrowed engine whose run never started (preparing it failed)."""
        self.current = None
        host(self).release_engine(self)

    def start(self, work: Callable[[Run], Iterable[Any]], verb: str | None = None) -> bool:
        """Borrow the engine and run ``work``; False (the user told why) when the engine is not free."""
        if self.borrow(verb) is None:
            return False
        self.stream(work)
        return True

    def stream(self, work: Callable[[Run], Iterable[Any]]) -> None:
        """Run ``work`` on the engine borrowed with ``borrow``, in a thread worker."""
        run = self.current
        assert run is not None, "stream() without borrow()"
        self._number += 1
        self.interval = MIN_INTERVAL_S
        self._clock = None
        number = self._number
        self.run_worker(lambda: self._work(work, run, number), thread=True, group="generation",
                        exit_on_error=False)

    def stop(self) -> None:
        """Esc: stop the run; what it produced is kept."""
        run = self.current
        if run is None:
            return
        run.stopped.set()
        run.lease.engine.cancel()
        for callback in run._on_stop:
            callback()

    # -- the worker ------------------------------------------------------------------

    def _work(self, work: Callable[[Run], Iterable[Any]], run: Run, number: int) -> None:
        pending: list[Any] = []
        last = time.perf_counter()
        error = None
        try:
            for event in work(run):
                pending.append(event)
                now = time.perf_counter()
                if now - last >= self.interval or (self._urgent is not None and self._urgent(event)):
                    self.post_message(self.Batch(number, pending))
                    pending = []
                    last = now
        except GpttermError as err:
            error = str(err)
        finally:
            if pending:
                self.post_message(self.Batch(number, pending))
        self.post_message(self.Done(number, error))

    async def on_generation_batch(self, message: Batch) -> None:
        message.stop()
        if message.run != self._number:
            return
        if self._clock is None:
            self._clock = (time.thread_time(), time.perf_counter())
        result = self._on_events(message.events)
        if result is not None:
            await result
        # A budget, not a per-update rule: the UI thread may have used UI_CPU_SHARE of the time since the
        # run's first batch, so an expensive update (a layout pass) delays the next ones until it is paid for.
        cpu0, wall0 = self._clock
        spent, elapsed = time.thread_time() - cpu0, time.perf_counter() - wall0
        self.interval = min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, spent / UI_CPU_SHARE - elapsed))

    async def on_generation_done(self, message: Done) -> None:
        message.stop()
        if message.run == self._number:
            if message.error:
                self.notify(message.error, severity="error", timeout=10)
            await self._finish(message.error)

    async def _finish(self, error: str | None) -> None:
        if self.current is None:
            return
        self.current = None
        host(self).release_engine(self)
        result = self._on_finished(error)
        if result is not None:
            await result

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A bug in the work: said, and the pane and the engine stay usable (a worker's state changes
        # reach only the node that runs it).
        if event.state == WorkerState.ERROR and event.worker.group == "generation":
            error = f"{type(event.worker.error).__name__}: {event.worker.error}"
            self.notify(error, title="Internal error", severity="error", timeout=15)
            await self._finish(error)
