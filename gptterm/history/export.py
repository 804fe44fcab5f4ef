"""Conversations as Markdown or JSON documents: the one export writer of every face."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from gptterm import atomic
from gptterm.errors import HistoryError

# The argument parsers import FORMATS on every start (--help included): the
# store (sqlite3), json and datetime are imported where they are used.
if TYPE_CHECKING:
    from gptterm.history.store import Conversation

ROLE_HEADINGS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool result"}
FORMATS = ("md", "json")


def _when(ts: float) -> str:
    import datetime as dt  # only an export needs it (this module is on --help's path, for FORMATS)

    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def to_markdown(conv: Conversation) -> str:
    lines = [f"# {conv.title or f'Conversation {conv.id}'}", ""]
    lines.append(f"*{conv.kind} · {conv.model or 'unknown model'} · {_when(conv.created_at)}*")
    lines.append("")
    if conv.system:
        lines += ["## System", "", conv.system, ""]
    for msg in conv.messages:
        heading = ROLE_HEADINGS.get(msg.role, msg.role.title())
        if msg.stats.get("finish_reason") == "cancelled":
            heading += " (stopped)"
        if msg.role == "tool":
            heading += f": {msg.tool_name}" + (" (failed)" if msg.tool_error else "")
        lines += [f"## {heading}", ""]
        if msg.thinking:  # folded where Markdown is drawn (GitHub, most viewers)
            lines += ["<details><summary>Thinking</summary>", "", msg.thinking, "", "</details>", ""]
        if msg.role == "tool":
            lines += ["```", msg.content, "```", ""]
        elif msg.content or not msg.tool_calls:
            lines += [msg.content, ""]
        for call in msg.tool_calls or ():
            function = call.get("function") or {}
            lines += [f"Calls `{function.get('name')}` with `{function.get('arguments')}`", ""]
    return "\n".join(lines).rstrip() + "\n"


def to_json(conv: Conversation) -> str:
    return json.dumps(conv.as_dict(), ensure_ascii=False, indent=2) + "\n"


def render(conv: Conversation, fmt: str) -> str:
    """The conversation as a ``fmt`` ("md" or "json") document."""
    return to_json(conv) if fmt == "json" else to_markdown(conv)


def write(conv: Conversation, fmt: str, path: str | Path) -> Path:
    """Write the conversation to ``path`` (whole or not at all); returns the path written."""
    path = Path(path).expanduser()
    try:
        atomic.write_text(path, render(conv, fmt))
    except OSError as err:
        raise HistoryError(f"cannot write {path}: {err.strerror or err}") from None
    return path
