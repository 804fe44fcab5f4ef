"""The first start's welcome (no config file yet): the model loaded, what it is good for, and one key
to download the model this machine runs best in the background."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Static

if TYPE_CHECKING:
    from gptterm.types import ModelInfo
    from gptterm.models.catalog import CatalogEntry

#: the key (an app binding, ``pull-recommended``) that downloads the recommended model
PULL_KEY = "f10"


def welcome_text(info: ModelInfo, entry: CatalogEntry | None, key: str = PULL_KEY, *, short: bool = False) -> str:
    """What the welcome says about ``info`` (the loaded model) and ``entry`` (the recommended one);
    ``short``: for a screen of few rows (80x24), where the welcome must leave the chat room."""
    from gptterm.models.advice import profile_for  # after the first frame: the app's start stays fast
    from gptterm.models.names import human_size

    profile = profile_for(info)
    said = f"{profile.name}: {profile.summary()}" if profile is not None else info.name
    lines = [f"[b]Welcome to gptterm.[/b] Loaded: {said}."]
    if entry is not None and (profile is None or profile.entry is None or profile.entry.id != entry.id) and short:
        lines.append(f"For translation and documents: [b]{entry.id}[/b] ({entry.params}, {human_size(entry.size)}); "
                     f"[b]{key.upper()}[/b] downloads it.")  # the footer names F1
    elif entry is not None and (profile is None or profile.entry is None or profile.entry.id != entry.id):
        lines.append(f"For translation, other languages and documents this machine runs [b]{entry.id}[/b] well "
                     f"({entry.params}, {human_size(entry.size)}): [b]{key.upper()}[/b] downloads it in the "
                     f"background (Models pane, F6; or: gptterm models pull {entry.id}). F1 lists every key.")
    else:
        lines.append("F1 lists every key.")
    return "\n".join(lines)


class Welcome(Vertical):
    """Shown above the panes once the model has loaded, on the first start only; posts what the user chose."""

    DEFAULT_CSS = """
    Welcome { height: auto; max-height: 12; border: round $accent; padding: 0 1; display: none; }
    Welcome.-shown { display: block; }
    Welcome #welcome-text { height: auto; }
    Welcome Horizontal { height: auto; }
    Welcome Button { margin: 0 2 0 0; }
    """

    @dataclass
    class PullRequested(Message):
        entry_id: str

    class Closed(Message):
        pass

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entry: CatalogEntry | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="welcome-text")
        with Horizontal():
            yield Button("Download", id="welcome-pull", variant="primary", compact=True)
            yield Button("Close", id="welcome-close", compact=True)

    def show(self, info: ModelInfo, entry: CatalogEntry | None) -> None:
        self.entry = entry
        short = self.app.size.height < 32  # the app's "-short" breakpoint
        self.query_one("#welcome-text", Static).update(welcome_text(info, entry, short=short))
        pull = self.query_one("#welcome-pull", Button)
        pull.display = entry is not None
        if entry is not None:
            pull.label = f"Download {entry.id} ({PULL_KEY.upper()})"
        self.add_class("-shown")

    def close(self) -> None:
        self.remove_class("-shown")

    @property
    def shown(self) -> bool:
        return self.has_class("-shown")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "welcome-pull" and self.entry is not None:
            self.post_message(self.PullRequested(self.entry.id))
        self.close()
        self.post_message(self.Closed())
