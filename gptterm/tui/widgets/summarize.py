"""The Summarize pane: paste text or open a file, choose the shape, watch it stream."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Markdown, ProgressBar, Select, TextArea
from textual.widgets.markdown import MarkdownStream

from gptterm.assets import languages
from gptterm.tasks.job import Job
from gptterm.tasks.summarize import FORMS, LENGTH_WORDS, Summarizer, SummaryOptions
from gptterm.tui.widgets.task_pane import TaskPane


def language_options() -> list[tuple[str, str]]:
    return [(f"{name} ({code})", code) for code, (name, _native) in sorted(languages().items(), key=lambda x: x[1][0])]


class SummarizePane(TaskPane):
    VERB = "summarizing"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stream: MarkdownStream | None = None
        self.output_text = ""

    def compose(self) -> ComposeResult:
        with Horizontal(classes="task-options"):
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
                    yield Markdown("", id="sum-output")
        with Horizontal(classes="task-progress"):
            yield Label("", classes="progress-label")
            yield ProgressBar(show_eta=False, id="sum-bar")

    def options(self) -> SummaryOptions:
        words = self.query_one("#sum-words", Input).value.strip()
        length = words or str(self.query_one("#sum-length", Select).value)
        language = self.query_one("#sum-language", Select).value
        return SummaryOptions.parse(length, str(self.query_one("#sum-form", Select).value),
                                    None if language is Select.NULL else str(language),
                                    self.query_one("#sum-focus", Input).value)

    def make_job(self, engine: Any, params: Any) -> Job:
        return Summarizer(engine, params, self.options())

    async def clear_output(self) -> None:
        self.output_text = ""
        self._stream = None
        await self.query_one("#sum-output", Markdown).update("")

    async def write_output(self, text: str) -> None:
        if self._stream is None:
            self._stream = Markdown.get_stream(self.query_one("#sum-output", Markdown))
        self.output_text += text
        await self._stream.write(text)
        self.query_one("#sum-output-scroll").scroll_end(animate=False)

    async def finish_output(self, job: Job) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        final = getattr(job, "text", "") or self.output_text
        self.output_text = final
        await self.query_one("#sum-output", Markdown).update(final)

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "sum-run":
            event.stop()
            await self.start()
