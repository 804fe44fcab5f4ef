"""What the Summarize and Translate panes share: running a job on the borrowed engine (the pane's
``Generation``), showing its progress, streaming its output, stopping it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, ProgressBar, TextArea

from gptterm import textio
from gptterm.errors import GpttermError
from gptterm.tasks.inputs import read_text_file
from gptterm.tasks.job import TASK_DEFAULTS, Job, TaskEvent
from gptterm.tasks.progress import PartProgress
from gptterm.tui.generation import Generation, Run
from gptterm.tui.host import host

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.settings import Params

class TaskPane(Vertical):
    """Base of a pane that turns the source text into output with a Job."""

    VERB = "working"
    #: the task, as the advice knows it (gptterm.models.advice)
    TASK = "chat"

    @dataclass
    class JobFinished(Message):
        """A job ended (finished, stopped or failed: ``error``)."""

        run_id: int
        job: Job
        error: str | None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job: Job | None = None
        self.run_id = 0
        #: the running job's progress, in the words and numbers the CLI's status line uses
        self.part_progress = PartProgress(self.VERB)
        self.generation = Generation(self.VERB, on_events=self._job_events, on_finished=self._job_finished)

    def compose(self) -> ComposeResult:
        yield self.generation
        yield from self.compose_pane()

    def compose_pane(self) -> ComposeResult:
        raise NotImplementedError

    # -- to be provided by the pane ------------------------------------------------

    def make_job(self, engine: Engine, params: Params) -> Job:
        raise NotImplementedError

    def source_text(self) -> str:
        return self.query_one(".source", TextArea).text

    async def clear_output(self) -> None:
        raise NotImplementedError

    async def write_output(self, text: str) -> None:
        raise NotImplementedError

    async def finish_output(self, job: Job) -> None:
        pass

    def languages(self) -> tuple[str, ...]:
        """The language codes the task is asked for (advice says when the model does not know one)."""
        return ()

    # -- shared ---------------------------------------------------------------------

    def focus_default(self) -> None:
        self.query_one(".source", TextArea).focus()

    @property
    def running(self) -> bool:
        return self.job is not None

    def load_file(self, path: str) -> None:
        """Read ``path`` in any encoding (gptterm.textio, or the config's 'encoding'); the notification names
        the encoding when it was a guess, and says so when bad bytes were replaced."""
        try:
            decoded = read_text_file(path, encoding=host(self).session.config.encoding)
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        self.query_one(".source", TextArea).load_text(decoded.text)
        size = f"{len(decoded.text):,} characters"
        if decoded.replaced:
            self.notify(f"Loaded {path} ({size}): {decoded.note(path)}", severity="warning", timeout=10)
        elif decoded.detected:
            self.notify(f"Loaded {path} as {decoded.label} ({size}): the encoding was detected", timeout=8)
        else:
            self.notify(f"Loaded {path} ({size}, {decoded.label})")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.has_class("file-path"):
            event.stop()
            if event.value.strip():
                self.load_file(event.value.strip())

    async def start(self) -> None:
        if self.running:
            self.notify("Already running (Esc stops it)", severity="warning")
            return
        try:  # pasted text is already str; a lone surrogate still never reaches the engine
            text = textio.clean(self.source_text(), "the text")
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        if not text.strip():
            self.notify("Paste some text or open a file first", severity="warning")
            return
        lease = self.generation.borrow()
        if lease is None:
            return
        try:
            job = self.make_job(lease.engine, lease.params.replace(**TASK_DEFAULTS))
        except GpttermError as err:
            self.generation.give_back()
            self.notify(str(err), severity="error")
            return
        self.job = job
        self.run_id += 1
        self.part_progress = PartProgress(self.VERB)
        await self.clear_output()
        self._progress("starting…", None, None)
        host(self).advise(self.TASK, self.languages())

        def work(run: Run) -> Any:
            run.on_stop(job.cancel)
            return job.run(text)

        self.generation.stream(work)

    def stop(self) -> None:
        self.generation.stop()

    async def _job_events(self, events: list[TaskEvent]) -> None:
        text = "".join(e.text for e in events if e.kind == "text")
        if text:
            await self.write_output(text)
        for event in events:
            if event.kind == "text":
                continue
            self.part_progress.update(event)
            progress = self.part_progress
            self._progress(progress.text(), progress.done, progress.total)

    async def _job_finished(self, error: str | None) -> None:
        job, self.job = self.job, None
        if job is None:
            return
        await self.finish_output(job)
        stats = job.stats()
        summary = self.part_progress.finished(stats)
        trimmed = [c for c in job.chunks if c.get("trimmed") and c.get("final")]
        if trimmed:
            summary += " · cut at its last complete sentence (it reached its token cap)"
        if job.incomplete:
            summary += f" · may be incomplete: part{'s' if len(job.incomplete) > 1 else ''} " + \
                ", ".join(map(str, job.incomplete))
        self._progress(summary, 1, 1)
        self.post_message(self.JobFinished(self.run_id, job, error))

    def _progress(self, text: str, done: int | None, total: int | None) -> None:
        self.query_one(".progress-label", Label).update(text)
        bar = self.query_one(ProgressBar)
        bar.update(total=total, progress=done or 0)
