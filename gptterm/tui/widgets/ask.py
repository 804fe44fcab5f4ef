"""The Ask pane: questions answered from files, folders or a collection, with numbered sources.

Say where to look (paths, or ``@NAME`` for a collection), ask; the files are
indexed (only what changed since last time), the answer streams with its
sources beside it, and choosing a source shows its passage with path and
lines. Follow-up questions continue the conversation, stored in the history
as an "ask" conversation. Indexing, retrieval and the answer run in a thread
worker on the engine the app lends (the pane's ``Generation``); the answer is a turn of the
session core, like a chat reply.
"""

from __future__ import annotations

import queue
import shlex
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from gptterm import textio
from gptterm.errors import DocsError, GpttermError
from gptterm.session import turn as turns
from gptterm.session.turn import TextDelta, Turn
from gptterm.settings import Params
from gptterm.tasks.ask import Asker
from gptterm.tasks.chat import ChatSession
from gptterm.tui.generation import Generation, Run
from gptterm.tui.host import host
from gptterm.tui.widgets.markdown_view import MarkdownView
from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.docs.index import DocIndex, Hit, Update
    from gptterm.history.store import HistoryStore
    from gptterm.tasks.ask import Grounding
    from gptterm.types import Message as ChatMessage


@dataclass(frozen=True)
class Indexed:
    """How far the index update has come (``done``: it is up to date)."""

    report: Update
    done: bool


@dataclass(frozen=True)
class Found:
    """The passages retrieved for the question (the answer streams next, unless they cannot answer)."""

    grounding: Grounding


