"""The Textual app: chat and settings panes over the same core as the CLI.

Model loading and generation run in thread workers that only post messages
(``tui.messages``); the handlers below are the only code that changes
widgets. The first frame is drawn before the model has loaded.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, cast

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane
from textual.css.query import NoMatches
from gptterm.tui.widgets.deferred import AfterFirstFrame
from textual.worker import Worker, WorkerState

from gptterm.engine.base import Reply
from gptterm.engine.state_cache import StateCache
from gptterm.errors import GpttermError
from gptterm.history import export
from gptterm.history.store import HistoryStore
from gptterm.settings import LOCAL, Config, Params, ServerProfile, save_config
from gptterm.tasks.chat import ChatSession
from gptterm.tui.actions import ALL_ACTIONS, APP_ACTIONS, CONVERSATION_ACTIONS
from gptterm.tui.messages import ContextCounted, ModelFailed, ModelLoaded, ReplyChunk, ReplyFinished
from gptterm.tui.screens import AskScreen, ConfirmScreen, ExportScreen, HelpScreen
from gptterm.tui.widgets.chat import ChatLog, MessageItem, PromptInput, stats_text
from gptterm.tui.widgets.sidebar import ConversationList, Sidebar
from gptterm.tui.widgets.task_pane import TaskPane

if TYPE_CHECKING:
    from gptterm.tui.widgets.models import ModelsPane
    from gptterm.tui.widgets.settings import SettingsPane

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


class GpttermApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "gptterm"
    BINDINGS = [a.binding() for a in APP_ACTIONS]

    def __init__(self, *, config: Config, params: Params, model: str | None, store: HistoryStore,
                 conversation_id: int | None = None, server: ServerProfile | None = None,
                 remote_model: str | None = None) -> None:
        super().__init__()
        self.config = config
        self.params = params
        #: the local model file (used whenever no server is)
        self.model_spec = model
        #: the OpenAI-compatible server in use, or None for the local model
        self.server = server
        #: the model asked of the server (None: the profile's, else the server's first)
        self.remote_model = remote_model
        self.store = store
        self.engine: Any = None
        self.model_state = "loading"
        self.model_error: str | None = None
        self.state_cache = StateCache()
        self.session = ChatSession(None, params, store=store, kind="chat", state_cache=self.state_cache)
        self.reply: Reply | None = None
        self.reply_id = 0
        self.reply_item: MessageItem | None = None
        self.editing: int | None = None
        self.last_stats: Any = None
        self.context_used = 0
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
        self._theme_ready = False

    # -- layout -----------------------------------------------------------------

    def _summarize_pane(self) -> Any:
        from gptterm.tui.widgets.summarize import SummarizePane

        return SummarizePane(id="summarize-pane")

    def _translate_pane(self) -> Any:
        from gptterm.tui.widgets.translate import TranslatePane

        return TranslatePane(id="translate-pane")

    def _settings_pane(self) -> Any:
        from gptterm.tui.widgets.settings import SettingsPane

        return SettingsPane(self.params.as_dict(), self.model_spec or "", sorted(self.config.all_presets()),
                            id="settings-pane")

    def _models_pane(self) -> Any:
        from gptterm.tui.widgets.models import ModelsPane

        return ModelsPane(id="models-pane")

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="chat", id="tabs"):
            with TabPane("Chat", id="chat"):
                with Horizontal():
                    yield Sidebar(id="sidebar")
                    with Vertical(id="chat-main"):
                        yield ChatLog(id="chat-log")
                        yield PromptInput(id="prompt")
            # The hidden panes hold most of the widgets (150 of 180): made,
            # and their modules imported, just after the first frame.
            with TabPane("Summarize", id="summarize"):
                yield AfterFirstFrame(self._summarize_pane)
            with TabPane("Translate", id="translate"):
                yield AfterFirstFrame(self._translate_pane)
            with TabPane("Settings", id="settings"):
                yield AfterFirstFrame(self._settings_pane)
            with TabPane("Models", id="models"):
                yield AfterFirstFrame(self._models_pane)
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        # While this (UI) thread runs Python, a reply thread coming back from
        # llama.cpp waits for the GIL until the switch interval forces a hand-over
        # (5 ms by default) and llama.cpp's other threads idle meanwhile; 0.5 ms
        # measured +3% tokens/s streaming on 2 cores.
        sys.setswitchinterval(0.0005)
        if self.config.keymap:
            self.set_keymap(dict(self.config.keymap))
        if self.config.theme and self.config.theme in self.available_themes:
            self.theme = self.config.theme
        self._theme_ready = True
        self.query_one(ChatLog).anchor()
        self.update_status()
        # in a thread, started once the first frame is out: importing llama_cpp
        # there would otherwise share the interpreter with drawing that frame
        self.call_after_refresh(self.load_model)
        self.refresh_conversations()
        if self._initial_conversation is not None:
            self.call_later(self.open_conversation, self._initial_conversation)
        self.set_interval(5, self._poll_conversations)
        self.query_one(PromptInput).focus()

    def watch_theme(self, theme: str) -> None:
        if self._theme_ready and theme != self.config.theme:
            try:
                save_config({"theme": theme})
                self.config = dataclasses.replace(self.config, theme=theme)
            except GpttermError as err:
                self.notify(str(err), severity="error")

    # -- status -------------------------------------------------------------------

    def backend_label(self) -> str | None:
        """Which server the loaded engine talks to; None for the local model."""
        extra = self.engine.info.extra if self.engine is not None else {}
        if extra.get("backend") == "remote":
            return f"server {extra['server']}"
        if self.engine is None and self.server is not None:
            return f"server {self.server.name}"
        return None

    def update_status(self) -> None:
        if self.engine is not None:
            name = self.engine.info.name
        elif self.server is not None:
            name = self.remote_model or self.server.model or "remote model"
        else:
            name = Path(self.model_spec or "SmolLM2-135M-Instruct").stem
        if self.model_state == "loading":
            state = "[yellow]connecting…[/yellow]" if self.server is not None else "[yellow]loading model…[/yellow]"
        elif self.model_state == "failed":
            state = "[red]model failed to load[/red]"
        elif self.reply is not None:
            state = "[green]generating… (Esc stops)[/green]"
        elif self.running_task() is not None:
            state = f"[green]{self.running_task().VERB}… (Esc stops)[/green]"
        elif self.editing is not None:
            state = "[cyan]editing a message: Enter resends, Esc cancels[/cyan]"
        else:
            state = "ready"
        parts = [f"[b]{name}[/b]", state]
        backend = self.backend_label()
        if backend:
            parts.insert(1, backend)
        if self.engine is not None:
            parts.append(f"context {self.context_used}/{self.engine.n_ctx}")
        if self.last_stats is not None and self.last_stats.tokens_per_s:
            parts.append(f"{self.last_stats.tokens_per_s:.1f} tok/s")
        self.query_one("#status", Static).update(" · ".join(parts))

    # -- model --------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def load_model(self) -> None:
        from gptterm.engine import load_engine

        start = time.perf_counter()
        server = self.server
        if server is not None and self.params.ctx != self.config.params.ctx:
            server = dataclasses.replace(server, ctx=self.params.ctx)  # ctx set here bounds the server's
        try:
            if server is not None:
                engine = load_engine(self.remote_model or server.model, self.params, server)
            else:
                engine = load_engine(self.model_spec, self.params)
        except GpttermError as err:
            self.post_message(ModelFailed(str(err)))
            return
        self.post_message(ModelLoaded(engine, time.perf_counter() - start))

    # The objects alive once the app is up (modules, styles, widgets, the
    # model) are moved out of the collector's reach with gc.freeze(): a full
    # collection walked them all, 70-90 ms holding the GIL, which stopped a
    # streaming reply (and key echo) that long every few seconds.
    def on_model_loaded(self, message: ModelLoaded) -> None:
        old, self.engine = self.engine, message.engine
        if old is not None:
            old.close()
        self.model_state = "ready"
        self.model_error = None
        self.session.engine = self.engine
        self.count_context()
        backend = self.backend_label()
        self.sub_title = f"{self.engine.info.name} · {backend}" if backend else self.engine.info.name
        self.update_status()
        for pane in self.query("ModelsPane"):  # the ▶ mark follows the loaded model (once the pane is there)
            pane.model_changed()
        self.call_after_refresh(gc.freeze)

    def count_context(self) -> None:
        """Update the status bar's context use for the open conversation, counted in a worker."""
        self.context_used = 0
        if self.engine is not None and self.session.messages:
            self._count_context(self.session, self.engine, self.session.model_messages())

    @work(thread=True, exclusive=True, group="context", exit_on_error=False)
    def _count_context(self, session: ChatSession, engine: Any, messages: list) -> None:
        try:
            self.post_message(ContextCounted(session, engine.count_chat_tokens(messages)))
        except GpttermError as err:  # a server gone away: no count, and say why
            self.post_message(ContextCounted(session, 0, str(err)))

    def on_context_counted(self, message: ContextCounted) -> None:
        if message.session is not self.session or self.reply is not None:
            return  # another conversation is open by now, or a reply's own count is coming
        if message.error:
            self.notify(message.error, severity="error", timeout=10)
        self.context_used = message.tokens
        self.update_status()

    def on_model_failed(self, message: ModelFailed) -> None:
        self.model_state = "failed" if self.engine is None else "ready"
        self.model_error = message.error
        self.notify(message.error, title="Model not loaded", severity="error", timeout=10)
        self.update_status()
        self.call_after_refresh(gc.freeze)

    def action_reload_model(self) -> None:
        if self.reply is not None or self.running_task() is not None:
            self.notify("Stop the reply first (Esc)", severity="warning")
            return
        if self.engine is None:
            self.model_state = "loading"
        self.notify(f"Connecting to server {self.server.name}…" if self.server is not None else "Loading the model…")
        self.update_status()
        self.load_model()

    def use_backend(self, server: ServerProfile | None, remote_model: str | None = None) -> None:
        """Switch between the local model and a server (from the command palette)."""
        if self.reply is not None or self.running_task() is not None:
            self.notify("Stop the reply first (Esc)", severity="warning")
            return
        self.server = server
        self.remote_model = remote_model
        self.action_reload_model()

    # -- conversations ------------------------------------------------------------

    def _poll_conversations(self) -> None:
        """Show conversations made by the CLI meanwhile; not while a reply streams
        (rebuilding the list then is CPU taken from generation; the reply's end refreshes it)."""
        if self.reply is None:
            self.refresh_conversations()

    def refresh_conversations(self) -> None:
        try:
            sidebar = self.query_one(Sidebar)
            query = sidebar.query_text
        except NoMatches:  # the timer can fire while the app is shutting down
            return
        try:
            convs = self.store.list_conversations(limit=500, query=query or None)
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        try:
            sidebar.show(convs, self.session.conversation_id)
        except NoMatches:  # the app is shutting down: the sidebar's children are gone already
            return

    @on(Sidebar.Selected)
    async def on_conversation_selected(self, message: Sidebar.Selected) -> None:
        if message.conversation_id != self.session.conversation_id:
            await self.open_conversation(message.conversation_id)
        self.query_one(PromptInput).focus()

    def on_input_changed(self, event: Any) -> None:
        if getattr(event.input, "id", None) == "conversation-search":
            self.refresh_conversations()

    async def open_conversation(self, conversation_id: int) -> None:
        if self.reply is not None:
            self.notify("Stop the reply first (Esc)", severity="warning")
            return
        try:
            conv = self.store.get(conversation_id)
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        self.session = ChatSession(self.engine, self.params, store=self.store, kind="chat", conversation=conv,
                                   state_cache=self.state_cache)
        self.editing = None
        await self.render_messages()
        self.count_context()
        self.refresh_conversations()
        self.update_status()

    async def render_messages(self, shown: int = PAGE) -> None:
        """Show the latest ``shown`` messages of the current conversation, as stored."""
        log = self.query_one(ChatLog)
        await log.remove_children()
        cid = self.session.conversation_id
        messages = [m for m in self.store.get(cid).messages if m.role in ("user", "assistant")] if cid else []
        hidden = max(0, len(messages) - shown)
        log.hidden_count = hidden
        items: list[Any] = []
        if hidden:
            items.append(Static(f"[dim]{hidden} earlier messages — ctrl+o shows more[/dim]", id="earlier"))
        items += [MessageItem(m.role, m.content, info=stats_text(m.stats)) for m in messages[hidden:]]
        await log.mount_all(items)
        log.scroll_end(animate=False)

    async def action_show_earlier(self) -> None:
        log = self.query_one(ChatLog)
        if log.hidden_count:
            await self.render_messages(len(self.session.messages) - log.hidden_count + PAGE)

    async def action_new_conversation(self) -> None:
        if self.reply is not None:
            self.notify("Stop the reply first (Esc)", severity="warning")
            return
        self.session = ChatSession(self.engine, self.params, store=self.store, kind="chat",
                                   state_cache=self.state_cache)
        self.editing = None
        self.context_used = 0
        await self.query_one(ChatLog).remove_children()
        self.query_one(ChatLog).hidden_count = 0
        self.query_one(Sidebar).highlight(None)
        self.query_one(PromptInput).focus()
        self.update_status()

    def action_search_conversations(self) -> None:
        self.query_one(Sidebar).display = True
        self.query_one("#conversation-search").focus()

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one(Sidebar)
        sidebar.display = not sidebar.display

    def _current_conversation(self) -> int | None:
        """The conversation highlighted in the focused side list, else the open one."""
        view = self.query_one(ConversationList)
        if self.focused is view and view.highlighted_conversation is not None:
            return view.highlighted_conversation.id
        cid = self.session.conversation_id
        if cid is None:
            self.notify("This conversation has no messages yet", severity="warning")
        return cid

    def action_rename_conversation(self) -> None:
        cid = self._current_conversation()
        if cid is None:
            return

        def done(title: str | None) -> None:
            if title:
                self.store.rename(cid, title)
                self.refresh_conversations()

        self.push_screen(AskScreen("New title", self.store.get(cid).title), done)

    def action_delete_conversation(self) -> None:
        cid = self._current_conversation()
        if cid is None or self.reply is not None:
            return
        title = self.store.get(cid).title or "(untitled)"

        async def done(yes: bool | None) -> None:
            if yes:
                self.store.delete_conversation(cid)
                self.state_cache.forget(cid)
                if cid == self.session.conversation_id:
                    await self.action_new_conversation()
                self.refresh_conversations()
                self.notify(f"Deleted “{title}”")

        self.push_screen(ConfirmScreen(f"Delete the conversation “{title}”? This cannot be undone."), done)

    def action_export_conversation(self) -> None:
        cid = self._current_conversation()
        if cid is None:
            return

        def done(choice: tuple[str, str] | None) -> None:
            if not choice:
                return
            fmt, target = choice
            conv = self.store.get(cid)
            text = export.to_json(conv) if fmt == "json" else export.to_markdown(conv)
            path = Path(target).expanduser()
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, path)
            except OSError as err:
                tmp.unlink(missing_ok=True)
                self.notify(f"Cannot write {path}: {err.strerror}", severity="error")
                return
            self.notify(f"Exported to {path.resolve()}")

        self.push_screen(ExportScreen(f"conversation-{cid}"), done)

    # -- chatting -----------------------------------------------------------------

    def running_task(self) -> TaskPane | None:
        return next((pane for pane in self.query(TaskPane) if pane.running), None)

    def _can_generate(self) -> bool:
        if self.engine is None:
            self.notify(self.model_error or "The model is still loading", severity="warning")
            return False
        if self.reply is not None:
            self.notify("A reply is being generated (Esc stops it)", severity="warning")
            return False
        if self.running_task() is not None:
            self.notify("A summary or translation is running (Esc stops it)", severity="warning")
            return False
        return True

    async def action_run_task(self) -> None:
        active = self.query_one(TabbedContent).active
        pane = {"summarize": "#summarize-pane", "translate": "#translate-pane"}.get(active)
        if pane is None:
            self.notify("ctrl+g runs a summary or translation: switch to those panes (F3, F4)", severity="warning")
            return
        await self.query_one(pane, TaskPane).start()

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        if not self._can_generate():
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
                reply = self.session.send(message.text)
        except (GpttermError, ValueError) as err:
            self.notify(str(err), severity="error", timeout=10)
            return
        self.query_one(PromptInput).clear()
        user = MessageItem("user", message.text)
        await log.mount(user)
        await self.start_reply(reply)
        self.call_after_refresh(self.refresh_conversations)  # a new conversation is listed at once

    async def start_reply(self, reply: Reply) -> None:
        log = self.query_one(ChatLog)
        self.reply_item = MessageItem("assistant", info="…", streaming=True)
        await log.mount(self.reply_item)
        log.scroll_end(animate=False)
        self.reply = reply
        self.reply_id += 1
        self._reply_clock = None
        self.chunk_interval = MIN_CHUNK_INTERVAL_S
        self._steady_cursor(True)
        self.update_status()
        self.run_reply(reply, self.reply_id)

    @work(thread=True, group="reply", exit_on_error=False)
    def run_reply(self, reply: Reply, reply_id: int) -> None:
        # Pieces are batched: each UI update renders Markdown and redraws on
        # the one event loop, and on a small machine that work competes with
        # llama.cpp's threads for the CPU (and with this thread for the GIL).
        error = None
        pending: list[str] = []
        last = time.perf_counter()
        try:
            for piece in reply:
                pending.append(piece)
                now = time.perf_counter()
                if now - last >= self.chunk_interval:
                    self.post_message(ReplyChunk(reply_id, "".join(pending)))
                    pending.clear()
                    last = now
        except GpttermError as err:
            error = str(err)
        if pending:
            self.post_message(ReplyChunk(reply_id, "".join(pending)))
        self.post_message(ReplyFinished(reply_id, reply, error))

    async def on_reply_chunk(self, message: ReplyChunk) -> None:
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

    async def on_reply_finished(self, message: ReplyFinished) -> None:
        if message.reply_id != self.reply_id:
            return
        reply = message.reply
        stats = {**reply.stats.as_dict(), "finish_reason": reply.finish_reason}
        if self.reply_item is not None:
            if not reply.text and reply.finish_reason == "cancelled":
                await self.reply_item.remove()
            else:
                self.reply_item.finish(reply.text, stats_text(stats))
        self.reply = None
        self.reply_item = None
        self._steady_cursor(False)
        self.last_stats = reply.stats
        self.context_used = reply.stats.prompt_tokens + reply.stats.completion_tokens
        if message.error:
            self.notify(message.error, severity="error", timeout=10)
        elif reply.finish_reason == "length":
            self.notify(f"The reply stopped at max_tokens ({self.params.max_tokens}) or a full context",
                        severity="warning")
        self.update_status()
        self.refresh_conversations()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            # A bug, not a user error: say so without taking the app down.
            self.notify(f"{type(event.worker.error).__name__}: {event.worker.error}", title="Internal error",
                        severity="error", timeout=15)
            if event.worker.group == "reply":
                self.reply = None
                self.reply_item = None
                self._steady_cursor(False)
                self.update_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            # Esc is left to dialogs and widgets unless there is something to stop.
            return self.reply is not None or self.editing is not None or self.running_task() is not None
        return True

    def action_stop(self) -> None:
        task = self.running_task()
        if task is not None:
            task.stop()
        elif self.reply is not None and self.engine is not None:
            self.engine.cancel()
        elif self.editing is not None:
            self.editing = None
            self.query_one(PromptInput).clear()
            self.update_status()

    async def action_regenerate(self) -> None:
        if not self._can_generate():
            return
        if not self.session.messages:
            self.notify("Nothing to regenerate yet", severity="warning")
            return
        log = self.query_one(ChatLog)
        try:
            reply = self.session.regenerate()
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        items = log.items
        if items and items[-1].role == "assistant":
            await items[-1].remove()
        await self.start_reply(reply)

    @on(ChatLog.EditRequested)
    def on_edit_requested(self, message: ChatLog.EditRequested) -> None:
        if self.reply is not None:
            self.notify("Stop the reply first (Esc)", severity="warning")
            return
        self.editing = message.index
        prompt = self.query_one(PromptInput)
        prompt.text = message.text
        prompt.focus()
        self.update_status()

    def action_copy_last(self) -> None:
        for m in reversed(self.session.messages):
            if m["role"] == "assistant":
                self.copy_to_clipboard(m["content"])
                self.notify("Last reply copied to the clipboard")
                return
        self.notify("No reply to copy yet", severity="warning")

    def action_focus_input(self) -> None:
        self.show_tab("chat")

    # -- settings -----------------------------------------------------------------

    def show_tab(self, tab: str) -> None:
        # Focus moves first: TabbedContent follows focus, and would switch
        # back if the focused widget stayed in the pane being hidden.
        target = {"settings": "#preset-select", "summarize": "#sum-source", "translate": "#tr-source"}.get(tab)
        try:
            if tab == "models":
                cast("ModelsPane", self.query_one("ModelsPane")).focus_default()
            elif target:
                self.query_one(target).focus()
            else:
                self.query_one(PromptInput).focus()
        except NoMatches:  # a pane still being mounted, in the first moments: it gets focus when shown
            pass
        self.query_one(TabbedContent).active = tab

    def action_show_tab(self, tab: str) -> None:
        self.show_tab(tab)

    def _set_params(self, params: Params) -> None:
        self.params = params
        self.session.params = params

    def on_settings_pane_param_changed(self, message: SettingsPane.ParamChanged) -> None:
        try:
            self._set_params(self.params.replace(**{message.name: message.value}))
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        if message.name == "system":
            self.session.set_system(message.value)
        if message.reload:
            self.action_reload_model()

    def on_settings_pane_model_path_submitted(self, message: SettingsPane.ModelPathSubmitted) -> None:
        from gptterm.models.resolve import resolve_model

        if message.path:
            try:
                resolve_model(message.path)  # a path or a local model's name
            except GpttermError as err:
                self.notify(str(err), severity="error")
                return
        self.model_spec = message.path or None
        self.server = None  # a model file is run here, whatever server was in use
        self.action_reload_model()

    def on_settings_pane_preset_chosen(self, message: SettingsPane.PresetChosen) -> None:
        values = self.config.all_presets().get(message.name, {})
        self._set_params(self.params.replace(**values))
        cast("SettingsPane", self.query_one("SettingsPane")).set_values(values)
        self.notify(f"Preset “{message.name}” applied to the next reply")

    def on_settings_pane_save_requested(self) -> None:
        self.action_save_settings()

    def action_save_settings(self) -> None:
        changed = {k: v for k, v in self.params.values.items() if v != self.config.params.values[k]}
        updates: dict[str, Any] = {k: v for k, v in changed.items() if v is not None}
        if (self.model_spec or None) != self.config.model:
            updates["model"] = self.model_spec
        try:
            path = save_config(updates, remove=[k for k, v in changed.items() if v is None]
                               + (["model"] if self.model_spec is None and self.config.model else []))
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        self.config = dataclasses.replace(self.config, params=self.params, model=self.model_spec)
        self.notify(f"Settings saved to {path}" if updates or changed else "Nothing changed since the last save")

    def on_settings_pane_save_preset_requested(self) -> None:
        def done(name: str | None) -> None:
            if not name:
                return
            values = {k: v for k, v in self.params.sampling().items() if k not in ("seed", "max_tokens")}
            try:
                save_config({"presets": {name: values}})
            except GpttermError as err:
                self.notify(str(err), severity="error")
                return
            presets = {**self.config.presets, name: values}
            self.config = dataclasses.replace(self.config, presets=presets)
            cast("SettingsPane", self.query_one("SettingsPane")).set_presets(sorted(self.config.all_presets()))
            self.notify(f"Preset “{name}” saved")

        self.push_screen(AskScreen("Name of the new preset"), done)

    # -- help and palette ---------------------------------------------------------------

    def current_keys(self) -> dict[str, str]:
        keymap = dict(self.config.keymap)
        return {a.id: keymap.get(a.id, a.keys) for a in ALL_ACTIONS}

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.current_keys()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        keys = self.current_keys()
        for a in APP_ACTIONS + CONVERSATION_ACTIONS:
            action = a.action.removeprefix("app.")
            yield SystemCommand(f"{a.label} ({keys[a.id]})", a.help, partial(self.run_action, action))
        yield from self.backend_commands()

    def backend_commands(self) -> Iterable[SystemCommand]:
        """Palette entries that switch to the local model, a configured server, or another remote model."""
        current = self.server.name if self.server is not None else LOCAL
        if current != LOCAL:
            yield SystemCommand("Backend: local model", "Run the local model in this process",
                                partial(self.use_backend, None))
        servers = dict(self.config.servers)
        if self.server is not None:
            servers.setdefault(self.server.name, self.server)
        for name, profile in sorted(servers.items()):
            if name != current:
                yield SystemCommand(f"Backend: server {name}", f"Use the OpenAI-compatible server at {profile.url}",
                                    partial(self.use_backend, profile))
        engine_models = getattr(self.engine, "models", None) if self.server is not None else None
        for model in engine_models or ():
            if model != self.engine.info.name:
                yield SystemCommand(f"Remote model: {model}", f"Use {model} on server {current}",
                                    partial(self.use_backend, self.server, model))


def create_app(*, model: str | None = None, overrides: dict[str, Any] | None = None,
               conversation_id: int | None = None, server: str | None = None) -> GpttermApp:
    """The one factory used by the CLI and the tests.

    ``server``: --server's value (a URL, a profile name or 'local'); None
    falls back to the environment and the config file. With a server,
    ``model`` names the remote model.
    """
    from gptterm.settings import load_config, resolve_server, server_spec

    config = load_config()
    params = config.params.replace(**(overrides or {}))
    profile = resolve_server(server_spec(server, config), config)
    return GpttermApp(config=config, params=params, model=config.model if profile else (model or config.model),
                      store=HistoryStore(), conversation_id=conversation_id, server=profile,
                      remote_model=model if profile else None)
