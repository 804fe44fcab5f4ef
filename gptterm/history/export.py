"""Conversations as Markdown or JSON documents."""

from __future__ import annotations

import datetime as dt
import json

from gptterm.history.store import Conversation

ROLE_HEADINGS = {"system": "System", "user": "User", "assistant": "Assistant"}


def _when(ts: float) -> str:
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
        lines += [f"## {heading}", "", msg.content, ""]
    return "\n".join(lines).rstrip() + "\n"


def to_json(conv: Conversation) -> str:
    return json.dumps(conv.as_dict(), ensure_ascii=False, indent=2) + "\n"
