"""The chat pane: the conversation list, the messages and the input — and the conversation itself.

It owns the chat session, the reply being streamed (and how often it is
redrawn), editing a message, and opening and paging conversations. It asks
the app for the engine before each reply (``host.acquire_engine``) and
posts nothing else upward: the status line reads its reactive state.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from gptterm.types import Reply
from gptterm.errors import GpttermError
from gptterm.tasks.chat import ChatSession
from gptterm.tui.actions import CHAT_ACTIONS
from gptterm.tui.host import host
from gptterm.words import plural
from gptterm.tui.widgets.chat import ChatLog, MessageItem, PromptInput, ThinkingView, stats_text
from gptterm.tui.widgets.sidebar import ConversationList, Sidebar

if TYPE_CHECKING:
    from gptterm.docs.index import DocIndex, Hit
    from gptterm.engine.base import Engine
    from gptterm.engine.state_cache import StateCache
    from gptterm.history.store import HistoryStore
    from gptterm.settings import Params
    from gptterm.templates import Bound


def _ui_cpu_share() -> float:
    """Share of one core the UI may spend redrawing while a reply streams."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return 0.02 if cores <= 4 else 0.5


UI_CPU_SHARE = _ui_cpu_share()

# Opening a conversation renders its latest messages; older ones on request.
PAGE = 50
# Streamed text reaches the screen at most this often (seconds); the
# interval grows when redrawing costs more than UI_CPU_SHARE of a core.
MIN_CHUNK_INTERVAL_S = 0.1
MAX_CHUNK_INTERVAL_S = 0.5


