"""The side list of stored conversations, with a search box."""

from __future__ import annotations

import datetime as dt
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option
from rich.console import Group
from rich.text import Text

from gptterm.history.store import Conversation
from gptterm.tui.actions import CONVERSATION_ACTIONS


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
                 Text(f"{_when(conv.updated_at)} · {conv.message_count} msgs · {conv.kind}", style="dim",
                      overflow="ellipsis", no_wrap=True))


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

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._signature: list[tuple] | None = None  # what the list shows now
        self._current: int | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search conversations…", id="conversation-search")
        yield ConversationList(id="conversation-list")
        yield Label("", id="conversation-count")

    @property
    def conversations(self) -> list[Conversation]:
        return self.query_one(ConversationList).conversations

    def show(self, conversations: list[Conversation], current: int | None) -> None:
        """Replace the list, keeping the current conversation highlighted."""
        view = self.query_one(ConversationList)
        signature = [(c.id, c.updated_at, c.title, c.message_count) for c in conversations]
        if signature == self._signature and current == self._current:
            return  # the periodic refresh: leave the highlight where the user's arrows put it
        if signature != self._signature:
            self._signature = signature
            view.set_conversations(conversations)
            self.query_one("#conversation-count", Label).update(f"{len(conversations)} conversations")
        self._current = current
        self.highlight(current)

    def highlight(self, current: int | None) -> None:
        view = self.query_one(ConversationList)
        ids = [c.id for c in view.conversations]
        view.highlighted = ids.index(current) if current in ids else None

    @property
    def query_text(self) -> str:
        return self.query_one("#conversation-search", Input).value.strip()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.post_message(self.Selected(int(event.option.id)))
