"""The app's part in the settings: the Settings pane's changes, presets, saving to the config file, and a
LoRA adapter chosen in the Models pane (a mixin of GpttermApp, which owns the parameters and the engine)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.css.query import NoMatches

from gptterm.errors import GpttermError
from gptterm.settings import save_config
from gptterm.tui.messages import ApplyAdapter
from gptterm.tui.screens import AskScreen

if TYPE_CHECKING:
    from textual.app import App

    from gptterm.backend import Backend
    from gptterm.engine.base import Engine
    from gptterm.settings import Config, Params
    from gptterm.tui.widgets.chat_pane import ChatPane
    from gptterm.tui.widgets.settings import SettingsPane

    _AppBase = App[None]
else:
    _AppBase = object


class SettingsHost(_AppBase):
    if TYPE_CHECKING:
        config: Config
        params: Params
        backend: Backend
        engine: Engine | None

        @property
        def chat(self) -> ChatPane: ...

        def action_reload_model(self) -> None: ...

        def switch_backend(self, backend: Backend) -> None: ...

    def _settings_pane(self) -> SettingsPane:
        from gptterm.tui.widgets.settings import SettingsPane

        return self.query_one(SettingsPane)

    def on_settings_pane_param_changed(self, message: SettingsPane.ParamChanged) -> None:
        try:
            self.params = self.params.replace(**{message.name: message.value})
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        if message.name == "system":
            self.chat.set_system(message.value)
        if message.name == "thinking" and message.value != "auto" and self.engine is not None \
                and getattr(self.engine, "thinks", True) is False:
            self.notify("This model's chat template has no thinking mode: the setting changes nothing with it",
                        severity="warning")
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
        self.switch_backend(self.backend.with_local_model(message.path or None))

    def on_settings_pane_preset_chosen(self, message: SettingsPane.PresetChosen) -> None:
        values = self.config.all_presets().get(message.name, {})
        self.params = self.params.replace(**values)
        self._settings_pane().set_values(values)
        self.notify(f"Preset “{message.name}” applied to the next reply")

    def on_settings_pane_save_requested(self) -> None:
        self.action_save_settings()

    def action_save_settings(self) -> None:
        changed = {k: v for k, v in self.params.values.items() if v != self.config.params.values[k]}
        updates: dict[str, Any] = {k: v for k, v in changed.items() if v is not None}
        model = self.backend.local_model or None
        if model != self.config.model:
            updates["model"] = model
        try:
            path = save_config(updates, remove=[k for k, v in changed.items() if v is None]
                               + (["model"] if model is None and self.config.model else []))
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        self.config = dataclasses.replace(self.config, params=self.params, model=model)
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
            self.config = dataclasses.replace(self.config, presets={**self.config.presets, name: values})
            self._settings_pane().set_presets(sorted(self.config.all_presets()))
            self.notify(f"Preset “{name}” saved")

        self.push_screen(AskScreen("Name of the new preset"), done)

    def on_apply_adapter(self, message: ApplyAdapter) -> None:
        """Add a LoRA adapter to the loaded model: checked against it first (a mismatch is one notification,
        the model stays as it is), then the model reloads with it."""
        from gptterm.models import adapters

        engine = self.engine
        if engine is None or engine.info.extra.get("backend") == "remote":
            self.notify("A LoRA adapter applies to a local model: load one first (a server loads its own)",
                        severity="warning")
            return
        current = list(self.params.values["lora"] or ())
        names = {adapters.parse_spec(t).adapter for t in current}
        if message.name in names:
            self.notify(f"{message.name} is already applied: the Settings pane's lora field changes its scale or "
                        "removes it")
            return
        wanted = [*current, message.name]
        try:
            adapters.check(wanted, Path(engine.info.path))
            self.params = self.params.replace(lora=tuple(wanted))
        except GpttermError as err:
            self.notify(str(err), severity="error", timeout=10)
            return
        try:
            self._settings_pane().set_values({"lora": self.params.values["lora"]})
        except NoMatches:  # not made yet: it shows the app's parameters when it is
            pass
        self.notify(f"Applying the LoRA adapter {message.name} to {Path(engine.info.path).stem}…")
        self.action_reload_model()
