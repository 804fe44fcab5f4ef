"""The Textual app: tabs of panes over the same session core as the REPL.

The session (gptterm.session) owns the settings, the backend, the engine's
lifecycle and the lease that lends the engine to one pane at a time; the
app is the adapter between it and the screen: it loads the engine in a
thread worker that only posts messages, turns each change of setting into
the session's ``Effect`` and the effect into notifications, and mirrors the
session's state in reactives (engine, busy, backend) that the status line
and the panes watch. Each pane owns its own state: the chat pane its
conversation and reply, the task panes their jobs, the models pane its
listings. The first frame is drawn before the model has loaded.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from gptterm import privacy
from gptterm.backend import Backend
from gptterm.engine.state_cache import StateCache
from gptterm.errors import GpttermError
from gptterm.session import Busy, Effect, Lease, Refused, Session, User, open_session
from gptterm.tui.actions import ALL_ACTIONS, APP_ACTIONS
from gptterm.tui.messages import ApplyAdapter, ModelAdded, ModelFailed, ModelLoaded, OpenFinetune, SwitchBackend
from gptterm.tui.screens import AskScreen, HelpScreen
from gptterm.tui.widgets.chat_pane import ChatPane
from gptterm.tui.widgets.deferred import AfterFirstFrame
from gptterm.tui.widgets.footer import KeysFooter
from gptterm.tui.widgets.sidebar import Sidebar
from gptterm.tui.widgets.status import StatusBar
from gptterm.tui.widgets.welcome import Welcome

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.session.tools import ToolSettings
    from gptterm.tui.widgets.finetune import FinetuneScreen
    from gptterm.tui.widgets.settings import SettingsPane

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


class GpttermApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "gptterm"
    # The screen's width class: panes fold their option rows and the chat's list below 120 columns.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [a.binding() for a in APP_ACTIONS]

    # Mirrors of the session's state, for the status line and the panes to watch (set on the UI thread only).
    #: what runs: the local model or a server (a new value on each switch)
    backend: reactive[Backend] = reactive(Backend, init=False)
    engine: reactive[Engine | None] = reactive(None, init=False)
    model_state: reactive[ModelState] = reactive("loading", init=False)
    #: who holds the engine (a streaming reply, a running summary), or None
    busy: reactive[Busy | None] = reactive(None, init=False)

    def __init__(self, session: Session, *, conversation_id: int | None = None, welcome: bool = False) -> None:
        super().__init__()
        if session.store is None:
            raise ValueError("the app keeps its conversations: its session needs a history store")
        self.session = session
        self.store = session.store
        self.state_cache = StateCache()
        self.set_reactive(GpttermApp.backend, session.backend)
        self._initial_conversation = conversation_id
        self._theme_ready = False
        #: the first start: a welcome is shown once the model has loaded
        self._welcome = welcome
        #: made on the first "Fine-tune…", kept (installed) so that a training outlives it being hidden
        self._finetune: FinetuneScreen | None = None

    @property
    def params(self) -> Any:
        """The live parameters (the session's)."""
        return self.session.params

    # -- layout -----------------------------------------------------------------

    def _make_pane(self, tab: str, module: str, cls: str) -> Widget:
        pane_class = getattr(importlib.import_module(module), cls)
        if tab == "settings":
            return pane_class(self.session.params.as_dict(), self.session.backend.local_model or "",
                              sorted(self.session.config.all_presets()), id="settings-pane")
        if tab == "ask":
            return pane_class(store=self.store, id="ask-pane")
        return pane_class(id=f"{tab}-pane")

    def compose(self) -> ComposeResult:
        yield Header()
        if self._welcome:
            yield Welcome(id="welcome")
        with TabbedContent(initial="chat", id="tabs"):
            with TabPane("Chat", id="chat"):
                yield ChatPane(store=self.store, state_cache=self.state_cache, params=self.session.params,
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
        config = self.session.config
        if config.keymap:
            self.set_keymap(dict(config.keymap))
        if config.theme and config.theme in self.available_themes:
            self.theme = config.theme
        self._theme_ready = True
        self.query_one(StatusBar).watch_state(self, self.chat)
        # in a thread, started once the first frame is out: importing llama_cpp
        # there would otherwise share the interpreter with drawing that frame
        self.call_after_refresh(self.load_model)
        self.chat.focus_default()
        for line in privacy.take_notices():  # an older install's files made private on start
            self.notify(line, title="Private files", timeout=12)

    def watch_theme(self, theme: str) -> None:
        if self._theme_ready:
            self.apply(self.session.save_theme(theme), quiet=True)

    def backend_label(self) -> str | None:
        """Which server the loaded engine talks to; None for the local model."""
        if self.engine is not None:
            return f"server {self.engine.info.server}" if self.engine.info.remote else None
        return self.backend.label()

    # -- the engine: one pane at a time ------------------------------------------------

    def acquire_engine(self, owner: User, verb: str) -> Lease | None:
        """The engine and parameters for ``owner`` to generate with now; None (the user told why) if not."""
        try:
            lease = self.session.acquire(owner, verb)
        except Refused as why:
            self.notify(str(why), severity="warning")
            return None
        self.busy = self.session.busy
        return lease

    def release_engine(self, owner: User) -> None:
        self.session.release(owner)
        self.busy = self.session.busy

    def advise(self, task: str, languages: tuple[str, ...] = ()) -> None:
        """Say once (a notification) when the loaded model does not cover ``task`` or ``languages``, and which
        catalog model does; 'advice = false' in the config file silences it (gptterm.models.advice)."""
        found = self.session.advice(task, languages)
        if found is not None:
            self.notify(found.text, title="Another model would do better", severity="warning", timeout=20)

    def watch_busy(self) -> None:
        self.refresh_bindings()  # the footer's Stop comes and goes with it

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            # Esc is left to dialogs and widgets unless there is something to stop, and to a screen with its own
            # Stop (the fine-tune screen's)
            return self.busy is not None and not hasattr(self.screen, "action_stop")
        if action == "run_task":  # shown in the footer only where it runs something
            return hasattr(self._active_pane(), "start")
        return True

    def _active_pane(self) -> Widget | None:
        try:
            return self.query_one(f"#{self.query_one(TabbedContent).active}-pane")
        except NoMatches:
            return None

    def action_stop(self) -> None:
        self.session.stop()

    # -- the engine's lifecycle -----------------------------------------------------------

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def load_model(self) -> None:
        start = time.perf_counter()
        try:
            engine = self.session.load()
        except (GpttermError, Refused) as err:
            self.post_message(ModelFailed(str(err)))
            return
        self.post_message(ModelLoaded(engine, time.perf_counter() - start))

    # The objects alive once the app is up (modules, styles, widgets, the
    # model) are moved out of the collector's reach with gc.freeze(): a full
    # collection walked them all, 70-90 ms holding the GIL, which stopped a
    # streaming reply (and key echo) that long every few seconds.
    def on_model_loaded(self, message: ModelLoaded) -> None:
        self._session_changed()
        info = message.engine.info
        label = self.backend_label()
        self.sub_title = f"{info.name} · {label}" if label else info.name
        if self._welcome:
            self._welcome = False
            self._show_welcome(message.engine)
        self.call_after_refresh(gc.freeze)

    def on_model_failed(self, message: ModelFailed) -> None:
        self._session_changed()  # the settings that loaded before may be back, loaded again
        self.notify(message.error, title="Model not loaded", severity="error", timeout=10)
        self.call_after_refresh(gc.freeze)

    def _session_changed(self) -> None:
        session = self.session
        self.backend = session.backend
        self.engine = session.engine
        self.model_state = "failed" if session.state == "failed" else "ready" if session.engine else "loading"
        self._show_settings(session.params.load())

    def reload(self) -> None:
        """Load the engine again with the session's settings, in the background."""
        if self.busy is not None:
            self.notify(f"Stop {self.busy.verb} first (Esc)", severity="warning")
            return
        # the panes let go of the engine now: it is closed before the next one loads
        self.engine = None
        self.model_state = "loading"
        self.notify(f"Connecting to {self.backend.label()}…" if self.session.backend.is_remote
                    else "Loading the model…")
        self.load_model()

    def action_reload_model(self) -> None:
        self.reload()

    def switch_backend(self, backend: Backend) -> None:
        """Run ``backend`` from now on (Settings, Models pane, palette): loaded in the background."""
        self.apply(self.session.switch(backend), quiet=True)

    def on_switch_backend(self, message: SwitchBackend) -> None:
        self.switch_backend(message.backend)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            # A bug, not a user error: say so without taking the app down.
            self.notify(f"{type(event.worker.error).__name__}: {event.worker.error}", title="Internal error",
                        severity="error", timeout=15)

    # -- settings: the session decides, the app shows -----------------------------------------

    def apply(self, effect: Effect, *, quiet: bool = False) -> None:
        """Show what a change of setting did; ``quiet``: only refusals and warnings (a field being typed)."""
        if effect.refused:
            self.notify(effect.text, severity="error", timeout=10)
            return
        if effect.warning:
            self.notify(effect.text, severity="warning")
        elif not quiet and not effect.reload:
            self.notify(effect.text)
        if effect.changed:
            self._show_settings(effect.changed)
        if effect.system is not None:
            self.chat.set_system(effect.system)
        if effect.reload:
            self.reload()

    def _show_settings(self, values: dict[str, Any]) -> None:
        try:
            pane = self.query_one("#settings-pane")
        except NoMatches:  # not made yet: it shows the session's parameters when it is
            return
        from gptterm.tui.widgets.settings import SettingsPane  # the pane's module, loaded after the first frame

        if isinstance(pane, SettingsPane) and pane.is_mounted:
            pane.set_values({k: v for k, v in values.items() if pane.values.get(k) != v})

    def _settings_presets(self) -> None:
        from gptterm.tui.widgets.settings import SettingsPane  # the pane's module, loaded after the first frame

        for pane in self.query(SettingsPane):
            pane.set_presets(sorted(self.session.config.all_presets()))

    def on_settings_pane_param_changed(self, message: SettingsPane.ParamChanged) -> None:
        self.apply(self.session.set(message.name, message.value), quiet=True)

    def on_settings_pane_model_path_submitted(self, message: SettingsPane.ModelPathSubmitted) -> None:
        self.apply(self.session.use_model(message.path), quiet=True)

    def on_settings_pane_preset_chosen(self, message: SettingsPane.PresetChosen) -> None:
        self.apply(self.session.apply_preset(message.name))

    def on_settings_pane_save_requested(self) -> None:
        self.action_save_settings()

    def action_save_settings(self) -> None:
        self.apply(self.session.save())

    def on_settings_pane_save_preset_requested(self) -> None:
        def done(name: str | None) -> None:
            if name:
                effect = self.session.save_preset(name)
                self.apply(effect)
                if not effect.refused:
                    self._settings_presets()

        self.push_screen(AskScreen("Name of the new preset"), done)

    def on_apply_adapter(self, message: ApplyAdapter) -> None:
        """Add a LoRA adapter to the loaded model: checked against it first (a mismatch is one notification,
        the model stays as it is), then the model reloads with it."""
        effect = self.session.add_adapter(message.name)
        if effect.reload and not effect.refused:
            self.notify(effect.text)
        self.apply(effect, quiet=True)

    # -- the first start ------------------------------------------------------------------

    def _show_welcome(self, engine: Engine) -> None:
        """Which model is loaded, what it is good for, and the model to download for this machine; the config
        file is written then, so the welcome comes once."""
        # the catalog and the machine's probe: only the welcome needs them, after the first frame
        from gptterm.models.advice import recommend

        try:
            entry = recommend("translate")
        except (GpttermError, OSError):
            entry = None
        self.query_one(Welcome).show(engine.info, entry)
        self.refresh_bindings()
        self.session.mark_started()

    def action_pull_recommended(self) -> None:
        """Download the model the welcome recommends (any time: the best for translation on this machine)."""
        welcome = self.query(Welcome)
        shown = welcome.first() if welcome else None
        if shown is not None and shown.shown and shown.entry is not None:
            shown.close()
            self.pull_recommended(shown.entry.id)
            return
        # the catalog and the machine's probe: only the welcome needs them, after the first frame
        from gptterm.models.advice import recommend

        found = recommend("translate")
        if found is None:
            self.notify("No catalog model fits this machine's free memory and disk", severity="warning")
            return
        self.pull_recommended(found.id)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # the welcome takes the top of every pane: it goes once the user moves on to another pane (F10 stays)
        if event.pane.id != "chat":
            for welcome in self.query(Welcome):
                welcome.close()

    def on_welcome_pull_requested(self, message: Welcome.PullRequested) -> None:
        self.pull_recommended(message.entry_id)

    def on_welcome_closed(self) -> None:
        self.refresh_bindings()
        self.chat.focus_default()

    def pull_recommended(self, entry_id: str) -> None:
        """Download ``entry_id`` in the Models pane's background worker (its progress shows there)."""
        from gptterm.tui.widgets.models import ModelsPane  # the pane's module, loaded after the first frame

        try:
            pane = self.query_one(ModelsPane)
        except NoMatches:
            self.notify("The Models pane is not ready yet: press F10 again in a moment", severity="warning")
            return
        if pane.start_pull(entry_id):
            self.notify(f"Downloading {entry_id} in the background: the Models pane (F6) shows its progress; "
                        "load it there (l) when it is done", timeout=10)
        self.refresh_bindings()

    # -- fine-tuning -------------------------------------------------------------------

    def open_finetune(self, base: str | None = None) -> None:
        """The fine-tune screen (palette, Models pane): of ``base`` (a local model's name), else of the loaded
        local model (else the default one). A training already running keeps its own model."""
        from gptterm.tui.widgets.finetune import FinetuneScreen  # its module (plotext): when it is opened

        if base is None:
            engine = self.engine
            if engine is not None and not engine.info.remote:
                base, label = engine.info.path, engine.info.name
            else:
                base = self.session.backend.local_model
                label = Path(base).stem if base else "the default model"
        else:
            label = Path(base).stem if base.endswith(".gguf") else base
        if self._finetune is None:
            self._finetune = FinetuneScreen(base, label)
            self.install_screen(self._finetune, name="finetune")
        else:
            self._finetune.set_base(base, label)
        if self.screen is not self._finetune:
            self.push_screen("finetune")

    def on_open_finetune(self, message: OpenFinetune) -> None:
        self.open_finetune(message.base)

    def on_model_added(self, message: ModelAdded) -> None:
        from gptterm.tui.widgets.models import ModelsPane  # the pane's module, loaded after the first frame

        for pane in self.query(ModelsPane):
            pane.refresh_local()

    def on_unmount(self) -> None:
        # the training process is in a session of its own: it would outlive the app
        if self._finetune is not None:
            self._finetune.kill()
        self.session.stop()  # a turn waiting on a tool or an approval ends
        self.session.tools.close()  # the MCP servers stop with the app

    # -- tabs ---------------------------------------------------------------------

    def show_tab(self, tab: str) -> None:
        # A full screen over the panes (the fine-tune screen) steps aside; dialogs stay.
        while len(self.screen_stack) > 1 and not self.screen.is_modal:
            self.pop_screen()
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
        keymap = dict(self.session.config.keymap)
        return {a.id: keymap.get(a.id, a.keys) for a in ALL_ACTIONS}

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.current_keys()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from gptterm.tui import palette  # the command palette's module: loaded when it opens, after the first frame

        yield from super().get_system_commands(screen)
        yield from palette.commands(self)

    def backend_commands(self) -> Iterable[SystemCommand]:
        from gptterm.tui import palette  # the command palette's module: loaded when it opens, after the first frame

        return palette.backend_commands(self)


def create_app(*, model: str | None = None, overrides: dict[str, Any] | None = None,
               conversation_id: int | None = None, server: str | None = None,
               encoding: str | None = None, welcome: bool = False, tools: ToolSettings | None = None) -> GpttermApp:
    """The one factory used by the CLI and the tests.

    ``model`` and ``server``: -m and --server as given (None when not): the
    backend is chosen from them, the environment and the config file as for
    every command. ``encoding``: --encoding, the files opened in the panes are
    read in it (over the config file's). ``welcome``: the first start (the CLI
    passes it when there is no config file yet). ``tools``: --mcp, --approve and --yes.
    """
    session = open_session(model=model, server=server, overrides=overrides, encoding=encoding, tools=tools)
    return GpttermApp(session, conversation_id=conversation_id, welcome=welcome)
