"""The footer: the focused pane's keys first (Textual orders them so), packed tighter on narrow screens."""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

#: below this many columns the keys lose their padding, so that F1 (help) still fits at 80
COMPACT_BELOW = 120


class KeysFooter(Footer):
    def on_resize(self, event: events.Resize) -> None:
        self.compact = event.size.width < COMPACT_BELOW
