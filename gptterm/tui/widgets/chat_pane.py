"""The chat pane: the conversation list, the messages and the input — and the conversation itself.

It owns the chat session, the reply being streamed, editing a message, and
opening and paging conversations. Each reply is a turn of the session core
(gptterm.session.turn) run by the pane's ``Generation``, which borrows the
engine, paces the redraws and gives the engine back; the pane posts
``ReplyFinished`` when a reply ends, and the status line reads its
reactive state.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from gptterm import schema as schemas
from gptterm.errors import GpttermError, InputError
from gptterm.session import turn as turns
from gptterm.session.turn import CallEnded, Event, StepLimit, TextDelta, ThinkingDelta, ToolEnded, ToolStarted, Turn
from gptterm.tasks.ask import grounding
from gptterm.tasks.chat import ChatSession
from gptterm.tui.actions import CHAT_ACTIONS
from gptterm.tui.generation import Generation, Run
from gptterm.tui.host import host
from gptterm.tui.screens import ToolApproval
from gptterm.tui.widgets.chat import ChatLog, MessageItem, PromptInput, ThinkingView, ToolBlock, stats_text
from gptterm.tui.widgets.sidebar import ConversationList, Sidebar
from gptterm.types import Reply, calls_of
from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.docs.index import DocIndex, Hit
    from gptterm.engine.base import Engine
    from gptterm.engine.state_cache import StateCache
    from gptterm.history.store import HistoryStore
    from gptterm.settings import Params
    from gptterm.session.turn import ToolUse
    from gptterm.tasks.ask import Grounding
    from gptterm.tools.builtin import DocsScope
    from gptterm.tools.permissions import Answer, Approvals, Ask
    from gptterm.types import Tool, ToolCall
    from gptterm.templates.template import Bound

# Opening a conversation renders its latest messages; older ones on request.
PAGE = 50


class ChatPane(Vertical):
    BINDINGS = [a.binding() for a in CHAT_ACTIONS]

    @dataclass
    class ReplyFinished(Message):
        """A reply ended (finished, stopped or failed: ``error``); its text is in the chat and the history."""

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
        #: the turn being answered (None: no reply streams)
        self.turn: Turn | None = None
        self.reply_id = 0
        self.reply_item: MessageItem | None = None
        # a tool step's events reach the screen at once: the tool may run a while after them
        self.generation = Generation("generating", on_events=self._reply_events, on_finished=self._reply_finished,
                                     urgent=lambda e: isinstance(e, (CallEnded, ToolStarted, ToolEnded, StepLimit)))
        #: the user's message shown for the turn in flight (taken back if the turn never starts)
        self._sent_item: MessageItem | None = None
        #: the tool calls of the turn in flight, by call id
        self._blocks: dict[str, ToolBlock] = {}
        #: the conversation's tool approvals ("always" holds until another conversation is opened)
        self._approvals: Approvals | None = None
        self._scope: DocsScope | None = None
        self._blink = True  # the prompt's cursor blink setting, held still while a reply streams
        self._initial_conversation = conversation_id
        #: documents attached to the chat (index, files): each message brings the passages that bear on it
        self.documents: tuple[DocIndex, list[int]] | None = None
        self._sources: list[Hit] = []

    def compose(self) -> ComposeResult:
        yield self.generation
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
        if message.session is not self.session or self.turn is not None:
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
        self._approvals = None
        self.editing = None
        await self.render_messages()
        self.count_context()
        self.refresh_list()

    async def render_messages(self, shown: int = PAGE) -> None:
        """Show the latest ``shown`` messages of the current conversation, as stored: a tool step as the folded
        blocks of its calls, each with its result."""
        log = self.query_one(ChatLog)
        await log.remove_children()
        cid = self.session.conversation_id
        messages = [m for m in self.store.get(cid).messages if m.role in ("user", "assistant", "tool")] if cid else []
        results = {m.tool_call_id: m for m in messages if m.role == "tool"}
        hidden = max(0, len(messages) - shown)
        log.hidden_count = hidden
        items: list[Static | MessageItem | ThinkingView | ToolBlock] = []
        if hidden:
            items.append(Static(f"[dim]{hidden} earlier messages — ctrl+o shows more[/dim]", id="earlier"))
        for index, m in enumerate(messages[hidden:], start=hidden):
            if m.role == "tool":
                continue  # shown in its call's block
            if m.role == "user" or m.content.strip() or not m.tool_calls:
                item = MessageItem(m.role, m.content, info=stats_text(m.stats), message_index=index)
                if m.thinking:  # kept apart in history: shown folded above its reply
                    item.thinking_view = ThinkingView(m.thinking)
                    items.append(item.thinking_view)
                items.append(item)
            for call in calls_of({"tool_calls": m.tool_calls or []}):
                block = ToolBlock(call.name, call.arguments, call_id=call.id)
                result = results.get(call.id)
                if result is not None:
                    block.finish(result.content, seconds=result.stats.get("total_s") or 0.0,
                                 error=result.tool_error)
                items.append(block)
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
        self._approvals = None
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
        if self.generation.running:
            self.notify("Stop the reply first (Esc)", severity="warning")
            return True
        return False

    # -- replies ------------------------------------------------------------------

    def _borrow(self) -> bool:
        """Take the engine for one reply; False (the user told why) when it is not free."""
        lease = self.generation.borrow()
        if lease is None:
            return False
        self.session.engine = lease.engine
        self.session.params = lease.params
        return True

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text, editing, chat = message.text, self.editing, self.session  # the conversation open now
        if editing is not None:
            started = await self._begin(lambda tools: turns.edit(chat, editing, text, tools=tools),
                                        sent=text, at=editing)
        else:
            started = await self._begin(
                lambda tools: turns.turn(chat, text, grounding=self._grounding(text), tools=tools),
                sent=text, at=len(chat.messages))
        if not started:
            return
        self.editing = None
        self.call_after_refresh(self.refresh_list)  # a new conversation is listed at once
        from gptterm.models.advice import script_language  # after the first frame: the app's start stays fast

        lang = script_language(text)  # a message in a script the model does not know
        host(self).advise("chat", (lang,) if lang else ())

    def _tools_wanted(self) -> bool:
        session = host(self).session
        return bool(session.params.tools) or bool(session.tools.settings.servers)

    async def _begin(self, make: Callable[[ToolUse | None], Turn], *, sent: str | None = None,
                     at: int | None = None) -> bool:
        """Borrow the engine and start a turn (``sent``: the user's message, shown at message ``at``; an edit
        removes what was shown from there). Without tools the turn is made here, so that a message that cannot
        be sent is one notification and stays in the input; with tools it is made in the worker, where the
        MCP servers start (once) without holding the screen."""
        if not self._borrow():
            return False
        current: Turn | None = None
        if not self._tools_wanted():
            try:
                current = make(None)
            except (GpttermError, ValueError) as err:
                self.generation.give_back()
                self.notify(str(err), severity="error", timeout=10)
                return False
        log = self.query_one(ChatLog)
        if self.editing is not None and at is not None:
            await log.remove_from(at)
        self._sent_item = None
        if sent is not None:
            self.query_one(PromptInput).clear()
            self.query_one(PromptInput).border_title = None  # a template applied to this message
            self._sent_item = MessageItem("user", sent, message_index=at)
            await log.mount(self._sent_item)
        if current is not None:
            await self.start_reply(current)
        else:
            if self._approvals is None:
                self._approvals = host(self).session.approvals()
            approvals, docs = self._approvals, self._docs_scope()
            await self.start_reply(None, lambda run: self._tool_turn(run, make, approvals, docs))
        return True

    def _tool_turn(self, run: Run, make: Callable[[ToolUse | None], Turn], approvals: Approvals,
                   docs: DocsScope | None) -> Iterator[Event]:
        """In the worker: the tools for this turn (MCP servers start on first use), then the turn itself."""
        session = host(self).session
        use = session.tool_use(approvals, self._asker(run.stopped), docs=docs, stopped=run.stopped)
        if use is not None:
            for line in session.tools.new_failures():
                self.app.call_from_thread(self.notify, line, title="Tools", severity="warning",
                                          timeout=15)
            self.app.call_from_thread(host(self).advise, "tools")
        if run.stopped.is_set():  # Esc while the servers started
            return
        try:
            current = make(use)
        except ValueError as err:  # nothing to regenerate, a message that cannot be edited
            raise InputError(str(err)) from None
        self.turn = current
        run.on_stop(current.cancel)
        if run.stopped.is_set():
            current.cancel()
        yield from current.events()

    def _asker(self, stopped: threading.Event) -> Ask:
        """Asks about a call in a dialog (from the worker, which waits for the answer or for Esc)."""
        def ask(call: ToolCall, tool: Tool) -> Answer | None:
            shown = str(call.arguments.get("command", "")) if tool.name == "run_shell" else \
                json.dumps(call.arguments, ensure_ascii=False, indent=2)
            screen = ToolApproval(tool.name, tool.source, shown, always=not tool.confirm_each)
            answer: list[str] = []
            done = threading.Event()

            def answered(value: str | None) -> None:
                answer.append(value or "no")
                done.set()

            self.app.call_from_thread(self.app.push_screen, screen, answered)
            while not done.wait(0.1):
                if not self.app.is_running:  # the app is quitting
                    return "no"
                if stopped.is_set():  # Esc: the turn ends, and the question with it
                    self.app.call_from_thread(lambda: screen.dismiss("no") if screen.is_current else None)
                    return "no"
            return "always" if answer[0] == "always" else "yes" if answer[0] == "yes" else "no"

        return ask

    def _docs_scope(self) -> DocsScope | None:
        """What search_docs searches: the documents attached to the chat."""
        if self.documents is None:
            return None
        if self._scope is None or self._scope.file_ids is not self.documents[1]:
            from gptterm.tools.builtin import DocsScope  # after the first frame: the app's start stays fast

            self._scope = DocsScope(*self.documents, label="the documents attached to this chat")
        return self._scope

    # -- templates -------------------------------------------------------------------

    def action_pick_template(self) -> None:
        from gptterm.tui.widgets.templates import TemplatePicker  # after the first frame: the app's start stays fast

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
        from gptterm.docs.index import DocIndex  # in the worker, after the first frame: the app's start stays fast

        try:
            index = DocIndex()
            roots = index.roots_for(items)
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

    def _grounding(self, text: str) -> Grounding | None:
        self._sources = []
        if self.documents is None or self.engine is None:
            return None
        found = grounding(*self.documents, text, self.engine)
        self._sources = found.hits if found is not None else []
        return found

    async def start_reply(self, current: Turn | None, work: Callable[[Run], Iterator[Event]] | None = None) -> None:
        """Show the reply as it streams: ``current``'s events, or those of ``work`` (a turn made in the worker)."""
        await self._new_reply_item()
        self.turn = current
        reply = current.reply if current is not None else None
        if reply is not None and reply.stats.prompt_tokens:  # the prompt is in the context already
            self.context_used = reply.stats.prompt_tokens
        self.reply_id += 1
        self._steady_cursor(True)
        if work is None:
            assert current is not None
            self.generation.stream(lambda _run: current.events())
        else:
            self.generation.stream(work)

    async def _new_reply_item(self) -> MessageItem:
        log = self.query_one(ChatLog)
        self.reply_item = MessageItem("assistant", info="…", streaming=True)
        await log.mount(self.reply_item)
        log.scroll_end(animate=False)
        return self.reply_item

    async def _reply_events(self, events: list[Event]) -> None:
        text: list[str] = []
        for event in events:
            if isinstance(event, (TextDelta, ThinkingDelta)):
                item = self.reply_item or await self._new_reply_item()  # the next step's answer
                if isinstance(event, TextDelta):
                    text.append(event.text)
                    continue
                if text:
                    item.write("".join(text))
                    text.clear()
                if item.thinking_view is None:
                    item.thinking_view = ThinkingView(streaming=True)
                    await self.query_one(ChatLog).mount(item.thinking_view, before=item)
                item.thinking_view.append(event.text)
                continue
            if text and self.reply_item is not None:
                self.reply_item.write("".join(text))
                text.clear()
            await self._tool_event(event)
        if text and self.reply_item is not None:
            self.reply_item.write("".join(text))

    async def _tool_event(self, event: Event) -> None:
        log = self.query_one(ChatLog)
        if isinstance(event, CallEnded) and event.reply.tool_calls:
            # a step that called tools: its text (if any) stays, and the blocks of its calls follow it
            item, self.reply_item = self.reply_item, None
            if item is not None:
                if event.reply.text.strip():
                    item.finish(event.reply.text, stats_text(event.reply.summary()))
                else:
                    await item.remove()
        elif isinstance(event, ToolStarted):
            started = ToolBlock(event.call.name, event.call.arguments, call_id=event.call.id)
            self._blocks[event.call.id] = started
            await log.mount(started)
            log.scroll_end(animate=False)
        elif isinstance(event, ToolEnded):
            ended = self._blocks.pop(event.call.id, None)
            if ended is not None:
                r = event.result
                ended.finish(r.content, seconds=r.seconds, error=r.error, refused=event.refused)
        elif isinstance(event, StepLimit):
            self.notify(f"Stopped after {event.steps} tool steps (max_steps): the model still wanted to call "
                        "tools", severity="warning")

    def _steady_cursor(self, steady: bool) -> None:
        # A blinking cursor redraws twice a second: while a reply streams,
        # that is CPU taken from generation, so the cursor holds still.
        prompt = self.query_one(PromptInput)
        if steady:
            self._blink, prompt.cursor_blink = prompt.cursor_blink, False
        else:
            prompt.cursor_blink = self._blink

    async def _reply_finished(self, error: str | None) -> None:
        current, self.turn = self.turn, None
        reply = current.reply if current is not None else None
        item, self.reply_item = self.reply_item, None
        self._steady_cursor(False)
        for block in self._blocks.values():  # stopped while a tool ran
            block.finish("", refused="stopped")
        self._blocks.clear()
        if reply is None:  # the turn never started (it could not be sent, or the tools failed to start)
            if item is not None:
                await item.remove()
            if current is None and self._sent_item is not None:
                await self._sent_item.remove()
                self.query_one(PromptInput).text = self._sent_item.content
            self._sent_item = None
            return
        self._sent_item = None
        stats = reply.summary()
        if item is not None:
            if not reply.text and reply.finish_reason in ("cancelled", "error"):
                await item.remove()
            else:
                sources = f" · sources: {', '.join(h.where() for h in self._sources)}" if self._sources else ""
                item.finish(reply.text, stats_text(stats) + sources)
                if item.thinking_view is not None:
                    item.thinking_view.finish(reply.thinking)
        self.last_tokens_per_s = reply.stats.tokens_per_s or self.last_tokens_per_s
        self.context_used = reply.stats.prompt_tokens + reply.stats.completion_tokens
        self.post_message(self.ReplyFinished(self.reply_id, reply, error))
        schema_error = None
        if not error and self.session.active_schema is not None and reply.finish_reason != "cancelled":
            try:
                schemas.check_reply(reply, self.session.active_schema, self.session.active_params.max_tokens)
            except GpttermError as err:  # the reply stays in the chat and in history
                schema_error = str(err)
        if error:
            pass  # said by the generation helper
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

    async def action_regenerate(self) -> None:
        if not self.session.messages:
            self.notify("Nothing to regenerate yet", severity="warning")
            return
        log = self.query_one(ChatLog)
        last = self.session.messages[-1] if self.session.messages else None
        shown = log.items[-1] if log.items else None
        if not await self._begin(lambda tools: turns.regenerate(self.session, tools=tools)):
            return
        if last is not None and last["role"] == "assistant" and shown is not None and shown.role == "assistant":
            await shown.remove()

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
