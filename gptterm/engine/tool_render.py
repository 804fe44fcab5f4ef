"""Tool definitions, calls and results, put into a local model's prompt.

A chat template with a tools section (``formats.template_has_tools``) gets
them as Hugging Face templates expect: ``tools=[{"type": "function", ...}]``,
assistant messages with ``tool_calls`` whose arguments are objects (Llama 3's
and Qwen's templates ``tojson`` them; a JSON string would be encoded twice),
and ``role: "tool"`` messages. Phi-4-mini's original template reads the tools
from the system message's ``tools`` field, Mistral's wants call ids of 9
letters and digits, Llama 3.2's one call per assistant message: each is given
what it wants.

A template without one (the bundled SmolLM2's, Gemma 3's) gets the fallback:
the family's instructions and the tool definitions in the system prompt, the
calls written back as the family writes them, and the results as a user turn
(``<tool_response>`` blocks; Gemma's ```` ```tool_output ```` fences) — roles
every template can render, alternating as Gemma's insists.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Sequence

from gptterm.types import Tool, calls_of
from gptterm.engine.tool_formats import CallFormat, template_has_tools


def has_tool_messages(messages: Sequence[Any]) -> bool:
    return any(m.get("role") == "tool" or m.get("tool_calls") for m in messages)


def _short_id(call_id: str) -> str:
    """A 9-character id of letters and digits standing for ``call_id`` (the same one each time)."""
    if len(call_id) == 9 and call_id.isalnum():
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()
    return digest[:9]


_TOOL_ROLE = re.compile(r"""['"](tool|ipython|tool_results)['"]""")


def native(messages: Sequence[Any], tools: Sequence[Tool], template: str,
           fmt: CallFormat) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(messages, extra template variables) for a template that renders tools itself. What it does not
    render (Phi-4-mini's original template shows neither calls nor results) is written in as text."""
    out: list[dict[str, Any]] = []
    nine = "length != 9" in template or "length == 9" in template
    single = "only supports single tool-calls" in template
    renders_calls = "tool_calls" in template
    renders_results = bool(_TOOL_ROLE.search(template))
    results: list[dict[str, Any]] = []
    for message in messages:
        m = dict(message)
        if m.get("role") == "tool" and not renders_results:
            results.append(m)
            continue
        if results:
            out.append({"role": "user", "content": fmt.render_results(results)})
            results = []
        if m.get("tool_calls") and not renders_calls:
            written = fmt.render_calls(calls_of(m))
            out.append({"role": "assistant", "content": f"{m.get('content') or ''}\n{written}".strip()})
            continue
        if m.get("tool_calls"):
            calls = []
            for call in calls_of(m):
                entry = {"id": _short_id(call.id) if nine else call.id, "type": "function",
                         "function": {"name": call.name, "arguments": call.arguments}}
                calls.append(entry)
            if m.get("content") is None:
                m["content"] = ""
            if single and len(calls) > 1:
                out += [{**m, "content": m["content"] if i == 0 else "", "tool_calls": [c]}
                        for i, c in enumerate(calls)]
                continue
            m["tool_calls"] = calls
        elif m.get("role") == "tool" and nine and m.get("tool_call_id"):
            m["tool_call_id"] = _short_id(str(m["tool_call_id"]))
        out.append(m)
    if results:
        out.append({"role": "user", "content": fmt.render_results(results)})
    values: dict[str, Any] = {}
    if tools:
        definitions = [t.openai() for t in tools]
        values = {"tools": definitions, "xml_tools": definitions}
        if "message['tools']" in template or 'message["tools"]' in template or "message.tools" in template:
            # Phi-4-mini's own template: the tools as JSON text in the system message
            listing = json.dumps([t.openai()["function"] for t in tools], ensure_ascii=False)
            if out and out[0].get("role") == "system":
                out[0] = {**out[0], "tools": listing}
            else:
                out.insert(0, {"role": "system", "content": "You are a helpful assistant with some tools.",
                               "tools": listing})
    return out, values


def fallback(messages: Sequence[Any], tools: Sequence[Tool], fmt: CallFormat) -> list[dict[str, Any]]:
    """Plain system/user/assistant messages carrying the tools, calls and results as text."""
    out: list[dict[str, Any]] = []
    if tools:
        block = fmt.instructions(tools)
        if messages and messages[0].get("role") == "system":
            first = messages[0]
            out.append({"role": "system", "content": f"{first.get('content') or ''}\n\n{block}".strip()})
            messages = messages[1:]
        else:
            out.append({"role": "system", "content": block})
    results: list[dict[str, Any]] = []

    def flush_results() -> None:
        if results:
            out.append({"role": "user", "content": fmt.render_results(results)})
            results.clear()

    for message in messages:
        role = message.get("role")
        if role == "tool":
            results.append(message)
            continue
        flush_results()
        if message.get("tool_calls"):
            written = fmt.render_calls(calls_of(dict(message)))
            content = message.get("content") or ""
            out.append({"role": "assistant", "content": f"{content}\n{written}".strip() if content else written})
        else:
            out.append({"role": str(role), "content": message.get("content") or ""})
    flush_results()
    return out


def bridged(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """``messages`` with an empty assistant turn where a tool's result is followed by the user's next message
    (a turn that was stopped, or ended at the step limit, before the model answered): templates that insist on
    alternating turns (Gemma 3's, Mistral's) would refuse the conversation from then on."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") == "user" and out and out[-1].get("role") == "tool":
            out.append({"role": "assistant", "content": ""})
        out.append(dict(message))
    return out


def prepare(messages: Sequence[Any], tools: Sequence[Tool], template: str,
            fmt: CallFormat) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """What to hand the model's template: messages and extra variables (``tools`` for a native one)."""
    messages = bridged(messages)
    if template_has_tools(template):
        return native(messages, tools, template, fmt)
    return fallback(messages, tools, fmt), {}
