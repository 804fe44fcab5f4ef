"""The Fine-tune screen: train the local model on a data file into a new local model, in the background.

The training runs in a child process (gptterm.finetune.runner), so it does not borrow the engine: the
chat stays usable meanwhile, as far as memory allows — ``prepare()`` has checked that the run fits the
memory available now, with the loaded model in it, and the screen says how much it needs and how much is
left. A thread worker only iterates ``FineTune.run()`` and posts each event; the handlers here draw the
progress line and the loss curve (``Curve``, fed from the events on the UI thread, redrawn at most every
``CURVE_EVERY_S``). Esc (or Stop) asks the child to stop after its current step, and nothing is saved;
F2–F9 go back to the panes while it trains on, and the palette's "Fine-tune…" comes back here. At the end
the model is registered: the app refreshes the Models pane, and ctrl+l (or l there) loads it.

The screen is installed once (``GpttermApp.open_finetune``) so that it outlives being hidden; the app
kills the child when it quits (``kill``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState

from gptterm.backend import Backend
from gptterm.errors import GpttermError
from gptterm.finetune import events as ev
from gptterm.finetune.curve import Curve
from gptterm.finetune.plan import Settings
from gptterm.models.names import human_size
from gptterm.tasks.progress import clock
from gptterm.tui.actions import FINETUNE_ACTIONS
from gptterm.tui.host import host
from gptterm.tui.messages import ModelAdded, SwitchBackend
from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.finetune.runner import FineTune

CURVE_EVERY_S = 0.5
#: memory left beside the training below which the screen warns that loading another model may fail
LOW_MEMORY = 2**30
HINT = "F2–F9: to the panes (it trains on) · Esc: stop · ctrl+p Fine-tune…: back here"


class FinetuneScreen(Screen[None]):
    BINDINGS = [a.binding() for a in FINETUNE_ACTIONS]
    AUTO_FOCUS = "#ft-data"
    DEFAULT_CSS = """
    FinetuneScreen { layout: vertical; }
    FinetuneScreen #ft-body { padding: 0 1; height: 1fr; }
    FinetuneScreen #ft-title-row { height: 1; }
    FinetuneScreen #ft-progress-row { height: auto; max-height: 2; }
    FinetuneScreen #ft-title {
        width: 1fr; text-style: bold; color: $accent; text-wrap: nowrap; text-overflow: ellipsis;
    }
    FinetuneScreen .ft-row { height: 3; }
    FinetuneScreen .ft-row Input { width: 1fr; margin: 0 1 0 0; }
    FinetuneScreen #ft-data { width: 2fr; }
    /* an Input shows its width less 6 cells (border and padding): 1e-4 and 5e-5 need 12 */
    FinetuneScreen .ft-row Input.ft-number { width: 10; }
    FinetuneScreen .ft-row Input#ft-epochs, FinetuneScreen .ft-row Input#ft-lr { width: 12; }
    FinetuneScreen #ft-keep { width: auto; margin: 1 1 0 0; }
    FinetuneScreen .ft-row Button { min-width: 16; }
    FinetuneScreen #ft-stop { display: none; }
    FinetuneScreen.-running #ft-start { display: none; }
    FinetuneScreen.-running #ft-stop { display: block; }
    FinetuneScreen #ft-memory { height: auto; max-height: 3; color: $text-muted; }
    FinetuneScreen #ft-progress-label { width: 1fr; height: auto; }
    FinetuneScreen #ft-progress { width: 30; display: none; }
    FinetuneScreen.-running #ft-progress { display: block; }
    FinetuneScreen #ft-load { display: none; margin: 0 0 0 1; }
    FinetuneScreen.-done #ft-load { display: block; }
    FinetuneScreen #ft-curve { height: 1fr; }
    FinetuneScreen #ft-hint { height: 1; color: $text-muted; }
    """

    @dataclass
    class Prepared(Message):
        """Everything was checked (data, name, memory, disk): the child starts."""

        text: str

    @dataclass
    class Progress(Message):
        event: ev.Event

    @dataclass
    class Note(Message):
        text: str

    @dataclass
    class Ended(Message):
        """The run is over: done, stopped, or failed (``error``, one line)."""

        name: str
        error: str | None
        stopped: bool
        info: dict[str, Any] | None

    def __init__(self, base: str | None, base_label: str) -> None:
        """``base``: the model to fine-tune (-m's spec: a name or a path; None: the default model)."""
        super().__init__(id="finetune-screen")
        self.base = base
        self.base_label = base_label
        self.job: FineTune | None = None
        self.curve = Curve()
        #: the name of the model the last run registered (ctrl+l loads it)
        self.made: str | None = None
        self._drawn_at = 0.0
        self._redraw_pending = False
        self._steps = ""

    @property
    def running(self) -> bool:
        return self.job is not None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="ft-body"):
            with Horizontal(id="ft-title-row"):
                yield Label("", id="ft-title")
                yield Button("Back (F2)", id="ft-back", compact=True)
            with Horizontal(classes="ft-row"):
                yield Input(placeholder="data file: JSONL chat or text", id="ft-data")
                yield Input(placeholder="new model's name", id="ft-name")
            with Horizontal(classes="ft-row"):
                defaults = Settings()
                for key, value, tip in (("epochs", str(defaults.epochs), "passes over the data"),
                                        ("lr", f"{defaults.lr:.0e}".replace("e-0", "e-"), "learning rate (AdamW)"),
                                        ("ctx", str(defaults.ctx), "tokens a step: a multiple of 256"),
                                        ("val", str(defaults.val_split), "share of the examples kept for validation")):
                    field = Input(value, id=f"ft-{key}", classes="ft-number", tooltip=tip)
                    field.border_title = key
                    yield field
                yield Checkbox("keep F32", id="ft-keep", compact=True,
                               tooltip="keep the trained model in F32 (4 bytes a weight) instead of quantizing it "
                                       "back to the base's type")
                yield Button("Start (ctrl+g)", id="ft-start", variant="primary")
                yield Button("Stop (esc)", id="ft-stop", variant="error")
            yield Static("", id="ft-memory")
            with Horizontal(id="ft-progress-row"):
                yield Label("", id="ft-progress-label")
                yield ProgressBar(total=None, id="ft-progress", show_eta=False)
                yield Button("Load it (ctrl+l)", id="ft-load", compact=True)
            yield Static("", id="ft-curve")
            yield Label(HINT, id="ft-hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#ft-data", Input).border_title = "data file"
        self.query_one("#ft-name", Input).border_title = "new model"
        self._show_base()
        self._memory("Full fine-tuning, in a child process: about 16 bytes of memory a parameter (F32 weights, "
                     "gradients, AdamW), checked when you start")
        self._progress("Give a data file and a name, then Start (ctrl+g)", None)

    def set_base(self, base: str | None, base_label: str) -> None:
        """Fine-tune ``base`` next (not while a run is going: it keeps its own)."""
        if self.running:
            return
        self.base, self.base_label = base, base_label
        self._show_base()

    def _show_base(self) -> None:
        self.query_one("#ft-title", Label).update(f"Fine-tune {self.base_label} into a new local model")

    def _memory(self, text: str) -> None:
        self.query_one("#ft-memory", Static).update(text)

    def _progress(self, text: str, fraction: float | None) -> None:
        self.query_one("#ft-progress-label", Label).update(text)
        bar = self.query_one(ProgressBar)
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=1000, progress=round(fraction * 1000))

    # -- starting ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.running
        if action == "start":
            return not self.running
        if action == "close":
            return not self.running
        if action == "load":
            return self.made is not None and not self.running
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        actions = {"ft-start": self.action_start, "ft-stop": self.action_stop, "ft-load": self.action_load,
                   "ft-back": self.action_close}
        action = actions.get(event.button.id or "")
        if action is not None:
            action()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def _settings(self) -> Settings | None:
        """The settings typed in; None (the user told which field is wrong) when one is not a number."""
        fields = (("epochs", int, "a whole number of passes"), ("lr", float, "a number such as 1e-4"),
                  ("ctx", int, "a whole number of tokens (a multiple of 256)"),
                  ("val", float, "a share between 0 and 1, such as 0.1"))
        values: dict[str, Any] = {}
        for key, kind, what in fields:
            text = self.query_one(f"#ft-{key}", Input).value.strip()
            try:
                values[key] = kind(text)
            except ValueError:
                self.notify(f"{key}: {what}, not {text!r}", severity="error")
                return None
        settings = Settings(epochs=values["epochs"], lr=values["lr"], ctx=values["ctx"], val_split=values["val"],
                            keep_f32=self.query_one(Checkbox).value, threads=host(self).session.params.threads)
        try:
            settings.check()
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return None
        return settings

    def action_start(self) -> None:
        from gptterm.finetune.runner import FineTune  # the training runner: only when a fine-tune starts

        if self.running:
            self.notify("Training is running: Esc stops it", severity="warning")
            return
        data = self.query_one("#ft-data", Input).value.strip()
        name = self.query_one("#ft-name", Input).value.strip()
        if not data or not name:
            self.notify("Give the data file (JSONL chat or plain text) and the new model's name", severity="warning")
            self.query_one("#ft-data" if not data else "#ft-name", Input).focus()
            return
        settings = self._settings()
        if settings is None:
            return
        def note(text: str) -> None:  # from the worker: read_data's notes (an encoding guessed)
            self.post_message(self.Note(text))

        job = FineTune(Path(data).expanduser(), name, model=self.base, settings=settings,
                       encoding=host(self).session.config.encoding, notify=note)
        self.job = job
        self.made = None
        self.curve = Curve()
        self._steps = ""
        self.set_class(True, "-running")
        self.set_class(False, "-done")
        self.query_one("#ft-curve", Static).update("")
        self._progress(f"checking {Path(data).name}, {name!r} and this machine…", None)
        self.refresh_bindings()
        self._train(job)

    @work(thread=True, exclusive=True, group="finetune", exit_on_error=False)
    def _train(self, job: FineTune) -> None:
        from gptterm.models.machine import this_machine  # probes the machine: in the worker, not at start

        try:
            prep = job.prepare()
            self.post_message(self.Prepared(_memory_line(prep, this_machine().ram_available)))
            for event in job.run():
                self.post_message(self.Progress(event))
        except GpttermError as err:
            self.post_message(self.Ended(job.name, str(err), job.stopped, None))
            return
        self.post_message(self.Ended(job.name, None, job.stopped, job.info))

    # -- while it runs -------------------------------------------------------------------------

    def on_finetune_screen_prepared(self, message: Prepared) -> None:
        self._memory(message.text)
        self._progress("starting the training process…", None)

    def on_finetune_screen_note(self, message: Note) -> None:
        self.notify(message.text, timeout=10)

    def on_finetune_screen_progress(self, message: Progress) -> None:
        event = message.event
        self.curve.add(event)
        if isinstance(event, ev.Stage) and event.name != "train":
            self._progress(f"{event.text}…", None)
        elif isinstance(event, ev.Data):
            unit = "example" if event.kind == "chat" else "paragraph"
            self._steps = (f"{plural(event.train_examples, unit)} ({plural(event.train_tokens, 'token')}) to train on, "
                           f"{event.val_examples} for validation · {plural(event.steps_per_epoch, 'step')} of "
                           f"{event.ctx} tokens an epoch")
            self._progress(self._steps, None)
        elif isinstance(event, ev.Step):
            self._progress(f"epoch {event.epoch}/{event.epochs} · step {event.step}/{event.steps} · loss "
                           f"{event.loss:.3f} · {event.tokens_per_s:.0f} tok/s · ~{clock(event.seconds_left)} left",
                           event.done / max(1, event.total))
            self._draw_curve()
        elif isinstance(event, ev.Epoch):
            self._draw_curve(now=True)
        elif isinstance(event, ev.Note):
            self.notify(event.text, timeout=10)

    def _draw_curve(self, now: bool = False) -> None:
        """Draw the curve now if it was not drawn in the last CURVE_EVERY_S, else once that time is up."""
        wait = CURVE_EVERY_S - (time.monotonic() - self._drawn_at)
        if now or wait <= 0:
            self._redraw_pending = False
            self._drawn_at = time.monotonic()
            self._paint_curve()
        elif not self._redraw_pending:
            self._redraw_pending = True
            self.set_timer(wait, lambda: self._draw_curve(now=True))

    def _paint_curve(self) -> None:
        widget = self.query_one("#ft-curve", Static)
        if not self.curve:
            return
        size = widget.content_size
        if size.width < 30 or size.height < 8:
            return  # too small a screen for a curve: the progress line says it all
        widget.update(Text.from_ansi(self.curve.text(size.width, size.height, colour=True)))

    def on_resize(self) -> None:
        if self.curve:
            self.call_after_refresh(self._paint_curve)

    # -- stopping and the end -------------------------------------------------------------------

    def action_stop(self) -> None:
        if self.job is None:
            return
        self.job.stop()
        self._progress("stopping after the current step (nothing will be saved)…", None)

    def kill(self) -> None:
        """End the child at once (the app quits); nothing is saved."""
        if self.job is not None:
            self.job.kill()

    def action_close(self) -> None:
        self.app.pop_screen()

    def action_load(self) -> None:
        if self.made is None:
            self.notify("Nothing fine-tuned yet", severity="warning")
            return
        self.post_message(SwitchBackend(Backend(local_model=self.made)))
        self.app.pop_screen()

    def on_finetune_screen_ended(self, message: Ended) -> None:
        self.job = None
        self.set_class(False, "-running")
        self._draw_curve(now=True)
        if message.error:
            self.notify(message.error, title="Fine-tune failed", severity="error", timeout=15)
            self._progress(f"failed: {message.error}", 0)
        elif message.stopped or message.info is None:
            self._progress("stopped: nothing was saved", 0)
            self.notify("Fine-tuning stopped: nothing was saved", severity="warning")
        else:
            self._finished(message.name, message.info)
        self.refresh_bindings()

    def _finished(self, name: str, info: dict[str, Any]) -> None:
        from gptterm.models.finetuned import describe  # the finetune store: only once a run finished

        self.made = name
        self.set_class(True, "-done")
        before, after = info.get("perplexity_before"), info.get("perplexity_after")
        ppl = f" · validation perplexity {before:.2f} → {after:.2f}" if isinstance(before, float) and \
            isinstance(after, float) else ""
        self._progress(f"{name}: {describe(info)}, {info.get('quant', '?')}, {clock(info.get('seconds') or 0)}{ppl}", 1)
        self.notify(f"Fine-tuned {name}: the Models pane (F6) lists it; ctrl+l here or l there loads it", timeout=15)
        self.post_message(ModelAdded(name))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # a bug in the worker (not a user's error, which ends in Ended): said, and the screen usable again
        if event.state == WorkerState.ERROR and event.worker.group == "finetune":
            name = self.job.name if self.job is not None else ""
            self.kill()
            self.post_message(self.Ended(name, f"{type(event.worker.error).__name__}: {event.worker.error}",
                                         False, None))


def _memory_line(prep: Any, available: int | None) -> str:
    """What prepare() found about memory, and what it means for the chat meanwhile."""
    needs = prep.needs
    text = f"Training needs about {needs.describe()}"
    if available is None:
        return text + " (this machine's free memory is unknown)"
    left = available - needs.memory
    text += f"; {human_size(available)} is available with the loaded model in memory"
    if left < LOW_MEMORY:
        return text + (f": {human_size(max(0, left))} would be left, so the chat stays usable but loading another "
                       "model meanwhile may fail")
    return text + ": the chat stays usable meanwhile (slower: training takes the cores)"
