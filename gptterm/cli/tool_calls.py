"""The command line's part in tool calls: asking on the terminal, showing each call on stderr, --json.

A call that needs a yes is asked about on the terminal (the call in full, then
y / n / a for always in this conversation). Without a terminal — stdin or
stderr not one, or --json — nothing can ask, and such a call is refused with
one line (unless --approve NAME or --yes said yes before).
"""

from __future__ import annotations

import json
import os
import select
import sys
import threading
from typing import TYPE_CHECKING, Any

from gptterm.cli.io import note
from gptterm.session.turn import StepLimit, ToolEnded, ToolStarted

if TYPE_CHECKING:
    from gptterm.session import Session
    from gptterm.session.turn import Event, Turn
    from gptterm.tools.permissions import Answer, Ask
    from gptterm.types import Tool, ToolCall

#: characters of a call's arguments shown on its line (the approval question shows them whole)
SHOWN_ARGUMENTS = 200


def arguments_text(call: ToolCall, limit: int | None = SHOWN_ARGUMENTS) -> str:
    text = json.dumps(call.arguments, ensure_ascii=False)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def terminal_ask(stopped: threading.Event, *, json_output: bool = False) -> Ask | None:
    """Asks about a call on the terminal; None where nothing can ask (a pipe, --json)."""
    try:
        interactive = sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if json_output or not interactive:
        return None

    def ask(call: ToolCall, tool: Tool) -> Answer | None:
        if tool.name == "run_shell":
            shown = f"the model wants to run this command:\n    {call.arguments.get('command', '')}\n"
        else:
            shown = f"the model wants to call {tool.name} ({tool.source}) with {arguments_text(call, None)}\n"
        always = "" if tool.confirm_each else " / [a]lways in this conversation"
        sys.stderr.write(f"gptterm: {shown}gptterm: allow it? [y]es / [n]o{always}: ")
        sys.stderr.flush()
        line = _read_line(stopped)
        if line is None:
            return "no"
        answer = line.strip().lower()
        if answer in ("a", "always") and not tool.confirm_each:
            return "always"
        return "yes" if answer in ("y", "yes") else "no"

    return ask


def _read_line(stopped: threading.Event) -> str | None:
    """A line typed on the terminal; None once the turn is stopped (Ctrl+C) or the terminal is gone."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = b""
        while not stopped.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(fd, 1024)
            if not chunk:
                return None
            data += chunk
            if b"\n" in data:
                return data.split(b"\n", 1)[0].decode("utf-8", "replace")
        sys.stderr.write("\n")
        return None
    finally:
        os.close(fd)


def show(event: Event) -> None:
    """A tool step as one line on stderr."""
    if isinstance(event, ToolStarted):
        where = "" if event.tool is None else f" ({event.tool.source})"
        note(f"→ {event.call.name}{where} {arguments_text(event.call)}")
    elif isinstance(event, ToolEnded):
        result = event.result
        if event.refused:
            note(f"✗ {result.name} not run: {event.refused}")
        elif result.error:
            note(f"✗ {result.name} failed: {result.content.splitlines()[0] if result.content else ''}")
        else:
            cut = " (cut to fit the context)" if result.truncated else ""
            note(f"← {result.name}: {len(result.content):,} characters in {result.seconds:.2f} s{cut}")
    elif isinstance(event, StepLimit):
        note(f"stopped after {event.steps} tool steps (--max-steps): the model still wanted to call tools")


def say_failures(session: Session) -> None:
    """One line for each MCP server that did not start and each --approve that names no tool (once)."""
    for line in session.tools.new_failures():
        note(line)


def calls_json(turn: Turn) -> list[dict[str, Any]]:
    """The turn's calls for --json: name, arguments, result, whether it failed, seconds."""
    return [{"id": call.id, "name": call.name, "arguments": call.arguments, "result": result.content,
             "error": result.error, "truncated": result.truncated, "seconds": round(result.seconds, 4)}
            for call, result in turn.calls]
