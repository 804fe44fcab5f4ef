"""The Translate pane: source and translation side by side, language pickers, swap."""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, ProgressBar, Select, TextArea

from gptterm.assets import language_code
from gptterm.tasks.job import Job
from gptterm.tasks.translate import Translator, load_glossary
from gptterm.tui.host import host
from gptterm.tui.widgets.summarize import language_options
from gptterm.tui.widgets.task_pane import TaskPane

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.settings import Params

AUTO = "auto"


class TranslatePane(TaskPane):
    VERB = "translating"
    TASK = "translate"

    def compose_pane(self) -> ComposeResult:
        with Horizontal(classes="task-options -folds"):
            yield Select([("detect language", AUTO), *language_options()], value=AUTO, allow_blank=False,
                         id="tr-source-lang")
            yield Button("⇄ swap", id="tr-swap")
            yield Select(language_options(), value="zh", allow_blank=False, id="tr-target-lang")
            yield Input(placeholder="glossary file (optional)", id="tr-glossary")
            yield Button("Translate (ctrl+g)", id="tr-run", variant="primary")
        with Horizontal(classes="task-body"):
            with Vertical(classes="task-side"):
                yield Input(placeholder="open a file: type its path and press Enter", classes="file-path",
                            id="tr-file")
                yield TextArea(classes="source", id="tr-source", soft_wrap=True)
            with Vertical(classes="task-side"):
                yield Label("", id="tr-detected")
                yield TextArea(id="tr-output", read_only=True, soft_wrap=True)
        with Horizontal(classes="task-progress"):
            yield Label("", classes="progress-label")
            yield ProgressBar(total=1, show_eta=False, id="tr-bar")

    def make_job(self, engine: Engine, params: Params) -> Job:
        source = self.query_one("#tr-source-lang", Select).value
        glossary_path = self.query_one("#tr-glossary", Input).value.strip()
        glossary = load_glossary(glossary_path) if glossary_path else None
        return Translator(engine, params, target=str(self.query_one("#tr-target-lang", Select).value),
                          source=None if source == AUTO else str(source), glossary=glossary)

    def languages(self) -> tuple[str, ...]:
        source = self.query_one("#tr-source-lang", Select).value
        target = str(self.query_one("#tr-target-lang", Select).value)
        return (target,) if source == AUTO else (target, str(source))

    @property
    def output(self) -> TextArea:
        return self.query_one("#tr-output", TextArea)

    async def clear_output(self) -> None:
        self.output.load_text("")
        self.query_one("#tr-detected", Label).update("")

    async def write_output(self, text: str) -> None:
        out = self.output
        out.insert(text, out.document.end)
        out.scroll_end(animate=False)

    async def finish_output(self, job: Job) -> None:
        translator: Any = job
        if self.query_one("#tr-source-lang", Select).value == AUTO and translator.source:
            self.detected = language_code(translator.source)
            self.query_one("#tr-detected", Label).update(f"detected: {translator.source}")
            # a detected source language the model does not know
            host(self).advise(self.TASK, (*self.languages(), self.detected))

    detected: str | None = None

    def swap(self) -> None:
        """Exchange the languages, and move the translation over as the new source text."""
        source = self.query_one("#tr-source-lang", Select)
        target = self.query_one("#tr-target-lang", Select)
        old_source = self.detected if source.value == AUTO else source.value
        if old_source is None:
            self.notify("Choose the source language (or translate once to detect it) to swap", severity="warning")
            return
        source.value, target.value = target.value, old_source
        translated = self.output.text
        if translated.strip():
            self.query_one("#tr-source", TextArea).load_text(translated)
            self.output.load_text("")

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "tr-run":
            await self.start()
        elif event.button.id == "tr-swap":
            self.swap()
