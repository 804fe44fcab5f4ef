"""What a face holds for its whole run: the settings, the backend, the engine and who is using it.

The REPL and the TUI app each hold one ``Session``. It owns the config file's
values, the live parameters, the backend choice (the local model or a
server), the engine's lifecycle (``load`` again after a change, ``close``)
and the lease that lends the engine to one user at a time. A change of
setting goes through ``set`` (or ``apply_preset``, ``add_adapter``,
``use_model``, ``switch``), which validates it and returns an ``Effect``:
what happened, in one line, and whether the model must load again — the
face shows it and, for a reload, calls ``load()`` in its own way (the REPL
at once, the app in a thread worker). Nothing here knows about widgets.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gptterm import atomic, paths
from gptterm.adapter_spec import parse_spec
from gptterm.errors import GpttermError, ParamError
from gptterm.session.tools import SessionTools, ToolSettings, wanted
from gptterm.session.turn import ToolUse, result_budget
from gptterm.settings import LOAD, Config, Params, find_param, load_config, save_config

if TYPE_CHECKING:
    from gptterm.backend import Backend
    from gptterm.engine.base import Engine
    from gptterm.history.store import HistoryStore
    from gptterm.models.advice import Advice
    from gptterm.tools.builtin import DocsScope
    from gptterm.tools.permissions import Approvals, Ask
    from gptterm.tools.registry import ToolBox

State = Literal["idle", "loading", "ready", "failed"]


@dataclass(frozen=True)
class Effect:
    """What a change did, for the face to show."""

    #: one line: "temperature = 0.2", the reason for a refusal, "saved top_k to …"
    text: str
    #: the model must be loaded again for the change to apply (the face calls ``Session.load``)
    reload: bool = False
    #: nothing changed: ``text`` says why
    refused: bool = False
    #: applied, but ``text`` warns that it changes nothing here (thinking on a model without it)
    warning: bool = False
    #: the system prompt is now this (the open conversation takes it); None: unchanged
    system: str | None = None
    #: the parameters whose values changed, and their new values (a settings form shows them)
    changed: dict[str, Any] = field(default_factory=dict)


def refused(text: str) -> Effect:
    return Effect(text, refused=True)


class User(Protocol):
    """Whoever borrows the engine: a REPL turn, a pane's generation; ``stop()`` asks it to end early."""

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Busy:
    """Who holds the engine, and what it is doing ("generating", "summarizing", …)."""

    owner: User
    verb: str


@dataclass(frozen=True)
class Lease:
    """The engine and the parameters one user generates with, until it releases them."""

    engine: Engine
    params: Params


class Refused(Exception):
    """The engine cannot be lent now (loading, failed, or in use): the message says why, for the user."""


