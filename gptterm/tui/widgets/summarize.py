"""The Summarize pane: paste text or open a file, choose the shape, watch it stream."""

from __future__ import annotations

from typing import Any, TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, ProgressBar, Select, TextArea

from gptterm.assets import languages
from gptterm.tasks.job import Job
from gptterm.tasks.summarize import FORMS, LENGTH_WORDS, Summarizer, SummaryOptions
from gptterm.tasks.translate import source_language
from gptterm.tui.widgets.markdown_view import MarkdownView
from gptterm.tui.widgets.task_pane import TaskPane

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.settings import Params


def language_options() -> list[tuple[str, str]]:
    return [(f"{name} ({code})", code) for code, (name, _native) in sorted(languages().items(), key=lambda x: x[1][0])]


class SummarizePane(TaskPane):
    VERB = "summarizing"
    TASK = "summarize"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.output_text = ""

    def compose_pane(self) -> ComposeResult:
        with Horizontal(classes="task-options -folds"):
            yield Select([(k, k) for k in LENGTH_WORDS], value="medium", allow_blank=False, id="sum-length")
            yield Input(placeholder="or words", id="sum-words", classes="narrow")
            yield Select([(k, k) for k in FORMS], value="paragraph", allow_blank=False, id="sum-form")
            yield Select(language_options(), prompt="same language", id="sum-language")
            yield Input(placeholder="focus, e.g. the risks", id="sum-focus")
            yield Button("Summarize (ctrl+g)", id="sum-run", variant="primary")
        with Horizontal(classes="task-body"):
            with Vertical(classes="task-side"):
                yield Input(placeholder="open a file: type its path and press Enter", classes="file-path",
                            id="sum-file")
                yield TextArea(classes="source", id="sum-source", soft_wrap=True)
            with Vertical(classes="task-side"):
                with VerticalScroll(id="sum-output-scroll"):
                    yield MarkdownView(id="sum-output")
        with Horizontal(classes="task-progress"):
            yield Label("", classes="progress-label")
            yield ProgressBar(total=1, show_eta=False, id="sum-bar")

    def options(self) -> SummaryOptions:
        words = self.query_one("#sum-words", Input).value.strip()
        length = words or str(self.query_one("#sum-length", Select).value)
        language = self.query_one("#sum-language", Select).value
        return SummaryOptions.parse(length, str(self.query_one("#sum-form", Select).value),
                                    None if language is Select.NULL else str(language),
                                    self.query_one("#sum-focus", Input).value)

    def languages(self) -> tuple[str, ...]:
        """The summary's language (when chosen) and the text's own."""
        language = self.query_one("#sum-language", Select).value
        asked = () if language is Select.NULL else (str(language),)
        return (*asked, *source_language(self.source_text()))

    def make_job(self, engine: Engine, params: Params) -> Job:
        return Summarizer(engine, params, self.options())

    @property
    def output(self) -> MarkdownView:
        return self.query_one("#sum-output", MarkdownView)

    async def clear_output(self) -> None:
        self.output_text = ""
        self.output.update("", streaming=True)

    async def write_output(self, text: str) -> None:
        self.output_text += text
        self.output.append(text)
        self.query_one("#sum-output-scroll").scroll_end(animate=False)

    async def finish_output(self, job: Job) -> None:
        final = getattr(job, "text", "") or self.output_text
        self.output_text = final
        self.output.update(final)

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "sum-run":
            event.stop()
            await self.start()
