"""The Ask pane: questions answered from files, folders or a collection, with numbered sources.

Say where to look (paths, or ``@NAME`` for a collection), ask; the files are
indexed (only what changed since last time), the answer streams with its
sources beside it, and choosing a source shows its passage with path and
lines. Follow-up questions continue the conversation, stored in the history
as an "ask" conversation. Indexing, retrieval and the answer run in a thread
worker on the engine the app lends.
"""

from __future__ import annotations

import shlex
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from gptterm.errors import GpttermError
from gptterm.tui.host import host
from gptterm.tui.widgets.markdown_view import MarkdownView
from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.docs.index import DocIndex, Hit, Update
    from gptterm.engine.base import Engine
    from gptterm.types import Message as ChatMessage, Reply
    from gptterm.history.store import HistoryStore
    from gptterm.settings import Params
    from gptterm.tasks.ask import Asked

UPDATE_S = 0.15


class AskPane(Vertical):
    VERB = "answering"

    @dataclass
    class Indexing(Message):
        run: int
        report: Update
        done: bool

    @dataclass
    class Found(Message):
        run: int
        asked: Asked

    @dataclass
    class Chunk(Message):
        run: int
        text: str

    @dataclass
    class Answered(Message):
        run: int
        asked: Asked | None
        error: str | None = None

    def __init__(self, *, store: HistoryStore, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.store = store
        self.index: DocIndex | None = None
        self.run = 0
        self.busy = False
        self.cancel = threading.Event()
        self.engine: Engine | None = None
        self.history: list[ChatMessage] = []  # the questions and answers so far, for follow-ups
        self.conversation_id: int | None = None
        self.hits: list[Hit] = []
        self.transcript = ""

    def compose(self) -> ComposeResult:
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
        if self.busy:
            self.notify("Stop the answer first (Esc)", severity="warning")
            return
        self.history, self.conversation_id, self.transcript = [], None, ""
        self.query_one("#ask-answer", MarkdownView).update("")
        self.query_one("#ask-sources", OptionList).clear_options()
        self.query_one("#ask-passage", Static).update("")
        self._status("New conversation: ask a question")

    def start(self) -> None:
        from gptterm import textio

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
        lease = host(self).acquire_engine(self, self.VERB)
        if lease is None:
            return
        self.busy = True
        self.engine = lease.engine
        advise = getattr(self.app, "advise", None)
        if advise is not None:
            advise("ask", ())
        self.cancel.clear()
        self.run += 1
        self.transcript += ("\n\n---\n\n" if self.transcript else "") + f"**Q:** {question}\n\n"
        self.query_one("#ask-answer", MarkdownView).update(self.transcript, streaming=True)
        self.query_one("#ask-question", Input).value = ""
        self._status("indexing…")
        self._answer(lease.engine, lease.params, items, question, list(self.history), self.run)

    @work(thread=True, group="ask", exit_on_error=False)
    def _answer(self, engine: Engine, params: Params, items: list[str], question: str,
                history: list[ChatMessage], run: int) -> None:
        from gptterm.docs.index import DocIndex
        from gptterm.tasks.ask import Asker

        try:
            if self.index is None:
                self.index = DocIndex()
            index = self.index
            roots: list[str] = []
            for item in items:
                roots += index.collection_roots(item[1:]) if item.startswith("@") else [item]
            last = [0.0]

            def progress(report: Update, _path: str) -> None:
                if time.perf_counter() - last[0] >= UPDATE_S:
                    last[0] = time.perf_counter()
                    self.post_message(self.Indexing(run, report, done=False))

            report = index.update(roots, progress=progress, cancel=self.cancel)
            self.post_message(self.Indexing(run, report, done=True))
            ids = index.scope(roots)
            if not ids:
                self.post_message(self.Answered(run, None, "nothing to search: none of those files holds readable "
                                                           "text"))
                return
            asked = Asker(engine, params, index, ids).ask(question, history)
            self.post_message(self.Found(run, asked))
            if asked.reply is not None:
                pending, last_post = [], time.perf_counter()
                for piece in asked.reply:
                    pending.append(piece)
                    if time.perf_counter() - last_post >= UPDATE_S:
                        self.post_message(self.Chunk(run, "".join(pending)))
                        pending, last_post = [], time.perf_counter()
                if pending:
                    self.post_message(self.Chunk(run, "".join(pending)))
            self.post_message(self.Answered(run, asked))
        except GpttermError as err:
            self.post_message(self.Answered(run, None, str(err)))

    def on_ask_pane_indexing(self, message: Indexing) -> None:
        if message.run != self.run:
            return
        r = message.report
        if message.done:
            for line in r.skipped[:5]:
                self.notify(f"skipped {line}", severity="warning", timeout=6)
            for note in r.notes[:5]:
                self.notify(note, timeout=6)
            self._status(f"{plural(r.files, 'file')} ({r.read} read, {r.unchanged} unchanged, {r.removed} gone) · "
                         f"{plural(r.passages, 'new passage')} · retrieving…")
        else:
            self._status(f"indexing: {plural(r.files, 'file')}, {plural(r.passages, 'passage')}, {r.mb_per_s:.1f} MB/s")

    def on_ask_pane_found(self, message: Found) -> None:
        if message.run != self.run:
            return
        self.hits = message.asked.hits
        sources = self.query_one("#ask-sources", OptionList)
        sources.clear_options()
        for i, h in enumerate(self.hits, start=1):
            sources.add_option(Option(f"[{i}] {h.where()}", id=str(i - 1)))
        if message.asked.reply is not None:
            self._status(f"answering from {plural(len(self.hits), 'passage')}… (Esc stops)")

    def on_ask_pane_chunk(self, message: Chunk) -> None:
        if message.run == self.run:
            self.transcript += message.text
            self.query_one("#ask-answer", MarkdownView).append(message.text)
            self.query_one("#ask-answer-scroll", VerticalScroll).scroll_end(animate=False)

    def on_ask_pane_answered(self, message: Answered) -> None:
        from gptterm.tasks.ask import NOT_FOUND, sources_text

        if message.run != self.run:
            return
        self.busy = False
        host(self).release_engine(self)
        view = self.query_one("#ask-answer", MarkdownView)
        asked = message.asked
        if message.error or asked is None:
            self.notify(message.error or "the question could not be answered", severity="error", timeout=10)
            self.transcript += "*(no answer)*"
            view.update(self.transcript)
            self._status("not answered")
            return
        answer = asked.reply.text if asked.reply is not None else NOT_FOUND
        if asked.reply is None:
            self.transcript += NOT_FOUND
        view.update(self.transcript)
        self.history += [{"role": "user", "content": asked.question}, {"role": "assistant", "content": answer}]
        self._record(asked, answer, sources_text(asked.hits))
        reason = asked.reply.finish_reason if asked.reply is not None else "not found"
        self._status(f"{len(asked.hits)} sources · {reason} · select a source to read its passage · "
                     "ask a follow-up below")
        self.query_one("#ask-question", Input).focus()

    def _record(self, asked: Asked, answer: str, sources: str) -> None:
        try:
            if self.conversation_id is None:
                name = self.engine.info.name if self.engine is not None else None
                self.conversation_id = self.store.new_conversation(kind="ask", model=name)
            self.store.add_message(self.conversation_id, "user", asked.question)
            reply = asked.reply
            stats = {**reply.stats.as_dict(), "finish_reason": reply.finish_reason} if reply is not None else None
            self.store.add_message(self.conversation_id, "assistant",
                                   answer + (f"\n\nSources:\n{sources}" if sources else ""), stats=stats)
        except GpttermError as err:
            self.notify(str(err), severity="error")

    def stop(self) -> None:
        self.cancel.set()
        if self.engine is not None:
            self.engine.cancel()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group == "ask":
            self.busy = False
            host(self).release_engine(self)

    # -- reading a source ----------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#ask-sources")
    @on(OptionList.OptionSelected, "#ask-sources")
    def _source_chosen(self, event: OptionList.OptionHighlighted | OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is None:
            return
        hit = self.hits[int(event.option.id)]
        self.query_one("#ask-passage", Static).update(f"{hit.where()}\n\n{hit.text}")
