"""The Textual app: tabs of panes over the same core as the CLI.

The app owns the tabs, the backend and the engine's lifecycle (loading in a
thread worker that only posts messages), the parameters, the one "busy"
flag that lends the engine to one pane at a time (``acquire_engine``), the
command palette and what is saved to the config file. Each pane owns its
own state: the chat pane its conversation and reply, the task panes their
jobs, the models pane its listings. The first frame is drawn before the
model has loaded.
"""

from __future__ import annotations

import dataclasses
import gc
import inspect
import sys
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Iterable, Literal

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from gptterm.backend import Backend, choose_backend
from gptterm.engine.state_cache import StateCache
from gptterm.errors import GpttermError
from gptterm.history.store import HistoryStore
from gptterm.settings import Config, Params, save_config
from gptterm.tui.actions import ALL_ACTIONS, APP_ACTIONS
from gptterm.tui.host import Busy, Generating, Lease
from gptterm.tui.messages import ModelFailed, ModelLoaded, SwitchBackend
from gptterm.tui.screens import HelpScreen
from gptterm.tui.widgets.chat_pane import ChatPane
from gptterm.tui.widgets.deferred import AfterFirstFrame
from gptterm.tui.widgets.footer import KeysFooter
from gptterm.tui.widgets.sidebar import Sidebar
from gptterm.tui.widgets.status import StatusBar
from gptterm.tui.first_start import FirstStart
from gptterm.tui.settings_host import SettingsHost
from gptterm.tui.widgets.welcome import Welcome

if TYPE_CHECKING:
    from gptterm.engine.base import Engine

ModelState = Literal["loading", "ready", "failed"]

# The panes after the chat, in tab order: (tab id, title, module, class).
# They hold most of the widgets (150 of 180): made, and their modules
# imported, just after the first frame.
LATER_PANES = (
    ("summarize", "Summarize", "gptterm.tui.widgets.summarize", "SummarizePane"),
    ("translate", "Translate", "gptterm.tui.widgets.translate", "TranslatePane"),
    ("settings", "Settings", "gptterm.tui.widgets.settings", "SettingsPane"),
    ("models", "Models", "gptterm.tui.widgets.models", "ModelsPane"),
    ("inspect", "Inspect", "gptterm.tui.widgets.inspect", "InspectPane"),
    ("ask", "Ask", "gptterm.tui.widgets.ask", "AskPane"),
)


