"""The plain data of tool calling: a tool, a call the model made, the result it gets back.

Nothing heavy is imported here: the CLI, the session and the engine all pass
these around.
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import dataclass, field
from typing import Any

#: where a built-in tool comes from (MCP tools say ``mcp:NAME``)
BUILT_IN = "built-in"

_ID_CHARS = string.ascii_letters + string.digits


def new_call_id() -> str:
    """A call id of 9 letters and digits: Mistral's templates refuse any other shape, the others take anything."""
    return "".join(_ID_CHARS[b % len(_ID_CHARS)] for b in os.urandom(9))


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    #: JSON Schema of the arguments (an object schema)
    parameters: dict[str, Any]
    #: only reads (runs without asking): built-in readers, MCP tools annotated readOnlyHint
    read_only: bool = False
    #: "built-in" or "mcp:NAME"
    source: str = BUILT_IN
    #: asks before every call, even after "always" (run_shell: each command is shown and approved)
    confirm_each: bool = False

    def openai(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry (also what chat templates are given)."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    #: the call as the model wrote it
    raw: str = ""
    #: why the call could not be read (malformed JSON, not an object...): sent back to the model as the result
    error: str | None = None

    def openai(self) -> dict[str, Any]:
        """The OpenAI ``tool_calls`` entry of an assistant message (arguments as JSON text)."""
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)}}


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    name: str
    content: str
    error: bool = False
    seconds: float = 0.0
    #: the content was cut to the size limit (the content says so too)
    truncated: bool = False

    def message(self) -> dict[str, Any]:
        """The ``role: "tool"`` message that carries this result back to the model."""
        return {"role": "tool", "tool_call_id": self.call_id, "name": self.name, "content": self.content}


def assistant_message(content: str, calls: list[ToolCall]) -> dict[str, Any]:
    """The assistant message of a reply that called tools (OpenAI's shape, as the history stores it)."""
    return {"role": "assistant", "content": content, "tool_calls": [c.openai() for c in calls]}


def calls_of(message: dict[str, Any]) -> list[ToolCall]:
    """The calls of an OpenAI-shaped assistant message (arguments that are not a JSON object come back as
    ``{}`` with ``error`` set)."""
    out: list[ToolCall] = []
    for entry in message.get("tool_calls") or ():
        function = entry.get("function") or {}
        raw = function.get("arguments")
        call = ToolCall(str(entry.get("id") or new_call_id()), str(function.get("name") or ""),
                        raw=raw if isinstance(raw, str) else json.dumps(raw))
        if isinstance(raw, dict):
            call.arguments = raw
        else:
            try:
                value = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
            except ValueError as err:
                call.error = f"the arguments are not valid JSON ({err})"
            else:
                if isinstance(value, dict):
                    call.arguments = value
                else:
                    call.error = f"the arguments must be a JSON object, not {type(value).__name__}"
        out.append(call)
    return out
