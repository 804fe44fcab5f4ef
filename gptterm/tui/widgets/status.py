"""The status line: model, backend, what is running, context use, speed.

It watches the app's reactive state (backend, engine, model state, who is
busy) and the chat pane's (context use, last speed, editing), and redraws
itself when any of them changes; nobody refreshes it by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from textual.widgets import Static

if TYPE_CHECKING:
    from gptterm.tui.app import GpttermApp
    from gptterm.tui.widgets.chat_pane import ChatPane

APP_STATE = ("backend", "engine", "model_state", "busy")
CHAT_STATE = ("context_used", "last_tokens_per_s", "editing")


class StatusBar(Static):
    def watch_state(self, app: GpttermApp, chat: ChatPane) -> None:
        """Follow ``app`` and ``chat`` from now on."""
        self._app_state, self._chat = app, chat
        for name in APP_STATE:
            self.watch(app, name, self._changed, init=False)
        for name in CHAT_STATE:
            self.watch(chat, name, self._changed, init=False)
        self._changed()

    def _changed(self, *_: object) -> None:
        app, chat = self._app_state, self._chat
        engine = app.engine
        name = engine.info.name if engine is not None else app.backend.display_name()
        if app.model_state == "loading":
            state = "[yellow]connecting…[/yellow]" if app.backend.is_remote else "[yellow]loading model…[/yellow]"
        elif app.model_state == "failed":
            state = "[red]model failed to load[/red]"
        elif app.busy is not None:
            state = f"[green]{app.busy.verb}… (Esc stops)[/green]"
        elif chat.editing is not None:
            state = "[cyan]editing a message: Enter resends, Esc cancels[/cyan]"
        else:
            state = "ready"
        parts = [f"[b]{escape(name)}[/b]", state]
        label = app.backend_label()
        if label:
            parts.insert(1, escape(label))
        if engine is not None:
            parts.append(f"context {chat.context_used}/{engine.n_ctx}")
        if chat.last_tokens_per_s:
            parts.append(f"{chat.last_tokens_per_s:.1f} tok/s")
        self.update(" · ".join(parts))
