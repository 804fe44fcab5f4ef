"""The template picker: choose a template for the next chat message, and fill in its variables.

It returns the bound template (``gptterm.templates.template.Bound``) or None; the chat
pane hands it to its session (``ChatSession.use_template``). Templates are read
by the same loader every face uses; a user template that cannot be read is one
line in the picker, naming the file.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

from gptterm.errors import GpttermError
from gptterm.templates.library import all_templates
from gptterm.templates.template import Bound, Template


class TemplatePicker(ModalScreen[Bound | None]):
    DEFAULT_CSS = """
    TemplatePicker #template-list { height: auto; max-height: 12; }
    TemplatePicker #template-form { height: auto; max-height: 9; }  /* scrolls: the buttons stay on a 24-row screen */
    TemplatePicker #template-form Input { margin-bottom: 0; }
    TemplatePicker .problem { color: $error; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="dialog-cancel")]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")
        self.found, self.problems = all_templates()
        self.chosen: Template | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="template-dialog"):
            yield Label("Template for the next message (it is the template's input)", id="template-title")
            yield OptionList(*[Option(f"{t.name}  [dim]{t.description}[/dim]", id=t.name) for t in self.found],
                             id="template-list")
            for line in self.problems:
                yield Label(line, classes="problem", markup=False)
            yield VerticalScroll(id="template-form")
            yield Label("", id="template-error", classes="problem", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Use", id="use", variant="primary", disabled=True)
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#template-form").display = False
        self.query_one("#template-list", OptionList).focus()

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        template = next(t for t in self.found if t.name == event.option.id)
        self.chosen = template
        if not template.variables:
            self._use({})
            return
        form = self.query_one("#template-form", VerticalScroll)
        await form.remove_children()
        widgets: list[Widget] = []
        for v in template.variables:
            what = f" — {v.description}" if v.description else ""
            widgets.append(Label(f"{v.name}{what}", markup=False))
            widgets.append(Input(v.default or "", placeholder="required" if v.required else "",
                                 id=f"var-{v.name}"))
        await form.mount(*widgets)
        # the list gives way to the form: at 24 rows both do not fit (the title names the template chosen)
        self.query_one("#template-list", OptionList).display = False
        form.display = True
        self.query_one("#template-title", Label).update(f"Template {template.name}: its variables")
        self.query_one("#use", Button).disabled = False
        self.query_one(f"#var-{template.variables[0].name}", Input).focus()

    def _values(self) -> dict[str, str]:
        assert self.chosen is not None
        return {v.name: self.query_one(f"#var-{v.name}", Input).value for v in self.chosen.variables
                if self.query_one(f"#var-{v.name}", Input).value.strip() or not v.required}

    def _use(self, values: dict[str, str]) -> None:
        assert self.chosen is not None
        try:
            bound = self.chosen.bind(values)
        except GpttermError as err:
            self.query_one("#template-error", Label).update(str(err))
            return
        self.dismiss(bound)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._use(self._values())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "use" and self.chosen is not None:
            self._use(self._values() if self.chosen.variables else {})
        elif event.button.id == "cancel":
            self.dismiss(None)
