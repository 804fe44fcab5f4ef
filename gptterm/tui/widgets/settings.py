"""The settings pane, generated from the one parameter declaration (``settings.PARAMS``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Input, Label, Select, Static

from gptterm.errors import GpttermError, ParamError
from gptterm.settings import BY_NAME, LOAD, PARAMS, TOOLS, Param


class ParamValidator(Validator):
    def __init__(self, param: Param) -> None:
        super().__init__()
        self.param = param

    def validate(self, value: str) -> ValidationResult:
        try:
            self.param.parse(value)
        except ParamError as err:
            return self.failure(str(err))
        return self.success()


class ParamField(Vertical):
    """Label, input and help (or the reason a value is refused) for one parameter."""

    def __init__(self, param: Param, value: Any) -> None:
        super().__init__(classes="param-field", id=f"field-{param.name}")
        self.param = param
        self.value = value

    def compose(self) -> ComposeResult:
        p = self.param
        with Horizontal(classes="param-row"):
            yield Label(p.name.replace("_", " "), classes="param-name")
            yield Input(p.edit_text(self.value), placeholder=p.none_means or "", id=f"param-{p.name}",
                        validators=[ParamValidator(p)], validate_on=["changed", "submitted"])
        yield Static(p.describe(), classes="param-help", markup=False)


def _live(param: Param) -> bool:
    """Applied as it is typed (sampling, the system prompt); else on Enter: a load setting reloads the model,
    a tool name is only whole once it is typed out."""
    return param.kind not in (LOAD, TOOLS)


class SettingsPane(VerticalScroll):
    """Every parameter, validated as typed; valid sampling values apply to the next reply.

    Load parameters (context, GPU layers, threads) and the model path apply
    on Enter (or F6), which reloads the model in the background.
    """

    @dataclass
    class ParamChanged(Message):
        name: str
        value: Any
        reload: bool

    @dataclass
    class ModelPathSubmitted(Message):
        path: str

    @dataclass
    class PresetChosen(Message):
        name: str

    class SaveRequested(Message):
        pass

    class SavePresetRequested(Message):
        pass

    def __init__(self, values: dict[str, Any], model: str, presets: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.values = dict(values)
        self.model = model
        self.presets = presets

    def compose(self) -> ComposeResult:
        with Horizontal(id="preset-row"):
            yield Label("preset", classes="param-name")
            yield Select([(name, name) for name in self.presets], prompt="choose a preset…", id="preset-select")
            yield Button("Save as preset…", id="save-preset")
            yield Button("Save to config (ctrl+s)", id="save-config", variant="primary")
        yield Label("Generation", classes="section")
        for p in PARAMS:
            if p.kind not in (LOAD, TOOLS):
                yield ParamField(p, self.values[p.name])
        yield Label("Tools (Enter applies: from the next message)", classes="section")
        for p in PARAMS:
            if p.kind == TOOLS:
                yield ParamField(p, self.values[p.name])
        yield Label("Model loading (Enter reloads the model)", classes="section")
        with Vertical(classes="param-field", id="field-model"):
            with Horizontal(classes="param-row"):
                yield Label("model", classes="param-name")
                yield Input(self.model, placeholder="bundled SmolLM2-135M-Instruct", id="param-model")
            yield Static("path of a .gguf file or a local model's name (Models pane); empty for the default",
                         classes="param-help")
        for p in PARAMS:
            if p.kind == LOAD:
                yield ParamField(p, self.values[p.name])

    def focus_default(self) -> None:
        self.query_one("#preset-select", Select).focus()

    def set_values(self, values: dict[str, Any]) -> None:
        """Show new values (e.g. from a preset) without re-validating what the user typed."""
        for name, value in values.items():
            field = self.query_one(f"#param-{name}", Input)
            with field.prevent(Input.Changed):
                field.value = BY_NAME[name].edit_text(value)
            self._show_reason(name, None)
        self.values.update(values)

    def _field(self, event_input: Input) -> tuple[Param | None, str]:
        name = (event_input.id or "").removeprefix("param-")
        for p in PARAMS:
            if p.name == name:
                return p, name
        return None, name

    def _show_reason(self, name: str, reason: str | None) -> None:
        field = self.query_one(f"#field-{name}", ParamField)
        help_text = field.query_one(".param-help", Static)
        help_text.update(reason or field.param.describe())
        help_text.set_class(reason is not None, "-error")

    def on_input_changed(self, event: Input.Changed) -> None:
        param, name = self._field(event.input)
        if param is None:
            return
        event.stop()
        if event.validation_result is not None and not event.validation_result.is_valid:
            self._show_reason(name, event.validation_result.failure_descriptions[0])
            return
        self._show_reason(name, None)
        value = param.parse(event.value)
        if value != self.values.get(name):
            self.values[name] = value
            if _live(param):
                self.post_message(self.ParamChanged(name, value, reload=False))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        param, name = self._field(event.input)
        event.stop()
        if name == "model":
            self.post_message(self.ModelPathSubmitted(event.value.strip()))
            return
        if param is None:
            return
        try:
            value = param.parse(event.value)
        except GpttermError:
            return  # the reason is already shown under the field
        self.values[name] = value
        self.post_message(self.ParamChanged(name, value, reload=param.kind == LOAD))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.NULL:
            self.post_message(self.PresetChosen(str(event.value)))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save-config":
            self.post_message(self.SaveRequested())
        elif event.button.id == "save-preset":
            self.post_message(self.SavePresetRequested())

    def set_presets(self, presets: list[str]) -> None:
        self.presets = presets
        self.query_one("#preset-select", Select).set_options([(n, n) for n in presets])