class GpttermApp(FirstStart, SettingsHost, App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "gptterm"
    # The screen's width class: panes fold their option rows and the chat's list below 120 columns.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [a.binding() for a in APP_ACTIONS]

    #: what runs: the local model or a server (a new value on each switch)
    backend: reactive[Backend] = reactive(Backend, init=False)
    engine: reactive[Engine | None] = reactive(None, init=False)
    model_state: reactive[ModelState] = reactive("loading", init=False)
    #: who holds the engine (a streaming reply, a running summary), or None
    busy: reactive[Busy | None] = reactive(None, init=False)

    def __init__(self, *, config: Config, params: Params, backend: Backend, store: HistoryStore,
                 conversation_id: int | None = None, welcome: bool = False) -> None:
        super().__init__()
        self.config = config
        self.params = params
        self.store = store
        self.state_cache = StateCache()
        self.set_reactive(GpttermApp.backend, backend)
        self.model_error: str | None = None
        self._initial_conversation = conversation_id
        self._theme_ready = False
        #: the advice lines already shown (each once a session)
        self._advised: set[str] = set()
        #: the first start: a welcome is shown once the model has loaded
        self._welcome = welcome

    # -- layout -----------------------------------------------------------------

    def _make_pane(self, tab: str, module: str, cls: str) -> Widget:
        import importlib

        pane_class = getattr(importlib.import_module(module), cls)
        if tab == "settings":
            return pane_class(self.params.as_dict(), self.backend.local_model or "",
                              sorted(self.config.all_presets()), id="settings-pane")
        if tab == "ask":
            return pane_class(store=self.store, id="ask-pane")
        return pane_class(id=f"{tab}-pane")

    def compose(self) -> ComposeResult:
        yield Header()
        if self._welcome:
            yield Welcome(id="welcome")
        with TabbedContent(initial="chat", id="tabs"):
            with TabPane("Chat", id="chat"):
                yield ChatPane(store=self.store, state_cache=self.state_cache, params=self.params,
                               conversation_id=self._initial_conversation, id="chat-pane")
            for tab, title, module, cls in LATER_PANES:
                with TabPane(title, id=tab):
                    yield AfterFirstFrame(partial(self._make_pane, tab, module, cls))
        yield StatusBar(id="status")
        yield KeysFooter()

    @property
    def chat(self) -> ChatPane:
        return self.query_one(ChatPane)

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
        self.query_one(StatusBar).watch_state(self, self.chat)
        # in a thread, started once the first frame is out: importing llama_cpp
        # there would otherwise share the interpreter with drawing that frame
        self.call_after_refresh(self.load_model)
        self.chat.focus_default()
        from gptterm import privacy

        for line in privacy.take_notices():  # an older install's files made private on start
            self.notify(line, title="Private files", timeout=12)

    def watch_theme(self, theme: str) -> None:
        if self._theme_ready and theme != self.config.theme:
            try:
                save_config({"theme": theme})
                self.config = dataclasses.replace(self.config, theme=theme)
            except GpttermError as err:
                self.notify(str(err), severity="error")

    def backend_label(self) -> str | None:
        """Which server the loaded engine talks to; None for the local model."""
        extra = self.engine.info.extra if self.engine is not None else {}
        if extra.get("backend") == "remote":
            return f"server {extra['server']}"
        return self.backend.label() if self.engine is None else None

    # -- the engine: one pane at a time ------------------------------------------------

    def acquire_engine(self, owner: Generating, verb: str) -> Lease | None:
        """The engine and parameters for ``owner`` to generate with now; None (the user told why) if not."""
        if self.engine is None:
            self.notify(self.model_error or "The model is still loading", severity="warning")
            return None
        if self.busy is not None:
            self.notify(f"{self.busy.verb.capitalize()}… in progress (Esc stops it)", severity="warning")
            return None
        self.busy = Busy(owner, verb)
        return Lease(self.engine, self.params)

    def release_engine(self, owner: Generating) -> None:
        if self.busy is not None and self.busy.owner is owner:
            self.busy = None

    def advise(self, task: str, languages: tuple[str, ...] = ()) -> None:
        """Say once (a notification) when the loaded model does not cover ``task`` or ``languages``, and which
        catalog model does; 'advice = false' in the config file silences it (gptterm.models.advice)."""
        if not self.config.advice or self.engine is None:
            return
        from gptterm.models.advice import check, profile_for

        advice = check(profile_for(self.engine.info), task, tuple(c for c in languages if c))
        if advice is None or advice.text in self._advised:
            return
        self._advised.add(advice.text)
        self.notify(advice.text, title="Another model would do better", severity="warning", timeout=20)

    def _refuse_while_busy(self) -> bool:
        if self.busy is not None:
            self.notify(f"Stop {self.busy.verb} first (Esc)", severity="warning")
            return True
        return False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.busy is not None  # Esc is left to dialogs and widgets unless there is something to stop
        if action == "run_task":  # shown in the footer only where it runs something
            return hasattr(self._active_pane(), "start")
        return True

    def _active_pane(self) -> Widget | None:
        try:
            return self.query_one(f"#{self.query_one(TabbedContent).active}-pane")
        except NoMatches:
            return None

    def action_stop(self) -> None:
        if self.busy is not None:
            self.busy.owner.stop()

    # -- the engine's lifecycle -----------------------------------------------------------

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def load_model(self) -> None:
        start = time.perf_counter()
        try:
            engine = self.backend.load(self.params, self.config)
        except GpttermError as err:
            self.post_message(ModelFailed(str(err)))
            return
        self.post_message(ModelLoaded(engine, time.perf_counter() - start))

    # The objects alive once the app is up (modules, styles, widgets, the
    # model) are moved out of the collector's reach with gc.freeze(): a full
    # collection walked them all, 70-90 ms holding the GIL, which stopped a
    # streaming reply (and key echo) that long every few seconds.
    def on_model_loaded(self, message: ModelLoaded) -> None:
        old = self.engine
        self.model_error = None
        self.model_state = "ready"
        self.engine = message.engine
        if old is not None:
            old.close()
        label = self.backend_label()
        self.sub_title = f"{self.engine.info.name} · {label}" if label else self.engine.info.name
        if self._welcome:
            self._welcome = False
            self.show_welcome(self.engine)
        self.call_after_refresh(gc.freeze)

    def on_model_failed(self, message: ModelFailed) -> None:
        self.model_state = "failed" if self.engine is None else "ready"
        self.model_error = message.error
        self.notify(message.error, title="Model not loaded", severity="error", timeout=10)
        self.call_after_refresh(gc.freeze)

    def action_reload_model(self) -> None:
        if self._refuse_while_busy():
            return
        if self.engine is None:
            self.model_state = "loading"
        self.notify(f"Connecting to {self.backend.label()}…" if self.backend.is_remote else "Loading the model…")
        self.load_model()

    def switch_backend(self, backend: Backend) -> None:
        """Run ``backend`` from now on (Settings, Models pane, palette): loaded in the background."""
        if self._refuse_while_busy():
            return
        self.backend = backend
        self.action_reload_model()

    def on_switch_backend(self, message: SwitchBackend) -> None:
        self.switch_backend(message.backend)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            # A bug, not a user error: say so without taking the app down.
            self.notify(f"{type(event.worker.error).__name__}: {event.worker.error}", title="Internal error",
                        severity="error", timeout=15)

    # -- tabs ---------------------------------------------------------------------

    def show_tab(self, tab: str) -> None:
        # Focus moves first: TabbedContent follows focus, and would switch
        # back if the focused widget stayed in the pane being hidden.
        try:
            pane = self.query_one(f"#{tab}-pane")
        except NoMatches:  # a pane still being mounted, in the first moments: it gets focus when shown
            pane = None
        focus_default = getattr(pane, "focus_default", None)
        if focus_default is not None:
            focus_default()
        self.query_one(TabbedContent).active = tab

    def action_show_tab(self, tab: str) -> None:
        self.show_tab(tab)

    async def action_run_task(self) -> None:
        start = getattr(self._active_pane(), "start", None)
        if start is None:
            self.notify("ctrl+g runs a summary, a translation or a generation: switch to those panes (F3, F4, F8, F9)",
                        severity="warning")
            return
        started = start()
        if inspect.isawaitable(started):
            await started

    async def run_chat_action(self, action: str) -> None:
        """A chat action from the palette: the chat is shown, then acts."""
        self.show_tab("chat")
        await self.chat.run_action(action)

    async def run_conversation_action(self, action: str) -> None:
        self.show_tab("chat")
        await self.chat.query_one(Sidebar).run_action(action)

    # -- help and palette ---------------------------------------------------------------

    def current_keys(self) -> dict[str, str]:
        keymap = dict(self.config.keymap)
        return {a.id: keymap.get(a.id, a.keys) for a in ALL_ACTIONS}

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.current_keys()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from gptterm.tui import palette

        yield from super().get_system_commands(screen)
        yield from palette.commands(self)

    def backend_commands(self) -> Iterable[SystemCommand]:
        from gptterm.tui import palette

        return palette.backend_commands(self)

def create_app(*, model: str | None = None, overrides: dict[str, Any] | None = None,
               conversation_id: int | None = None, server: str | None = None,
               encoding: str | None = None, welcome: bool = False) -> GpttermApp:
    """The one factory used by the CLI and the tests.

    ``model`` and ``server``: -m and --server as given (None when not): the
    backend is chosen from them, the environment and the config file as for
    every command. ``encoding``: --encoding, the files opened in the panes are
    read in it (over the config file's). ``welcome``: the first start (the CLI
    passes it when there is no config file yet).
    """
    from gptterm.settings import load_config

    config = load_config()
    if encoding:
        config = dataclasses.replace(config, encoding=encoding)
    params = config.params.replace(**(overrides or {}))
    return GpttermApp(config=config, params=params, backend=choose_backend(config, model=model, server=server),
                      store=HistoryStore(), conversation_id=conversation_id, welcome=welcome)
