"""The first start: a welcome that says which model is loaded and what it is good for, and F10, which
downloads the model recommended for this machine in the Models pane's background worker (any time)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.css.query import NoMatches
from textual.widgets import TabbedContent

from gptterm.errors import GpttermError
from gptterm.tui.widgets.welcome import Welcome

if TYPE_CHECKING:
    from textual.app import App

    from gptterm.engine.base import Engine

    _AppBase = App[None]
else:
    _AppBase = object


class FirstStart(_AppBase):
    """The app's part in the welcome (a mixin of GpttermApp: the welcome widget posts, the app pulls)."""

    def show_welcome(self, engine: Engine) -> None:
        """Which model is loaded, what it is good for, and the model to download for this machine; the config
        file is written then, so the welcome comes once."""
        from gptterm.models.advice import recommend

        try:
            entry = recommend("translate")
        except (GpttermError, OSError):
            entry = None
        self.query_one(Welcome).show(engine.info, entry)
        self.refresh_bindings()
        from gptterm import atomic, paths

        path = paths.config_file()
        if not path.exists():
            try:
                paths.private_dir(path.parent)
                atomic.write_text(path, "# gptterm's settings: 'gptterm config ls' lists them, the README explains them\n")
            except OSError:
                pass

    def _welcome_entry(self) -> str | None:
        try:
            welcome = self.query_one(Welcome)
        except NoMatches:
            return None
        return welcome.entry.id if welcome.shown and welcome.entry is not None else None

    def action_pull_recommended(self) -> None:
        """Download the model the welcome recommends (any time: the best for translation on this machine)."""
        entry = self._welcome_entry()
        if entry is not None:
            self.query_one(Welcome).close()
        else:
            from gptterm.models.advice import recommend

            found = recommend("translate")
            if found is None:
                self.notify("No catalog model fits this machine's free memory and disk", severity="warning")
                return
            entry = found.id
        self.pull_recommended(entry)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # the welcome takes the top of every pane: it goes once the user moves on to another pane (F10 stays)
        if event.pane.id != "chat":
            for welcome in self.query(Welcome):
                welcome.close()

    def on_welcome_pull_requested(self, message: Welcome.PullRequested) -> None:
        self.pull_recommended(message.entry_id)

    def on_welcome_closed(self) -> None:
        self.refresh_bindings()
        from gptterm.tui.widgets.chat_pane import ChatPane

        self.query_one(ChatPane).focus_default()

    def pull_recommended(self, entry_id: str) -> None:
        """Download ``entry_id`` in the Models pane's background worker (its progress shows there)."""
        from gptterm.tui.widgets.models import ModelsPane

        try:
            pane = self.query_one(ModelsPane)
        except NoMatches:
            self.notify("The Models pane is not ready yet: press F10 again in a moment", severity="warning")
            return
        if pane.start_pull(entry_id):
            self.notify(f"Downloading {entry_id} in the background: the Models pane (F6) shows its progress; "
                        "load it there (l) when it is done", timeout=10)
        self.refresh_bindings()
