"""The side list of stored conversations, with a search box, and what can be done to one.

The sidebar owns its listing (read from the history store, refreshed every
few seconds so that conversations the CLI makes meanwhile appear) and the
conversation actions: rename, export, delete. It posts ``Selected`` and
``Deleted``; the chat pane opens or closes conversations in answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from gptterm.errors import GpttermError
from gptterm.history import export
from gptterm.history.store import Conversation
from gptterm.tui.actions import CONVERSATION_ACTIONS
from gptterm.tui.host import host
from gptterm.tui.screens import AskScreen, ConfirmScreen, ExportScreen
from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.engine.state_cache import StateCache
    from gptterm.history.store import HistoryStore

# Seconds between looks at the store for conversations made elsewhere.
POLL_S = 5


def _when(ts: float) -> str:
    moment = dt.datetime.fromtimestamp(ts)
    today = dt.date.today()
    return moment.strftime("%H:%M") if moment.date() == today else moment.strftime("%b %d")


class ConversationList(OptionList):
    """The conversations as one widget drawing lines, not one widget per row: with hundreds of
    conversations, a widget each made every layout pass of the screen (many per streamed reply)
    walk them all; measured with 500: 64% of a core while streaming, against 27%."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conversations: list[Conversation] = []

    def set_conversations(self, conversations: list[Conversation]) -> None:
        self.conversations = list(conversations)
        self.set_options(Option(_prompt(c), id=str(c.id)) for c in conversations)

    @property
    def highlighted_conversation(self) -> Conversation | None:
        i = self.highlighted
        return self.conversations[i] if i is not None and 0 <= i < len(self.conversations) else None


def _prompt(conv: Conversation) -> Group:
    # two Rich lines, so the title keeps to one line and ends in an ellipsis
    return Group(Text(conv.title or "(untitled)", style="bold", overflow="ellipsis", no_wrap=True),
                 Text(f"{_when(conv.updated_at)} · {plural(conv.message_count, 'message')} · {conv.kind}",
                      style="dim", overflow="ellipsis", no_wrap=True))


class Sidebar(Vertical):
    """Search box over a list of conversations; posts Selected when one is chosen.

    With the list focused, r / x / delete rename, export and delete the
    highlighted conversation; elsewhere (the command palette) they act on the
    open one.
    """

    BINDINGS = [a.binding() for a in CONVERSATION_ACTIONS]

    @dataclass
    class Selected(Message):
        conversation_id: int

    @dataclass
    class Deleted(Message):
        conversation_id: int

    def __init__(self, store: HistoryStore, state_cache: StateCache, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.state_cache = state_cache
        self._signature: list[tuple] | None = None  # what the list shows now
        #: the conversation open in the chat (highlighted in the list)
        self.current: int | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search conversations…", id="conversation-search")
        yield ConversationList(id="conversation-list")
        yield Label("", id="conversation-count")

    def on_mount(self) -> None:
        self.set_interval(POLL_S, self._poll)

    @property
    def conversations(self) -> list[Conversation]:
        return self.query_one(ConversationList).conversations

    def focus_search(self) -> None:
        self.query_one("#conversation-search", Input).focus()

    # -- the listing -----------------------------------------------------------------

    def _poll(self) -> None:
        # Not while the engine is busy: rebuilding the list then is CPU taken
        # from generation (the reply's end refreshes the list).
        if host(self).busy is None:
            self.refresh_list(self.current)

    def refresh_list(self, current: int | None) -> None:
        """Read the store again (with the search text) and show what it holds, ``current`` highlighted."""
        try:
            query = self.query_one("#conversation-search", Input).value.strip()
            convs = self.store.list_conversations(limit=500, query=query or None)
        except NoMatches:  # the timer can fire while the app is shutting down
            return
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        try:
            self.show(convs, current)
        except NoMatches:  # shutting down: the sidebar's children are gone already
            return

    def show(self, conversations: list[Conversation], current: int | None) -> None:
        """Replace the list, keeping the current conversation highlighted."""
        view = self.query_one(ConversationList)
        signature = [(c.id, c.updated_at, c.title, c.message_count) for c in conversations]
        if signature == self._signature and current == self.current:
            return  # the periodic refresh: leave the highlight where the user's arrows put it
        if signature != self._signature:
            self._signature = signature
            view.set_conversations(conversations)
            self.query_one("#conversation-count", Label).update(plural(len(conversations), "conversation"))
        self.current = current
        ids = [c.id for c in view.conversations]
        view.highlighted = ids.index(current) if current in ids else None

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "conversation-search":
            event.stop()
            self.refresh_list(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Selected(int(event.option.id)))

    # -- actions on a conversation --------------------------------------------------------

    def _target(self) -> int | None:
        """The conversation highlighted in the focused list, else the open one."""
        view = self.query_one(ConversationList)
        if self.app.focused is view and view.highlighted_conversation is not None:
            return view.highlighted_conversation.id
        if self.current is None:
            self.notify("This conversation has no messages yet", severity="warning")
        return self.current

    def action_rename_conversation(self) -> None:
        cid = self._target()
        if cid is None:
            return

        def done(title: str | None) -> None:
            if title:
                try:
                    self.store.rename(cid, title)
                except GpttermError as err:
                    self.notify(str(err), severity="error")
                self.refresh_list(self.current)

        self.app.push_screen(AskScreen("New title", self.store.get(cid).title), done)

    def action_delete_conversation(self) -> None:
        cid = self._target()
        if cid is None:
            return
        if cid == self.current and host(self).busy is not None:
            self.notify("Stop the reply first (Esc)", severity="warning")
            return
        title = self.store.get(cid).title or "(untitled)"

        def done(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.store.delete_conversation(cid)
            except GpttermError as err:
                self.notify(str(err), severity="error")
                return
            self.state_cache.forget(cid)
            self.post_message(self.Deleted(cid))
            self.refresh_list(None if cid == self.current else self.current)
            self.notify(f"Deleted “{title}”")

        self.app.push_screen(ConfirmScreen(f"Delete the conversation “{title}”? This cannot be undone."), done)

    def action_export_conversation(self) -> None:
        cid = self._target()
        if cid is None:
            return

        def done(choice: tuple[str, str] | None) -> None:
            if not choice:
                return
            fmt, target = choice
            try:
                path = export.write(self.store.get(cid), fmt, target)
            except GpttermError as err:
                self.notify(str(err), severity="error")
                return
            self.notify(f"Exported to {path.resolve()}")

        self.app.push_screen(ExportScreen(f"conversation-{cid}"), done)