class AskPane(Vertical):
    VERB = "answering"

    @dataclass
    class Answered(Message):
        """A question was answered (``turn``; without a model call when the documents could not answer), or
        not (``error``), from the passages in ``grounding``."""

        run: int
        question: str
        turn: Turn | None
        grounding: Grounding | None
        error: str | None = None

    def __init__(self, *, store: HistoryStore, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.store = store
        self.index: DocIndex | None = None
        self.run = 0
        #: the questions and answers so far (follow-ups see them), stored as an "ask" conversation
        self.chat = ChatSession(None, Params(), store=store, kind="ask")
        self.hits: list[Hit] = []
        self.transcript = ""
        self._question = ""
        self._turn: Turn | None = None
        self._grounding: Grounding | None = None
        self.generation = Generation(self.VERB, on_events=self._events, on_finished=self._finished)

    @property
    def history(self) -> list[ChatMessage]:
        return self.chat.messages

    def compose(self) -> ComposeResult:
        yield self.generation
        with Horizontal(classes="task-options"):
            yield Input(placeholder="where: files, folders or @collection (separated by spaces)", id="ask-where")
            yield Button("Ask (ctrl+g)", id="ask-run", variant="primary")
            yield Button("New", id="ask-new", tooltip="start a new conversation")
        yield Input(placeholder="your question (Enter asks; follow-up questions continue the conversation)",
                    id="ask-question")
        with Horizontal(classes="task-body"):
            with VerticalScroll(id="ask-answer-scroll") as answer:
                answer.border_title = "Answer"
                yield MarkdownView(id="ask-answer")
            with Vertical(id="ask-sources-side"):
                sources = OptionList(id="ask-sources")
                sources.border_title = "Sources"
                yield sources
                with VerticalScroll(id="ask-passage-scroll") as passage:
                    passage.border_title = "Passage"
                    yield Static("", id="ask-passage", markup=False)
        yield Label("Name where to look and ask a question", classes="progress-label", id="ask-status")

    def focus_default(self) -> None:
        target = "#ask-question" if self.query_one("#ask-where", Input).value.strip() else "#ask-where"
        self.query_one(target, Input).focus()

    def _status(self, text: str) -> None:
        self.query_one("#ask-status", Label).update(text)

    # -- asking ---------------------------------------------------------------------

    @on(Input.Submitted, "#ask-where")
    def _where_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#ask-question", Input).focus()

    @on(Input.Submitted, "#ask-question")
    def _question_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.start()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ask-run":
            self.start()
        elif event.button.id == "ask-new":
            self.new_conversation()

    def new_conversation(self) -> None:
        if self.generation.running:
            self.notify("Stop the answer first (Esc)", severity="warning")
            return
        self.chat = ChatSession(None, Params(), store=self.store, kind="ask")
        self.transcript = ""
        self.query_one("#ask-answer", MarkdownView).update("")
        self.query_one("#ask-sources", OptionList).clear_options()
        self.query_one("#ask-passage", Static).update("")
        self._status("New conversation: ask a question")

    def start(self) -> None:
        where = self.query_one("#ask-where", Input).value.strip()
        question = self.query_one("#ask-question", Input).value.strip()
        if not where:
            self.notify("Say where to look first: files, folders or @collection", severity="warning")
            self.query_one("#ask-where", Input).focus()
            return
        if not question:
            self.notify("Type a question first", severity="warning")
            return
        try:
            items = shlex.split(where)
            question = textio.clean(question, "the question")
        except (ValueError, GpttermError) as err:
            self.notify(f"cannot read where to look: {err}", severity="error")
            return
        if self.generation.borrow() is None:
            return
        host(self).advise("ask", ())
        self.run += 1
        self._question, self._turn, self._grounding = question, None, None
        self.transcript += ("\n\n---\n\n" if self.transcript else "") + f"**Q:** {question}\n\n"
        self.query_one("#ask-answer", MarkdownView).update(self.transcript, streaming=True)
        self.query_one("#ask-question", Input).value = ""
        self._status("indexing…")
        self.generation.stream(lambda run: self._answer(run, items, question))

    def _answer(self, run: Run, items: list[str], question: str) -> Iterator[object]:
        """In the worker: bring the index up to date, retrieve, and answer as a turn of the conversation."""
        from gptterm.docs.index import DocIndex  # in the worker: the index's modules load off the UI thread

        if self.index is None:
            self.index = DocIndex()
        index = self.index
        roots = index.roots_for(items)
        # the update reports from its own thread, so that its progress streams like any other event
        reports: queue.SimpleQueue[Update | None] = queue.SimpleQueue()
        outcome: list[Update | BaseException] = []

        def update() -> None:
            try:
                outcome.append(index.update(roots, progress=lambda r, _path: reports.put(r), cancel=run.stopped))
            except BaseException as err:  # handed to the worker
                outcome.append(err)
            finally:
                reports.put(None)

        threading.Thread(target=update, name="gptterm-index", daemon=True).start()
        while (progress := reports.get()) is not None:
            yield Indexed(progress, done=False)
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        yield Indexed(outcome[0], done=True)
        ids = index.scope(roots)
        if not ids:
            raise DocsError("nothing to search: none of those files holds readable text")
        self.chat.engine, self.chat.params = run.lease.engine, run.lease.params
        grounding = Asker(run.lease.engine, run.lease.params, index, ids).find(question)
        yield Found(grounding)
        current = turns.turn(self.chat, question, grounding=grounding)
        self._turn = current
        yield from current.events()

    def _events(self, events: list[object]) -> None:
        view = self.query_one("#ask-answer", MarkdownView)
        text: list[str] = []
        indexed = [e for e in events if isinstance(e, Indexed)]
        if indexed:  # the latest report says it all
            self._indexed(indexed[-1])
        for event in events:
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, Found):
                self._found(event.grounding)
        if text:
            piece = "".join(text)
            self.transcript += piece
            view.append(piece)
            self.query_one("#ask-answer-scroll", VerticalScroll).scroll_end(animate=False)

    def _indexed(self, event: Indexed) -> None:
        r = event.report
        if not event.done:
            self._status(f"indexing: {plural(r.files, 'file')}, {plural(r.passages, 'passage')}, "
                         f"{r.mb_per_s:.1f} MB/s")
            return
        for line in r.skipped[:5]:
            self.notify(f"skipped {line}", severity="warning", timeout=6)
        for note in r.notes[:5]:
            self.notify(note, timeout=6)
        self._status(f"{plural(r.files, 'file')} ({r.read} read, {r.unchanged} unchanged, {r.removed} gone) · "
                     f"{plural(r.passages, 'new passage')} · retrieving…")

    def _found(self, grounding: Grounding) -> None:
        self._grounding = grounding
        self.hits = grounding.hits
        sources = self.query_one("#ask-sources", OptionList)
        sources.clear_options()
        for i, h in enumerate(self.hits, start=1):
            sources.add_option(Option(f"[{i}] {h.where()}", id=str(i - 1)))
        if grounding.found:
            self._status(f"answering from {plural(len(self.hits), 'passage')}… (Esc stops)")

    def _finished(self, error: str | None) -> None:
        view = self.query_one("#ask-answer", MarkdownView)
        current, self._turn = self._turn, None
        if error or current is None:
            self.transcript += "*(no answer)*"
            view.update(self.transcript)
            self._status("not answered")
            self.post_message(self.Answered(self.run, self._question, None, self._grounding, error or "stopped"))
            return
        view.update(self.transcript)
        reply = current.reply
        reason = reply.finish_reason if reply is not None else "not found"
        self._status(f"{len(self.hits)} sources · {reason} · select a source to read its passage · "
                     "ask a follow-up below")
        self.query_one("#ask-question", Input).focus()
        self.post_message(self.Answered(self.run, self._question, current, self._grounding))

    def stop(self) -> None:
        self.generation.stop()

    # -- reading a source ----------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#ask-sources")
    @on(OptionList.OptionSelected, "#ask-sources")
    def _source_chosen(self, event: OptionList.OptionHighlighted | OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is None:
            return
        hit = self.hits[int(event.option.id)]
        self.query_one("#ask-passage", Static).update(f"{hit.where()}\n\n{hit.text}")
