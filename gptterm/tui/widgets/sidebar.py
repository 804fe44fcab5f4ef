"""The side list of stored conversations, with a search box."""

from __future__ import annotations

import datetime as dt

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, ListItem, ListView

from gptterm.history.store import Conversation
from gptterm.tui.actions import CONVERSATION_ACTIONS


def _when(ts: float) -> str:
    moment = dt.datetime.fromtimestamp(ts)
    today = dt.date.today()
    return moment.strftime("%H:%M") if moment.date() == today else moment.strftime("%b %d")


class ConversationItem(ListItem):
    def __init__(self, conv: Conversation) -> None:
        super().__init__(classes=f"-{conv.kind}")
        self.conv = conv

    def compose(self) -> ComposeResult:
        title = self.conv.title or "(untitled)"
        yield Label(title, classes="title", markup=False)
        yield Label(f"{_when(self.conv.updated_at)} · {self.conv.message_count} msgs · {self.conv.kind}",
                    classes="meta")


class Sidebar(Vertical):
    """Search box over a list of conversations; posts Selected when one is chosen.

    With the list focused, r / x / delete rename, export and delete the
    highlighted conversation (it is opened first).
    """

    BINDINGS = [a.binding() for a in CONVERSATION_ACTIONS]

    class Selected(Message):
        def __init__(self, conversation_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search conversations…", id="conversation-search")
        yield ListView(id="conversation-list")
        yield Label("", id="conversation-count")

    def show(self, conversations: list[Conversation], current: int | None) -> None:
        """Replace the list, keeping the current conversation highlighted."""
        view = self.query_one(ListView)
        signature = [(c.id, c.updated_at, c.title, c.message_count) for c in conversations]
        if signature == getattr(self, "_signature", None):
            self._highlight(current)
            return
        self._signature = signature
        view.clear()
        view.extend(ConversationItem(c) for c in conversations)
        self.query_one("#conversation-count", Label).update(f"{len(conversations)} conversations")
        self.call_after_refresh(self._highlight, current)

    def _highlight(self, current: int | None) -> None:
        view = self.query_one(ListView)
        for i, item in enumerate(view.children):
            if isinstance(item, ConversationItem) and item.conv.id == current:
                view.index = i
                return

    @property
    def query_text(self) -> str:
        return self.query_one("#conversation-search", Input).value.strip()

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, ConversationItem):
            self.post_message(self.Selected(event.item.conv.id))
