"""Modal screens: confirmation, a one-line question, a tool call's approval, export, and help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioButton, RadioSet, Static

from gptterm.tui.actions import ALL_ACTIONS


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel", id="dialog-cancel"),
                Binding("y", "dismiss(True)", "Yes", id="dialog-yes")]

    def __init__(self, question: str, yes: str = "Delete") -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("Cancel (esc)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class ToolApproval(ModalScreen[str]):
    """May this tool call run? Yes, no, or always (for the rest of the conversation); the call in full first."""

    BINDINGS = [Binding("escape", "dismiss('no')", "No", id="dialog-cancel"),
                Binding("n", "dismiss('no')", "No", id="tool-no"),
                Binding("y", "dismiss('yes')", "Yes", id="tool-yes"),
                Binding("a", "always", "Always", id="tool-always")]

    def __init__(self, name: str, source: str, shown: str, *, always: bool) -> None:
        """``shown``: the call in full (a command, the arguments); ``always``: the tool may be approved for the
        conversation (run_shell asks for each command)."""
        super().__init__(classes="dialog-screen")
        self.tool_name, self.source, self.shown, self.always = name, source, shown, always

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"The model wants to run {self.tool_name} ({self.source}):", markup=False)
            with VerticalScroll(classes="tool-call"):
                yield Static(self.shown, markup=False, id="tool-call-text")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="warning")
                yield Button("No (n)", id="no")
                if self.always:
                    yield Button("Always in this chat (a)", id="always")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_always(self) -> None:
        if self.always:
            self.dismiss("always")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "no")


class AskScreen(ModalScreen[str | None]):
    """Ask for one line of text (a title, a preset name)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="dialog-cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, markup=False)
            yield Input(self.value, id="answer")
            yield Label("Enter to accept, Esc to cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#answer", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class ExportScreen(ModalScreen[tuple[str, str] | None]):
    """Choose Markdown or JSON and the file to write."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="dialog-cancel")]

    def __init__(self, default_stem: str) -> None:
        super().__init__(classes="dialog-screen")
        self.default_stem = default_stem

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Export the conversation")
            with RadioSet(id="format"):
                yield RadioButton("Markdown", value=True, id="md")
                yield RadioButton("JSON", id="json")
            yield Input(f"{self.default_stem}.md", id="path")
            yield Label("Enter writes the file · Tab reaches the format · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        path = self.query_one("#path", Input)
        ext = "json" if event.pressed.id == "json" else "md"
        stem = path.value.rsplit(".", 1)[0] if "." in path.value else path.value
        path.value = f"{stem}.{ext}"

    def on_input_submitted(self, event: Input.Submitted) -> None:
        fmt = "json" if self.query_one("#json", RadioButton).value else "md"
        self.dismiss((fmt, event.value.strip()) if event.value.strip() else None)


class HelpScreen(ModalScreen[None]):
    """Every action with its current keys (after the user's keymap)."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close", id="help-close")]

    def __init__(self, keys: dict[str, str]) -> None:
        super().__init__(classes="dialog-screen")
        self.keys = keys

    def compose(self) -> ComposeResult:
        rows = []
        for action in ALL_ACTIONS:
            keys = self.keys.get(action.id, action.keys)
            rows.append(f"[b]{keys.replace(',', ' / '):<22}[/b] {action.help}  [dim]({action.id})[/dim]")
        with Vertical(classes="dialog help"):
            yield Label("[b]Keys[/b]  (remap any of them in the config file: [keymap] ID = \"keys\")")
            with VerticalScroll():
                yield Static("\n".join(rows))
            yield Label("ctrl+p opens the command palette · ctrl+q quits · Esc closes", classes="hint")
