"""The chat pane: a scrolling log of messages and the input box."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from textual import events
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Collapsible, Static, TextArea

from gptterm.tui.actions import INPUT_ACTIONS, MESSAGE_ACTIONS
from gptterm.tui.widgets.markdown_view import MarkdownView
from gptterm.words import plural

CODE_BLOCK = re.compile(r"^(`{3,}|~{3,})[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)

ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System"}


def code_blocks(text: str) -> list[str]:
    return [m.group(2).rstrip("\n") for m in CODE_BLOCK.finditer(text)]


def stats_text(stats: dict | None) -> str:
    if not stats:
        return ""
    parts = []
    if stats.get("finish_reason") == "cancelled":
        parts.append("stopped")
    elif stats.get("finish_reason") == "error":
        parts.append("incomplete (the reply broke off)")
    if stats.get("completion_tokens"):
        parts.append(plural(stats["completion_tokens"], "token"))
    if stats.get("tokens_per_s"):
        parts.append(f"{stats['tokens_per_s']:.1f} tok/s")
    if stats.get("ttft_s") is not None:
        parts.append(f"first token {stats['ttft_s']:.2f} s")
    return " · ".join(parts)


class ThinkingView(Collapsible):
    """A reasoning model's thinking (its <think> block), above its reply: folded and dimmed, streamed.

    Folded, only its title line changes as the thinking streams (the word count), so a long think costs
    no layout pass; the text is drawn when it is unfolded (click, or Enter on the title)."""

    DEFAULT_CSS = """
    ThinkingView { border: none; padding: 0; margin: 0 0 0 2; background: transparent; height: auto; }
    ThinkingView CollapsibleTitle { color: $text-muted; padding: 0 1; }
    ThinkingView Contents { padding: 0 0 0 2; }
    ThinkingView .thinking-text { color: $text-muted; text-style: italic; }
    """

    def __init__(self, text: str = "", *, streaming: bool = False) -> None:
        self.text = text
        self.streaming = streaming
        self._body = Static("", classes="thinking-text", markup=False)
        super().__init__(self._body, title=self._heading(), collapsed=True, classes="thinking")

    def _heading(self) -> str:
        words = plural(len(self.text.split()), "word")
        return f"Thinking… {words}" if self.streaming else f"Thought for {words} (Enter or click to unfold)"

    def on_mount(self) -> None:
        if not self.collapsed:
            self._body.update(self.text)

    def append(self, text: str) -> None:
        self.text += text
        self.title = self._heading()
        if not self.collapsed:
            self._body.update(self.text)

    def finish(self, text: str) -> None:
        self.text, self.streaming = text, False
        self.title = self._heading()
        self._body.update(self.text)

    def on_collapsible_expanded(self, event: Collapsible.Expanded) -> None:
        self._body.update(self.text)


class ToolBlock(Collapsible):
    """One tool call under the reply that made it: name, arguments, time and result, folded (Enter or a click
    unfolds the result)."""

    DEFAULT_CSS = """
    ToolBlock { border: none; padding: 0; margin: 0 0 0 2; background: transparent; height: auto; }
    ToolBlock CollapsibleTitle { color: $text-muted; padding: 0 1; }
    ToolBlock Contents { padding: 0 0 0 2; }
    ToolBlock .tool-result { color: $text-muted; }
    ToolBlock.-failed CollapsibleTitle { color: $error; }
    """

    #: characters of the arguments on the title line (the unfolded block shows them whole)
    SHOWN = 60

    def __init__(self, name: str, arguments: dict, *, call_id: str = "") -> None:
        self.call_id = call_id
        self.tool_name = name
        self.arguments = json.dumps(arguments, ensure_ascii=False)
        self.result = ""
        self.state = "running…"
        self._body = Static("", classes="tool-result", markup=False)
        super().__init__(self._body, title=self._heading(), collapsed=True, classes="tool")

    def _heading(self) -> str:
        args = self.arguments if len(self.arguments) <= self.SHOWN else self.arguments[: self.SHOWN - 1] + "…"
        return f"⚙ {self.tool_name} {args} · {self.state}"

    def finish(self, result: str, *, seconds: float = 0.0, error: bool = False, refused: str = "") -> None:
        self.result = result
        if refused:
            self.state = f"not run: {refused}"
        else:
            self.state = f"{'failed' if error else plural(len(result), 'character')} in {seconds:.2f} s"
        self.set_class(error or bool(refused), "-failed")
        self.title = self._heading()
        self._body.update(f"{self.arguments}\n\n{result}")

    def on_mount(self) -> None:
        self._body.update(f"{self.arguments}\n\n{self.result}" if self.result else self.arguments)


class MessageItem(MarkdownView):
    """One message: its role and stats on a title line, then its Markdown (streamed while generated).

    One widget per message: the chat log is laid out again on every update of a
    streamed reply, and that pass walks every widget of every message shown."""

    def __init__(self, role: str, content: str = "", *, info: str = "", streaming: bool = False,
                 message_index: int | None = None) -> None:
        self.role = role
        self.info = info
        #: where the message is in the conversation (tool steps between messages have no item of their own)
        self.message_index = message_index
        #: the thinking shown above this reply (a reasoning model's), if any
        self.thinking_view: ThinkingView | None = None
        super().__init__(content, title=self._header(), streaming=streaming, classes=f"message -{role}")

    @property
    def content(self) -> str:
        return self.text

    def _header(self) -> str:
        label = ROLE_LABELS.get(self.role, self.role)
        return f"{label}  [dim]{self.info}[/dim]" if self.info else label

    def write(self, text: str) -> None:
        self.append(text)

    def remove(self):
        """Remove the message and its thinking with it."""
        if self.thinking_view is not None:
            self.thinking_view.remove()
            self.thinking_view = None
        return super().remove()

    def finish(self, content: str, info: str = "") -> None:
        """End streaming and render the final text in full, so no last token is ever lost."""
        self.info = info
        self.title = self._header()
        self.update(content)


class ChatLog(VerticalScroll, can_focus=True):
    """Messages of the current conversation; one is selected for copy/edit."""

    BINDINGS = [a.binding() for a in MESSAGE_ACTIONS]

    selected: reactive[int] = reactive(-1, init=False)

    @dataclass
    class EditRequested(Message):
        index: int
        text: str

    @property
    def items(self) -> list[MessageItem]:
        return list(self.query(MessageItem))

    def watch_selected(self, old: int, new: int) -> None:
        items = self.items
        if 0 <= old < len(items):
            items[old].remove_class("-selected")
        if 0 <= new < len(items):
            items[new].add_class("-selected")
            self.scroll_to_widget(items[new], animate=False)

    def on_focus(self) -> None:
        if self.selected < 0 and self.items:
            self.selected = len(self.items) - 1

    def on_blur(self) -> None:
        self.selected = -1

    def action_select(self, step: int) -> None:
        items = self.items
        if items:
            self.selected = max(0, min(len(items) - 1, (self.selected if self.selected >= 0 else len(items)) + step))

    def _current(self) -> MessageItem | None:
        items = self.items
        return items[self.selected] if 0 <= self.selected < len(items) else None

    def action_copy_message(self) -> None:
        item = self._current()
        if item is not None:
            self.app.copy_to_clipboard(item.content)
            self.notify("Message copied to the clipboard")

    def action_copy_code(self) -> None:
        item = self._current()
        if item is None:
            return
        blocks = code_blocks(item.content)
        if not blocks:
            self.notify("This message has no code block", severity="warning")
            return
        self.app.copy_to_clipboard("\n\n".join(blocks))
        self.notify(f"Copied {len(blocks)} code block{'s' if len(blocks) > 1 else ''}")

    def action_edit_message(self) -> None:
        item = self._current()
        if item is None or item.role != "user":
            self.notify("Only your own messages can be edited", severity="warning")
            return
        self.post_message(self.EditRequested(self.index_of(item), item.content))

    def index_of(self, item: MessageItem) -> int:
        """Index of ``item`` among the conversation's messages (the log may show only the latest)."""
        if item.message_index is not None:
            return item.message_index
        return self.items.index(item) + self.hidden_count

    async def remove_from(self, index: int) -> None:
        """Remove the message at ``index`` of the conversation and everything shown after it."""
        start = next((i for i, child in enumerate(self.children)
                      if isinstance(child, MessageItem) and self.index_of(child) >= index), None)
        if start is not None:
            for child in list(self.children)[start:]:
                await child.remove()

    hidden_count = 0  # messages of the conversation not shown (older than the first item)


class PromptInput(TextArea):
    """Multi-line input: Enter sends, ctrl+j (or shift+enter where it arrives) adds a line."""

    BINDINGS = [a.binding() for a in INPUT_ACTIONS]

    @dataclass
    class Submitted(Message):
        text: str

    def __init__(self, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)

    async def _on_key(self, event: events.Key) -> None:
        # Keys bound here (send, newline; remappable through the keymap) are
        # not typed into the text: TextArea's own handler is skipped and the
        # key bubbles on to the bindings.
        active = self.screen.active_bindings.get(event.key)
        if active is not None and active.node is self and active.binding.action in ("send", "newline"):
            event.prevent_default()

    def action_send(self) -> None:
        text = self.text
        if text.strip():
            self.post_message(self.Submitted(text))

    def action_newline(self) -> None:
        start, end = self.selection
        self._replace_via_keyboard("\n", start, end)