class Session:
    def __init__(self, config: Config, backend: Backend, *, params: Params | None = None,
                 store: HistoryStore | None = None, quiet: bool = False, tools: ToolSettings | None = None) -> None:
        """``params``: the config file's, with this run's flags over them; ``store``: the history (None with
        --no-log); ``quiet``: no advice lines (-q); ``tools``: --mcp, --approve and --yes."""
        self.config = config
        self.backend = backend
        self.params = params if params is not None else config.params
        self.store = store
        self.quiet = quiet
        self.engine: Engine | None = None
        self.state: State = "idle"
        #: why the last load failed (None: it did not)
        self.error: str | None = None
        self.busy: Busy | None = None
        self._lock = threading.RLock()
        #: what the engine in use was loaded with: a failed reload goes back to it
        self._loaded: tuple[Backend, dict[str, Any]] | None = None
        self._advised: set[str] = set()
        #: the tools the conversations may call (the ``tools`` parameter names them)
        self.tools = SessionTools(tools)
        #: a local engine's flash attention (None: on with a GPU, off on the CPU; True for one that only scores)
        self.flash_attn: bool | None = None

    # -- the engine's lifecycle ---------------------------------------------------------

    def load(self) -> Engine:
        """Load the backend with the parameters (blocking: the app calls it in a thread worker).

        The engine in use is closed first, so that two models never share the memory. When the new
        settings fail to load and others loaded before, those come back (and load again): the error
        says so, and the session stays usable."""
        with self._lock:
            if self.busy is not None:
                raise Refused(f"{self.busy.verb.capitalize()}… in progress: stop it first (Esc)")
            self.state = "loading"
            old, self.engine = self.engine, None
        if old is not None:
            old.close()
        wanted = (self.backend, self.params.load())
        try:
            engine = self.backend.load(self.params, self.config, flash_attn=self.flash_attn)
        except GpttermError as err:
            if self._loaded is None or self._loaded == wanted:
                self._failed(str(err))
                raise
            self.backend, loaded = self._loaded
            self.params = self.params.replace(**loaded)
            try:
                engine = self.backend.load(self.params, self.config, flash_attn=self.flash_attn)
            except GpttermError:
                self._failed(str(err))
                raise err from None
            self._ready(engine)
            raise type(err)(f"{err} (the settings that loaded before are back)") from None
        self._loaded = wanted
        self._ready(engine)
        return engine

    def _ready(self, engine: Engine) -> None:
        with self._lock:
            self.engine, self.state, self.error = engine, "ready", None

    def _failed(self, error: str) -> None:
        with self._lock:
            self.engine, self.state, self.error = None, "failed", error

    def close(self) -> None:
        with self._lock:
            engine, self.engine, self.state = self.engine, None, "idle"
        if engine is not None:
            engine.close()
        self.tools.close()

    def toolbox(self, docs: DocsScope | None = None) -> ToolBox | None:
        """The tools the model may call now (None: none); MCP servers start on first use (blocking)."""
        return self.tools.box(self.params, self.config, docs)

    def approvals(self) -> Approvals:
        """A new conversation's approvals: --approve and --yes, and nothing answered "always" yet."""
        # only a conversation with tools needs it (this module is on --help's path)
        from gptterm.tools.permissions import Approvals

        settings = self.tools.settings
        return Approvals(approved=set(settings.approved), yes=settings.yes)

    def tool_use(self, approvals: Approvals, ask: Ask | None, *, docs: DocsScope | None = None,
                 stopped: threading.Event | None = None) -> ToolUse | None:
        """What the next turn may do with tools (None: the ``tools`` parameter names none). Blocking: the
        first use starts the MCP servers."""
        box = self.toolbox(docs)
        if box is None:
            return None
        n_ctx = self.engine.n_ctx if self.engine is not None else self.params.ctx
        return ToolUse(box, approvals, ask, max_steps=self.params.max_steps, max_chars=result_budget(n_ctx),
                       stopped=stopped or threading.Event())

    def require_engine(self) -> Engine:
        """The engine, for a face that runs one thing at a time (the CLI); loaded on first use."""
        return self.engine if self.engine is not None else self.load()

    # -- one user at a time --------------------------------------------------------

    def acquire(self, owner: User, verb: str) -> Lease:
        """The engine and parameters for ``owner`` to generate with now; ``Refused`` (saying why) if not."""
        with self._lock:
            if self.engine is None:
                raise Refused(self.error if self.state == "failed" and self.error else "The model is still loading")
            if self.busy is not None:
                raise Refused(f"{self.busy.verb.capitalize()}… in progress (Esc stops it)")
            self.busy = Busy(owner, verb)
            return Lease(self.engine, self.params)

    def release(self, owner: User) -> None:
        with self._lock:
            if self.busy is not None and self.busy.owner is owner:
                self.busy = None

    def stop(self) -> None:
        """Ask whoever holds the engine to stop (Esc, Ctrl+C)."""
        busy = self.busy
        if busy is not None:
            busy.owner.stop()

    # -- settings ------------------------------------------------------------------------

    def set(self, name: str, value: Any) -> Effect:
        """Set parameter ``name`` (any alias) to ``value``: text as typed (parsed), or a typed value (checked)."""
        try:
            param = find_param(name)
            parsed = param.parse(value) if isinstance(value, str) else param.check(value)
        except ParamError as err:
            return refused(str(err))
        if param.name == "lora":
            problem = self._adapters_problem(parsed)
            if problem:
                return refused(problem)
        if param.name == "tools":
            try:  # a name that is no tool is said now, not at the next message
                wanted(self.params.replace(tools=parsed), self.config, self.tools.settings)
            except GpttermError as err:
                return refused(str(err))
        self.params = self.params.replace(**{param.name: parsed})
        text = f"{param.name} = {param.format(parsed)}"
        if param.kind == LOAD:
            return Effect(text, reload=True, changed={param.name: parsed})
        if param.name == "system":
            return Effect(text, system=parsed, changed={param.name: parsed})
        if param.name == "thinking" and parsed != "auto" and self.engine is not None \
                and self.engine.info.thinks is False:
            return Effect("This model's chat template has no thinking mode: the setting changes nothing with it",
                          warning=True, changed={param.name: parsed})
        return Effect(text, changed={param.name: parsed})

    def _adapters_problem(self, specs: tuple[str, ...]) -> str | None:
        """Why these adapters cannot be applied to the loaded model (None: they can, or nothing is loaded)."""
        engine = self.engine
        if engine is None:
            return None
        if engine.info.remote:
            return (f"LoRA adapters apply to a local model, not to one on server {engine.info.server} (which loads "
                    "its own)")
        from gptterm.models import adapters  # only a LoRA change needs it (this module is on --help's path)

        try:
            adapters.check(specs, Path(engine.info.path))
        except GpttermError as err:
            return str(err)
        return None

    def add_adapter(self, name: str) -> Effect:
        """Add the LoRA adapter ``name`` to those applied (checked against the loaded model first)."""
        engine = self.engine
        if engine is None or engine.info.remote:
            return refused("A LoRA adapter applies to a local model: load one first (a server loads its own)")
        current = list(self.params.lora or ())
        if name in {parse_spec(t).adapter for t in current}:
            return refused(f"{name} is already applied: the Settings pane's lora field changes its scale or "
                           "removes it")
        effect = self.set("lora", (*current, name))
        if effect.refused:
            return effect
        return dataclasses.replace(effect, text=f"Applying the LoRA adapter {name} to {Path(engine.info.path).stem}…")

    def apply_preset(self, name: str) -> Effect:
        values = self.config.all_presets().get(name)
        if values is None:
            return refused(f"no preset named {name!r}; there are: {', '.join(sorted(self.config.all_presets()))}")
        self.params = self.params.replace(**values)
        return Effect(f"Preset “{name}” applied to the next reply", changed=dict(values))

    def use_model(self, model: str | None) -> Effect:
        """Run the local model ``model`` (a path or a local model's name; None or "": the default) from now on."""
        if model:
            # only a change of model needs it (this module is on --help's path)
            from gptterm.models.resolve import resolve_model

            try:
                resolve_model(model)
            except GpttermError as err:
                return refused(str(err))
        return self.switch(self.backend.with_local_model(model or None))

    def switch(self, backend: Backend) -> Effect:
        """Run ``backend`` from now on (a local model, a server, another model on it): loads again."""
        if self.busy is not None:
            return refused(f"Stop {self.busy.verb} first (Esc)")
        self.backend = backend
        label = backend.label()
        return Effect(f"Connecting to {label}…" if label else "Loading the model…", reload=True)

    # -- the config file ----------------------------------------------------------------

    def save(self) -> Effect:
        """Write the parameters (and the local model) that differ from the config file into it."""
        changed = {k: v for k, v in self.params.values.items() if v != self.config.params.values[k]}
        updates: dict[str, Any] = {k: v for k, v in changed.items() if v is not None}
        remove = [k for k, v in changed.items() if v is None]
        model = self.backend.local_model or None
        names = sorted(changed)
        if model != self.config.model:
            names.append("model")
            if model is None:
                remove.append("model")
            else:
                updates["model"] = model
        if not names:
            return Effect("no setting differs from the config file")
        try:
            path = save_config(updates, self.config.path, remove=remove)
        except GpttermError as err:
            return refused(str(err))
        self.config = dataclasses.replace(self.config, params=self.params, model=model)
        return Effect(f"saved {', '.join(names)} to {path}")

    def save_preset(self, name: str) -> Effect:
        """Save the sampling parameters in use as preset ``name``."""
        name = name.strip()
        if not name:
            return refused("a preset needs a name")
        values = {k: v for k, v in self.params.sampling().items() if k not in ("seed", "max_tokens")}
        try:
            save_config({"presets": {name: values}}, self.config.path)
        except GpttermError as err:
            return refused(str(err))
        self.config = dataclasses.replace(self.config, presets={**self.config.presets, name: values})
        return Effect(f"Preset “{name}” saved")

    def save_theme(self, theme: str) -> Effect:
        if theme == self.config.theme:
            return Effect(f"theme = {theme}")
        try:
            save_config({"theme": theme}, self.config.path)
        except GpttermError as err:
            return refused(str(err))
        self.config = dataclasses.replace(self.config, theme=theme)
        return Effect(f"theme = {theme}")

    def mark_started(self) -> None:
        """The first start is over: the config file exists from now on (the welcome shows once)."""
        path = self.config.path
        if path.exists():
            return
        try:
            paths.private_dir(path.parent)
            atomic.write_text(path, "# gptterm's settings: 'gptterm config ls' lists them, the README explains "
                                    "them\n")
        except OSError:
            pass

    # -- what the model is good for ---------------------------------------------------

    def advice(self, task: str, languages: tuple[str, ...] = ()) -> Advice | None:
        """Once a session: why the loaded model is not suited to ``task`` or ``languages`` and which catalog
        model is (gptterm.models.advice; task "tools": a model not trained to call tools); None when it is
        suited, was said already, or advice is off (-q, 'advice = false' in the config file)."""
        engine = self.engine
        if self.quiet or not self.config.advice or engine is None:
            return None
        # the catalog and the machine's probe (subprocess): only advice needs them (this module is on --help's path)
        from gptterm.models.advice import check, profile_for, tools_advice

        if task == "tools":
            found = tools_advice(engine.info)
        else:
            found = check(profile_for(engine.info), task, tuple(c for c in languages if c))
        if found is None or found.text in self._advised:
            return None
        self._advised.add(found.text)
        return found


def open_session(*, model: str | None = None, server: str | None = None, overrides: dict[str, Any] | None = None,
                 encoding: str | None = None, log: bool = True, quiet: bool = False,
                 config: Config | None = None, tools: ToolSettings | None = None) -> Session:
    """The session for ``-m``, ``--server``, the parameter flags (``overrides``, parsed), --encoding, --no-log
    (``log``), -q and the tool flags (``tools``), over the config file: the one way every face starts."""
    from gptterm.backend import choose_backend  # only opening a session needs it (this module is on --help's path)

    config = config or load_config()
    if encoding:
        config = dataclasses.replace(config, encoding=encoding)
    params = config.params.replace(**(overrides or {}))
    store = None
    if log:
        from gptterm.history.store import HistoryStore  # heavy: sqlite3 (only a session that keeps history pays for it)

        store = HistoryStore()
    return Session(config, choose_backend(config, model=model, server=server), params=params, store=store,
                   quiet=quiet, tools=tools)