class ChatPane(Vertical):
    BINDINGS = [a.binding() for a in CHAT_ACTIONS]

    @dataclass
    class ReplyChunk(Message):
        reply_id: int
        text: str

    @dataclass
    class ReplyThinking(Message):
        """A piece of a reasoning model's thinking (its <think> block), streamed apart from the reply."""

        reply_id: int
        text: str

    @dataclass
    class ReplyFinished(Message):
        reply_id: int
        reply: Reply
        error: str | None = None

    @dataclass
    class ContextCounted(Message):
        """The tokens a conversation occupies, counted off the UI thread (a remote engine asks its server)."""

        session: ChatSession
        tokens: int
        error: str | None = None

    #: tokens the open conversation occupies in the context
    context_used: reactive[int] = reactive(0)
    #: the last reply's decode rate
    last_tokens_per_s: reactive[float | None] = reactive(None)
    #: index of the user message being edited, or None
    editing: reactive[int | None] = reactive(None)

    def __init__(self, *, store: HistoryStore, state_cache: StateCache, params: Params,
                 conversation_id: int | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.store = store
        self.state_cache = state_cache
        self.session = ChatSession(None, params, store=store, kind="chat", state_cache=state_cache)
        self.engine: Engine | None = None
        self.reply: Reply | None = None
        self.reply_id = 0
        self.reply_item: MessageItem | None = None
        # On a small machine llama.cpp's threads use every core, and each
        # millisecond the UI spends drawing stalls generation by 1-3 ms (its
        # threads meet at barriers; the reply thread waits for the GIL), so
        # updates are spaced to keep the UI thread near UI_CPU_SHARE of a
        # core. Read by the reply worker.
        self.chunk_interval = MIN_CHUNK_INTERVAL_S
        # UI thread CPU time and wall time at the reply's first text (not at the
        # send: the time the prompt took would be credit spent on early updates)
        self._reply_clock: tuple[float, float] | None = None
        self._blink = True  # the prompt's cursor blink setting, held still while a reply streams
        self._initial_conversation = conversation_id
        #: documents attached to the chat (index, files): each message brings the passages that bear on it
        self.documents: tuple[DocIndex, list[int]] | None = None
        self._sources: list[Hit] = []

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Sidebar(self.store, self.state_cache, id="sidebar")
            with Vertical(id="chat-main"):
                yield ChatLog(id="chat-log")
                yield PromptInput(id="prompt")

    def on_mount(self) -> None:
        self.query_one(ChatLog).anchor()
        self.watch(self.app, "engine", self._engine_changed)
        self.refresh_list()
        if self._initial_conversation is not None:
            self.call_later(self.open_conversation, self._initial_conversation)

    def focus_default(self) -> None:
        self.query_one(PromptInput).focus()

    @property
    def sidebar(self) -> Sidebar:
        return self.query_one(Sidebar)

    def refresh_list(self) -> None:
        self.sidebar.refresh_list(self.session.conversation_id)

    # -- the engine ---------------------------------------------------------------

    def _engine_changed(self, engine: Engine | None) -> None:
        self.engine = engine
        self.session.engine = engine
        self.count_context()

    def count_context(self) -> None:
        """Show the open conversation's context use, counted in a worker."""
        self.context_used = 0
        if self.engine is not None and self.session.messages:
            self._count_context(self.session, self.engine, self.session.model_messages())

    @work(thread=True, exclusive=True, group="context", exit_on_error=False)
    def _count_context(self, session: ChatSession, engine: Engine, messages: list) -> None:
        try:
            self.post_message(self.ContextCounted(session, engine.count_chat_tokens(messages)))
        except GpttermError as err:  # a server gone away: no count, and say why
            self.post_message(self.ContextCounted(session, 0, str(err)))

    def on_chat_pane_context_counted(self, message: ContextCounted) -> None:
        if message.session is not self.session or self.reply is not None:
            return  # another conversation is open by now, or a reply's own count is coming
        if message.error:
            self.notify(message.error, severity="error", timeout=10)
        self.context_used = message.tokens

    def set_system(self, text: str) -> None:
        self.session.set_system(text)

    # -- conversations ------------------------------------------------------------

    @on(Sidebar.Selected)
    async def on_conversation_selected(self, message: Sidebar.Selected) -> None:
        if message.conversation_id != self.session.conversation_id:
            await self.open_conversation(message.conversation_id)
        if self.screen.has_class("-narrow"):
            self._show_list(False)  # the list was over the chat: the chat is what the user wants now
        self.query_one(PromptInput).focus()

    @on(Sidebar.Deleted)
    async def on_conversation_deleted(self, message: Sidebar.Deleted) -> None:
        if message.conversation_id == self.session.conversation_id:
            await self.action_new_conversation()

    async def open_conversation(self, conversation_id: int) -> None:
        if self._refuse_while_replying():
            return
        try:
            conv = self.store.get(conversation_id)
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        self.session = ChatSession(self.engine, self.session.params, store=self.store, kind="chat",
                                   conversation=conv, state_cache=self.state_cache)
        self.editing = None
        await self.render_messages()
        self.count_context()
        self.refresh_list()

    async def render_messages(self, shown: int = PAGE) -> None:
        """Show the latest ``shown`` messages of the current conversation, as stored."""
        log = self.query_one(ChatLog)
        await log.remove_children()
        cid = self.session.conversation_id
        messages = [m for m in self.store.get(cid).messages if m.role in ("user", "assistant")] if cid else []
        hidden = max(0, len(messages) - shown)
        log.hidden_count = hidden
        items: list[Static | MessageItem | ThinkingView] = []
        if hidden:
            items.append(Static(f"[dim]{hidden} earlier messages — ctrl+o shows more[/dim]", id="earlier"))
        for m in messages[hidden:]:
            item = MessageItem(m.role, m.content, info=stats_text(m.stats))
            if m.thinking:  # kept apart in history: shown folded above its reply
                item.thinking_view = ThinkingView(m.thinking)
                items.append(item.thinking_view)
            items.append(item)
        await log.mount_all(items)
        log.scroll_end(animate=False)

    async def action_show_earlier(self) -> None:
        log = self.query_one(ChatLog)
        if log.hidden_count:
            await self.render_messages(len(self.session.messages) - log.hidden_count + PAGE)

    async def action_new_conversation(self) -> None:
        if self._refuse_while_replying():
            return
        self.session = ChatSession(self.engine, self.session.params, store=self.store, kind="chat",
                                   state_cache=self.state_cache)
        self.editing = None
        self.context_used = 0
        log = self.query_one(ChatLog)
        await log.remove_children()
        log.hidden_count = 0
        self.refresh_list()
        self.query_one(PromptInput).focus()

    # The list sits beside the chat on a wide screen and starts hidden on a narrow one (app.tcss);
    # "-list-toggled" turns it the other way: hidden when wide, shown instead of the chat when narrow.

    @property
    def _list_shown(self) -> bool:
        return self.has_class("-list-toggled") == self.screen.has_class("-narrow")

    def _show_list(self, shown: bool) -> None:
        self.set_class(shown == self.screen.has_class("-narrow"), "-list-toggled")

    def action_search_conversations(self) -> None:
        self._show_list(True)
        self.sidebar.focus_search()

    def action_toggle_sidebar(self) -> None:
        shown = not self._list_shown
        self._show_list(shown)
        if shown and self.screen.has_class("-narrow"):
            view = self.sidebar.query_one(ConversationList)
            view.focus()
            if view.highlighted is None and view.option_count:
                view.highlighted = 0  # Enter opens one at once
        elif not shown:
            self.query_one(PromptInput).focus()

    def _refuse_while_replying(self) -> bool:
        if self.reply is not None:
            self.notify("Stop the reply first (Esc)", severity="warning")
            return True
        return False

    # -- replies ------------------------------------------------------------------

    def _lend(self) -> bool:
        """Take the engine from the app for one reply; False (the user told why) when it is not free."""
        lease = host(self).acquire_engine(self, "generating")
        if lease is None:
            return False
        self.session.engine = lease.engine
        self.session.params = lease.params
        return True

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        if not self._lend():
            return
        log = self.query_one(ChatLog)
        try:
            if self.editing is not None:
                index = self.editing
                reply = self.session.edit(index, message.text)
                for item in log.items[max(0, index - log.hidden_count):]:
                    await item.remove()
                self.editing = None
            else:
                reply = self.session.send(message.text, grounding=self._grounding(message.text))
        except (GpttermError, ValueError) as err:
            host(self).release_engine(self)
            self.notify(str(err), severity="error", timeout=10)
            return
        self.query_one(PromptInput).clear()
        self.query_one(PromptInput).border_title = None  # a template applied to this message
        await log.mount(MessageItem("user", message.text))
        await self.start_reply(reply)
        self.call_after_refresh(self.refresh_list)  # a new conversation is listed at once
        advise = getattr(self.app, "advise", None)
        if advise is not None:  # a message in a script the model does not know (gptterm.models.advice)
            from gptterm.models.advice import script_language

            lang = script_language(message.text)
            advise("chat", (lang,) if lang else ())

    # -- templates -------------------------------------------------------------------

    def action_pick_template(self) -> None:
        from gptterm.tui.widgets.templates import TemplatePicker

        if not self._refuse_while_replying():
            self.app.push_screen(TemplatePicker(), self._template_chosen)

    def _template_chosen(self, bound: Bound | None) -> None:
        if bound is None:
            return
        self.session.use_template(bound)
        prompt = self.query_one(PromptInput)
        prompt.border_title = f"template {bound.template.name}"
        self.notify(f"Template {bound.template.name}: your next message is its input"
                    + (" (the reply must match its schema)" if bound.schema else ""))
        prompt.focus()

    # -- documents attached to the chat ------------------------------------------------

    @dataclass
    class DocumentsReady(Message):
        items: list[str]
        index: DocIndex | None
        file_ids: list[int]
        error: str | None = None

    def attach_documents(self, items: list[str]) -> None:
        """Answer from these paths or collections too, from the next message on (indexed in a worker)."""
        if not items:
            self.documents = None
            self.notify("No documents are attached to this chat any more")
            return
        self.notify("Indexing the documents for this chat…")
        self._index_documents(items)

    @work(thread=True, exclusive=True, group="chat-docs", exit_on_error=False)
    def _index_documents(self, items: list[str]) -> None:
        from gptterm.docs.index import DocIndex

        try:
            index = DocIndex()
            roots: list[str] = []
            for item in items:
                roots += index.collection_roots(item[1:]) if item.startswith("@") else [item]
            index.update(roots)
            self.post_message(self.DocumentsReady(items, index, index.scope(roots)))
        except GpttermError as err:
            self.post_message(self.DocumentsReady(items, None, [], str(err)))

    def on_chat_pane_documents_ready(self, message: DocumentsReady) -> None:
        if message.error or message.index is None or not message.file_ids:
            self.notify(message.error or "none of those files holds readable text", severity="error")
            return
        self.documents = (message.index, message.file_ids)
        self.notify(f"The chat answers from {plural(len(message.file_ids), 'file')} too: {' '.join(message.items)}")

    def _grounding(self, text: str) -> str | None:
        self._sources = []
        if self.documents is None or self.engine is None:
            return None
        from gptterm.tasks.ask import grounding

        block, self._sources = grounding(*self.documents, text, self.engine)
        return block

    async def start_reply(self, reply: Reply) -> None:
        log = self.query_one(ChatLog)
        self.reply_item = MessageItem("assistant", info="…", streaming=True)
        await log.mount(self.reply_item)
        log.scroll_end(animate=False)
        self.reply = reply
        if reply.stats.prompt_tokens:  # the prompt is in the context already, while the reply streams
            self.context_used = reply.stats.prompt_tokens
        self.reply_id += 1
        self._reply_clock = None
        self.chunk_interval = MIN_CHUNK_INTERVAL_S
        self._steady_cursor(True)
        self.run_reply(reply, self.reply_id)

    @work(thread=True, group="reply", exit_on_error=False)
    def run_reply(self, reply: Reply, reply_id: int) -> None:
        # Pieces are batched: each UI update renders Markdown and redraws on
        # the one event loop, and on a small machine that work competes with
        # llama.cpp's threads for the CPU (and with this thread for the GIL).
        error = None
        pending: list[str] = []
        thought: list[str] = []
        last = time.perf_counter()
        clock = [last]

        def thinking(piece: str) -> None:  # called while the reply is iterated, in this thread
            thought.append(piece)
            now = time.perf_counter()
            if now - clock[0] >= self.chunk_interval:
                self.post_message(self.ReplyThinking(reply_id, "".join(thought)))
                thought.clear()
                clock[0] = now

        reply.on_thinking(thinking)
        try:
            for piece in reply:
                if thought:  # the thinking is over: what is left of it goes first
                    self.post_message(self.ReplyThinking(reply_id, "".join(thought)))
                    thought.clear()
                pending.append(piece)
                now = time.perf_counter()
                if now - last >= self.chunk_interval:
                    self.post_message(self.ReplyChunk(reply_id, "".join(pending)))
                    pending.clear()
                    last = now
        except GpttermError as err:
            error = str(err)
        if thought:
            self.post_message(self.ReplyThinking(reply_id, "".join(thought)))
        if pending:
            self.post_message(self.ReplyChunk(reply_id, "".join(pending)))
        self.post_message(self.ReplyFinished(reply_id, reply, error))

    async def on_chat_pane_reply_thinking(self, message: ReplyThinking) -> None:
        item = self.reply_item
        if message.reply_id != self.reply_id or item is None:
            return
        if item.thinking_view is None:
            item.thinking_view = ThinkingView(streaming=True)
            await self.query_one(ChatLog).mount(item.thinking_view, before=item)
        item.thinking_view.append(message.text)

    def on_chat_pane_reply_chunk(self, message: ReplyChunk) -> None:
        if message.reply_id == self.reply_id and self.reply_item is not None:
            if self._reply_clock is None:
                self._reply_clock = (time.thread_time(), time.perf_counter())
            self.reply_item.write(message.text)
            # A budget, not a per-update rule: the UI thread may have used
            # UI_CPU_SHARE of the time since the reply began, so an expensive
            # update (a layout pass) delays the next ones until it is paid for.
            cpu0, wall0 = self._reply_clock
            spent, elapsed = time.thread_time() - cpu0, time.perf_counter() - wall0
            self.chunk_interval = min(MAX_CHUNK_INTERVAL_S, max(MIN_CHUNK_INTERVAL_S, spent / UI_CPU_SHARE - elapsed))

    def _steady_cursor(self, steady: bool) -> None:
        # A blinking cursor redraws twice a second: while a reply streams,
        # that is CPU taken from generation, so the cursor holds still.
        prompt = self.query_one(PromptInput)
        if steady:
            self._blink, prompt.cursor_blink = prompt.cursor_blink, False
        else:
            prompt.cursor_blink = self._blink

    async def on_chat_pane_reply_finished(self, message: ReplyFinished) -> None:
        if message.reply_id != self.reply_id:
            return
        reply = message.reply
        stats = {**reply.stats.as_dict(), "finish_reason": reply.finish_reason}
        if self.reply_item is not None:
            if not reply.text and reply.finish_reason == "cancelled":
                await self.reply_item.remove()
            else:
                sources = f" · sources: {', '.join(h.where() for h in self._sources)}" if self._sources else ""
                self.reply_item.finish(reply.text, stats_text(stats) + sources)
                if self.reply_item.thinking_view is not None:
                    self.reply_item.thinking_view.finish(reply.thinking)
        self._reply_ended()
        self.last_tokens_per_s = reply.stats.tokens_per_s or self.last_tokens_per_s
        self.context_used = reply.stats.prompt_tokens + reply.stats.completion_tokens
        schema_error = None
        if not message.error and self.session.active_schema is not None and reply.finish_reason != "cancelled":
            from gptterm import schema as schemas

            try:
                schemas.check_reply(reply, self.session.active_schema, self.session.active_params.max_tokens)
            except GpttermError as err:  # the reply stays in the chat and in history
                schema_error = str(err)
        if message.error:
            self.notify(message.error, severity="error", timeout=10)
        elif schema_error:
            self.notify(f"{schema_error} (the reply is kept)", severity="error", timeout=10)
        elif reply.finish_reason == "length" and reply.thinking and not reply.text.strip():
            self.notify(f"The model spent all {self.session.params.max_tokens} tokens thinking and gave no answer: "
                        "raise max_tokens, or set thinking to off (Settings)", severity="warning", timeout=10)
        elif reply.finish_reason == "length":
            limit = self.session.active_params.max_tokens
            self.notify(f"The reply stopped at max_tokens ({limit}) or a full context",
                        severity="warning")
        self.refresh_list()

    def _reply_ended(self) -> None:
        self.reply = None
        self.reply_item = None
        self._steady_cursor(False)
        host(self).release_engine(self)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A bug in the reply worker (the app says so): the chat stays usable.
        if event.state == WorkerState.ERROR and event.worker.group == "reply":
            self._reply_ended()

    def stop(self) -> None:
        """Stop the reply (Esc): its text is kept."""
        if self.reply is not None and self.engine is not None:
            self.engine.cancel()

    async def action_regenerate(self) -> None:
        if not self.session.messages:
            self.notify("Nothing to regenerate yet", severity="warning")
            return
        if not self._lend():
            return
        try:
            reply = self.session.regenerate()
        except GpttermError as err:
            host(self).release_engine(self)
            self.notify(str(err), severity="error")
            return
        items = self.query_one(ChatLog).items
        if items and items[-1].role == "assistant":
            await items[-1].remove()
        await self.start_reply(reply)

    # -- editing --------------------------------------------------------------------

    @on(ChatLog.EditRequested)
    def on_edit_requested(self, message: ChatLog.EditRequested) -> None:
        if self._refuse_while_replying():
            return
        self.editing = message.index
        prompt = self.query_one(PromptInput)
        prompt.text = message.text
        prompt.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_edit":
            return self.editing is not None  # Esc is left to the widgets otherwise
        return True

    def action_cancel_edit(self) -> None:
        self.editing = None
        self.query_one(PromptInput).clear()

    def action_copy_last(self) -> None:
        for m in reversed(self.session.messages):
            if m["role"] == "assistant":
                self.app.copy_to_clipboard(m["content"])
                self.notify("Last reply copied to the clipboard")
                return
        self.notify("No reply to copy yet", severity="warning")

    def action_focus_input(self) -> None:
        self.query_one(PromptInput).focus()
