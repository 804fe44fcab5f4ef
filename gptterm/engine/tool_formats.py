"""How each model family writes a tool call: one parser per family, its markers and its grammar.

A model that calls a tool writes the call as text in its family's own shape:

- **Hermes / Qwen** (Qwen 2.5 and 3, SmolLM3, Hermes, and gptterm's fallback
  for templates without a tools section): ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``,
  one block per call;
- **Llama 3.x**: the whole reply is ``{"name": ..., "parameters": {...}}``,
  sometimes after ``<|python_tag|>``;
- **Mistral**: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}]``, or in the
  newer tokenizers ``[TOOL_CALLS]name[ARGS]{...}``;
- **Phi-4-mini**: ``<|tool_call|>{...} or [{...}]<|/tool_call|>``, and
  ``functools[{...}]`` as vLLM's parser reads it;
- **Gemma 3**: no call token at all (Google's function-calling guide has the
  model prompted for ``{"name": ..., "parameters": {...}}`` or a Python call
  list ``[f(a=1)]``), and replies wrapped in a ```` ```tool_code ```` fence.

Each format parses a finished reply into the answer text and its calls (a
malformed call becomes a ``ToolCall`` with ``error`` set, which the loop hands
back to the model), names its opening markers (the streamed text is held back
from the first one on) and builds a GBNF grammar whose root is a whole call,
opening marker included, with the arguments constrained to each tool's schema
(llama-cpp-python's converter, as ``gptterm.schema`` uses it).
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Iterable, Sequence

from gptterm import schema as schemas
from gptterm.errors import UsageError
from gptterm.types import Tool, ToolCall, new_call_id

#: tool arguments that the converter cannot turn into a grammar are decoded as any JSON object
ANY_OBJECT: dict[str, Any] = {"type": "object"}


# -- reading a call -------------------------------------------------------------------------


def _decode_arguments(value: Any) -> tuple[dict[str, Any], str | None]:
    """The arguments as a dict; some models write them as a JSON string, or leave them out (no arguments)."""
    if value is None:
        return {}, None
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as err:
            return {}, f"the arguments are a string that is not JSON ({err})"
    if not isinstance(value, dict):
        return {}, f"the arguments must be a JSON object, not {_json_kind(value)}"
    return value, None


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), "null" if value is None else type(value).__name__)


def call_from_object(value: Any, raw: str, keys: Sequence[str] = ("arguments", "parameters")) -> ToolCall:
    """A call from a decoded JSON value ``{"name": ..., "arguments": {...}}`` (or ``parameters``)."""
    if not isinstance(value, dict):
        return ToolCall(new_call_id(), "", raw=raw, error=f"a call must be a JSON object, not {_json_kind(value)}")
    if isinstance(value.get("function"), dict):  # {"type": "function", "function": {...}}, as some models echo it
        value = value["function"]
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        return ToolCall(new_call_id(), "", raw=raw, error='the call names no tool (no "name" string)')
    found = next((k for k in keys if k in value), None)
    arguments, error = _decode_arguments(value.get(found) if found else None)
    call_id = value.get("id") if isinstance(value.get("id"), str) and value.get("id") else new_call_id()
    return ToolCall(call_id, name.strip(), arguments, raw=raw, error=error)


def calls_from_json(text: str, keys: Sequence[str] = ("arguments", "parameters")) -> tuple[list[ToolCall], str]:
    """The calls in ``text`` (one JSON object, or an array of them), and what follows the JSON."""
    stripped = text.strip()
    if not stripped:
        return [ToolCall(new_call_id(), "", raw=text, error="the call is empty")], ""
    try:
        value, end = json.JSONDecoder().raw_decode(stripped)
    except ValueError as err:
        return [ToolCall(new_call_id(), _guess_name(stripped), raw=stripped,
                         error=f"the call is not valid JSON ({err.args[0] if err.args else err})")], ""
    raw, rest = stripped[:end], stripped[end:]
    if isinstance(value, list):
        if not value:
            return [ToolCall(new_call_id(), "", raw=raw, error="the call list is empty")], rest
        return [call_from_object(v, json.dumps(v, ensure_ascii=False), keys) for v in value], rest
    return [call_from_object(value, raw, keys)], rest


_NAME = re.compile(r'"name"\s*:\s*"([^"]+)"')


def _guess_name(text: str) -> str:
    """The tool a malformed call meant, when its name can still be read (shown with the error)."""
    m = _NAME.search(text)
    return m.group(1) if m else ""


def _python_value(node: ast.expr) -> Any:
    if isinstance(node, ast.Name) and node.id in ("true", "false", "null", "True", "False", "None"):
        return {"true": True, "True": True, "false": False, "False": False}.get(node.id)
    return ast.literal_eval(node)


def calls_from_python(text: str) -> list[ToolCall] | None:
    """Calls written as Python (``f(a=1)`` or ``[f(a=1), g(b="x")]``, Gemma's documented style); None when
    ``text`` is not Python calls at all. Only literals are read: nothing is evaluated."""
    source = text.strip()
    try:
        tree = ast.parse(source, mode="eval").body
    except SyntaxError:
        return None
    nodes = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
    if not nodes or not all(isinstance(n, ast.Call) for n in nodes):
        return None
    out: list[ToolCall] = []
    for node in nodes:
        assert isinstance(node, ast.Call)
        raw = ast.get_source_segment(source, node) or ""
        name = ast.unparse(node.func)
        if not re.fullmatch(r"[\w.-]+", name):
            out.append(ToolCall(new_call_id(), "", raw=raw, error=f"{name!r} is not a tool name"))
            continue
        if node.args:
            out.append(ToolCall(new_call_id(), name, raw=raw,
                                error="give every argument by name (name=value), not by position"))
            continue
        try:
            arguments = {str(k.arg): _python_value(k.value) for k in node.keywords if k.arg}
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            out.append(ToolCall(new_call_id(), name, raw=raw, error="an argument is not a literal value"))
            continue
        out.append(ToolCall(new_call_id(), name, arguments, raw=raw))
    return out


def _join(*parts: str) -> str:
    """Answer pieces around removed calls, joined without the blank lines the calls left."""
    kept = [p.strip() for p in parts if p.strip()]
    return "\n\n".join(kept)


# -- the grammar ----------------------------------------------------------------------------

_GRAMMAR_CACHE: dict[str, str] = {}


def _arguments_schema(tool: Tool) -> dict[str, Any]:
    """The tool's schema as the grammar enforces it: an object, with no properties beyond the named ones
    unless it says otherwise (a small model otherwise wanders into keys of its own)."""
    params = tool.parameters if isinstance(tool.parameters, dict) else {}
    shaped = dict(params)
    shaped.setdefault("type", "object")
    if shaped.get("type") != "object":
        return ANY_OBJECT
    if "properties" in shaped and "additionalProperties" not in shaped:
        shaped["additionalProperties"] = False
    try:
        schemas.grammar(shaped)
    except UsageError:
        return ANY_OBJECT
    return shaped


def call_schema(tools: Sequence[Tool], key: str, *, with_id: bool = False) -> dict[str, Any]:
    """The JSON Schema of one call to any of ``tools``: ``{"name": CONST, KEY: ARGS}``."""
    alternatives = []
    for tool in tools:
        properties: dict[str, Any] = {"name": {"const": tool.name}, key: _arguments_schema(tool)}
        if with_id:
            properties["id"] = {"type": "string"}
        alternatives.append({"type": "object", "properties": properties, "required": ["name", key],
                             "additionalProperties": False})
    return {"anyOf": alternatives}


def _rename(gbnf: str, names: dict[str, str]) -> str:
    """``gbnf`` with the rules named in ``names`` renamed, where defined and where used (never inside string
    literals or character classes, which may hold the same words)."""
    if not names:
        return gbnf
    word = re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
                      + r")(?![\w-])")
    out: list[str] = []
    i = start = 0
    while i < len(gbnf):
        if gbnf[i] in "\"[":
            out.append(word.sub(lambda m: names[m.group(1)], gbnf[start:i]))
            close = '"' if gbnf[i] == '"' else "]"
            j = i + 1
            while j < len(gbnf) and gbnf[j] != close:
                j += 2 if gbnf[j] == "\\" else 1
            out.append(gbnf[i:j + 1])
            i = start = j + 1
            continue
        i += 1
    out.append(word.sub(lambda m: names[m.group(1)], gbnf[start:]))
    return "".join(out)


def gbnf_literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def call_grammar(tools: Sequence[Tool], key: str, root: str, *, with_id: bool = False) -> str:
    """A grammar whose ``root`` is ``root`` (GBNF using ``gptterm-call`` for one call and ``gptterm-ws``
    for blank space) over the call schema of ``tools``."""
    cache_key = json.dumps([key, root, with_id, [t.openai() for t in tools]], sort_keys=True)
    hit = _GRAMMAR_CACHE.get(cache_key)
    if hit is not None:
        return hit
    body = _rename(schemas.grammar(call_schema(tools, key, with_id=with_id)), {"root": "gptterm-call"})
    gbnf = f"root ::= {root}\ngptterm-ws ::= [ \\t\\n]{{0,4}}\n{body}"
    if len(_GRAMMAR_CACHE) > 64:
        _GRAMMAR_CACHE.clear()
    _GRAMMAR_CACHE[cache_key] = gbnf
    return gbnf


# -- the families -----------------------------------------------------------------------------


def tools_json(tools: Sequence[Tool]) -> str:
    return "\n".join(json.dumps(t.openai(), ensure_ascii=False) for t in tools)


class CallFormat:
    """One family's way of writing calls. Subclasses set the markers and implement ``parse``."""

    name = "base"
    #: markers that open a call: the streamed answer is held back from the first one on
    openings: tuple[str, ...] = ()
    #: openings that count only at the very start of the answer (Llama 3 writes the JSON as the whole reply)
    anchored: tuple[str, ...] = ()
    #: markers that may be single special tokens, shown as text so that the parser sees them
    markers: tuple[str, ...] = ()
    #: the key of a call's arguments
    key = "arguments"

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        raise NotImplementedError

    def grammar(self, tools: Sequence[Tool]) -> str:
        """GBNF for a whole call block, from its opening marker on (the first of ``openings``)."""
        raise NotImplementedError

    def find_opening(self, before: str, text: str) -> int:
        """Where in ``text`` (which follows ``before`` in the answer) a call opens, or -1."""
        found = [p for p in (text.find(m) for m in self.openings if m not in self.anchored) if p >= 0]
        if not before.strip():
            for marker in self.anchored:
                lead = len(text) - len(text.lstrip())
                if text.startswith(marker, lead):
                    found.append(lead)
        return min(found) if found else -1

    def partial_opening(self, before: str, text: str) -> int:
        """How many characters at the end of ``text`` could be the start of an opening (held back)."""
        keep = 0
        for marker in self.openings:
            if marker in self.anchored:
                stripped = text.lstrip()
                if not before.strip() and stripped and marker.startswith(stripped):
                    keep = max(keep, len(text))
                continue
            # only a suffix that starts with the marker's first character can be its beginning
            at = text.find(marker[0], max(0, len(text) - len(marker) + 1))
            while at >= 0:
                if marker.startswith(text[at:]):
                    keep = max(keep, len(text) - at)
                    break
                at = text.find(marker[0], at + 1)
        return keep

    # -- rendering, for templates without a tools section -----------------------------------------

    def instructions(self, tools: Sequence[Tool]) -> str:
        """What the system prompt says about the tools when the model's template cannot."""
        return ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                "You are provided with function signatures within <tools></tools> XML tags:\n"
                f"<tools>\n{tools_json(tools)}\n</tools>\n\n"
                "For each function call, return a json object with function name and arguments within "
                "<tool_call></tool_call> XML tags:\n<tool_call>\n"
                '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>')

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        """The calls as this family writes them (put back into the history as the assistant's text)."""
        return "\n".join(f"<tool_call>\n{_call_json(c, self.key)}\n</tool_call>" for c in calls)

    def render_results(self, results: Sequence[dict[str, Any]]) -> str:
        """Tool results as the text of the user turn that carries them back."""
        return "\n".join(f"<tool_response>\n{m.get('content') or ''}\n</tool_response>" for m in results)


def _call_json(call: ToolCall, key: str) -> str:
    return json.dumps({"name": call.name, key: call.arguments}, ensure_ascii=False)


def _blocks(block: re.Pattern[str], text: str, *, flag_rest: bool,
            close: str = "") -> tuple[list[str], list[ToolCall]]:
    """The text around each marked call block, and the calls inside (``flag_rest``: text after a block's JSON
    makes its last call an error, unless it is the start of the closing marker: a reply cut by max_tokens)."""
    calls: list[ToolCall] = []
    pieces: list[str] = []
    last = 0
    for m in block.finditer(text):
        pieces.append(text[last:m.start()])
        last = m.end()
        found, rest = calls_from_json(m.group(1))
        calls += found
        if flag_rest and rest.strip() and not close.startswith(rest.strip()):
            calls[-1].error = calls[-1].error or f"text after the call's JSON: {rest.strip()[:40]!r}"
    pieces.append(text[last:])
    return pieces, calls


class Hermes(CallFormat):
    name = "hermes"
    openings = ("<tool_call>",)
    markers = ("<tool_call>", "</tool_call>")
    _BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        pieces, calls = _blocks(self._BLOCK, text, flag_rest=True, close="</tool_call>")
        return _join(*pieces), calls

    def grammar(self, tools: Sequence[Tool]) -> str:
        block = '"<tool_call>" gptterm-ws gptterm-call gptterm-ws "</tool_call>"'
        return call_grammar(tools, "arguments", f"{block} (gptterm-ws {block})*")


class Llama3(CallFormat):
    name = "llama3"
    openings = ('{"name"', '{ "name"', "<|python_tag|>")
    anchored = ('{"name"', '{ "name"')
    markers = ("<|python_tag|>",)
    key = "parameters"

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        stripped = text.strip()
        tagged = stripped.startswith("<|python_tag|>")
        head = ""
        if not tagged and "<|python_tag|>" in stripped:
            head, _, stripped = stripped.partition("<|python_tag|>")
            tagged = True
        else:
            stripped = stripped.removeprefix("<|python_tag|>")
        body = stripped.strip()
        if not tagged and not (body.startswith("{") and re.match(r'\{\s*"(name|type)"', body)):
            return text.strip(), []
        if not body.startswith(("{", "[")):
            return head.strip(), [ToolCall(new_call_id(), "", raw=body, error=(
                "the model wrote code after <|python_tag|>, not a JSON call {\"name\": ..., \"parameters\": ...}"))]
        calls: list[ToolCall] = []
        rest = body
        while rest.strip().startswith(("{", "[")):  # Llama 3.2 may separate several calls with ';'
            found, rest = calls_from_json(rest, ("parameters", "arguments"))
            calls += found
            if any(c.error for c in found):
                rest = ""
                break
            rest = rest.strip().removeprefix(";")
        return _join(head, rest), calls

    def grammar(self, tools: Sequence[Tool]) -> str:
        # the opening is the JSON itself: the grammar starts at '{' (or the tag)
        return call_grammar(tools, "parameters", '("<|python_tag|>" gptterm-ws)? gptterm-call')

    def instructions(self, tools: Sequence[Tool]) -> str:
        return ("You have access to the following functions. To call a function, respond with JSON for a function "
                'call in the format {"name": function name, "parameters": dictionary of argument name and its '
                'value}. Do not use variables.\n\n' + "\n\n".join(json.dumps(t.openai(), indent=4) for t in tools))

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        return "; ".join(_call_json(c, self.key) for c in calls)


class Mistral(CallFormat):
    name = "mistral"
    openings = ("[TOOL_CALLS]",)
    markers = ("[TOOL_CALLS]", "[ARGS]", "[CALL_ID]")

    def __init__(self, *, args_marker: bool = False, call_id: bool = False) -> None:
        #: the newer tokenizers' form: [TOOL_CALLS]name[ARGS]{...}
        self.args_marker = args_marker
        #: ... with the model's own id: [TOOL_CALLS]name[CALL_ID]a1B2c3D4e[ARGS]{...} (Mistral Small 3.2)
        self.call_id = call_id

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        head, marker, body = text.partition("[TOOL_CALLS]")
        if not marker:
            return text.strip(), []
        calls: list[ToolCall] = []
        rest = ""
        for chunk in body.split("[TOOL_CALLS]"):
            if "[ARGS]" not in chunk:
                found, rest = calls_from_json(chunk)
                calls += found
                continue
            name, _, args = chunk.partition("[ARGS]")
            name, _, given_id = name.partition("[CALL_ID]")
            name, given_id = name.strip(), given_id.strip()
            try:
                value, end = json.JSONDecoder().raw_decode(args.strip())
            except ValueError as err:
                calls.append(ToolCall(new_call_id(), name, raw=chunk.strip(),
                                      error=f"the arguments are not valid JSON ({err.args[0] if err.args else err})"))
                rest = ""
                continue
            arguments, error = _decode_arguments(value)
            rest = args.strip()[end:]
            calls.append(ToolCall(given_id or new_call_id(), name, arguments, raw=chunk.strip(),
                                  error=error or (None if name else "the call names no tool")))
        return _join(head, rest), calls

    def grammar(self, tools: Sequence[Tool]) -> str:
        if self.args_marker:
            call_id = ' ("[CALL_ID]" [a-zA-Z0-9]{9})?' if self.call_id else ""
            parts = " | ".join(
                f'{gbnf_literal(t.name)}{call_id} "[ARGS]" gptterm-args-{i}' for i, t in enumerate(tools))
            base = call_grammar(tools, "arguments", f'"[TOOL_CALLS]" ({parts}) ("[TOOL_CALLS]" ({parts}))*')
            extra = "\n".join(_args_rule(t, f"gptterm-args-{i}") for i, t in enumerate(tools))
            return base + "\n" + extra
        return call_grammar(tools, "arguments",
                            '"[TOOL_CALLS]" gptterm-ws "[" gptterm-ws gptterm-call ("," gptterm-ws gptterm-call)* '
                            'gptterm-ws "]"', with_id=True)

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        if self.args_marker:
            return "".join(f"[TOOL_CALLS]{c.name}[ARGS]{json.dumps(c.arguments, ensure_ascii=False)}" for c in calls)
        return "[TOOL_CALLS]" + json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls],
                                           ensure_ascii=False)


def _args_rule(tool: Tool, name: str) -> str:
    """One tool's argument object as a rule called ``name`` (its own rules prefixed to stay apart)."""
    gbnf = schemas.grammar(_arguments_schema(tool))
    rules = re.findall(r"^([\w-]+) ::=", gbnf, re.MULTILINE)
    return _rename(gbnf, {r: name if r == "root" else f"{name}-{r}" for r in rules})


class Phi4(CallFormat):
    name = "phi4"
    openings = ("<|tool_call|>", "functools[")
    markers = ("<|tool_call|>", "<|/tool_call|>")
    _BLOCK = re.compile(r"<\|tool_call\|>(.*?)(?:<\|/tool_call\|>|$)", re.DOTALL)

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        pieces, calls = _blocks(self._BLOCK, text, flag_rest=False)
        answer = "".join(pieces)
        head, marker, body = answer.partition("functools[")
        if marker:  # vLLM's reading of Phi-4-mini: functools[{...}, ...]
            found, rest = calls_from_json("[" + body)
            calls += found
            answer = head + rest
        return _join(answer), calls

    def grammar(self, tools: Sequence[Tool]) -> str:
        return call_grammar(tools, "arguments",
                            '"<|tool_call|>" gptterm-ws (gptterm-call | "[" gptterm-ws gptterm-call '
                            '("," gptterm-ws gptterm-call)* gptterm-ws "]") gptterm-ws "<|/tool_call|>"')

    def instructions(self, tools: Sequence[Tool]) -> str:
        return ("You are a helpful assistant with some tools.\n"
                + "".join(f"<|tool|>{json.dumps(t.openai()['function'], ensure_ascii=False)}<|/tool|>" for t in tools)
                + '\nTo use a tool, respond in this format: <|tool_call|>{"name": "foo", "arguments": {"a": 1}}'
                "<|/tool_call|>")

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        return "".join(f"<|tool_call|>{_call_json(c, self.key)}<|/tool_call|>" for c in calls)


class Gemma(CallFormat):
    name = "gemma"
    openings = ('{"name"', '{ "name"', "```tool_code", '```json\n{"name"')
    anchored = ('{"name"', '{ "name"', '```json\n{"name"')
    key = "parameters"
    _FENCE = re.compile(r"```(tool_code|json|python)?\s*\n(.*?)(?:```|$)", re.DOTALL)

    def parse(self, text: str) -> tuple[str, list[ToolCall]]:
        calls: list[ToolCall] = []
        pieces: list[str] = []
        last = 0
        for m in self._FENCE.finditer(text):
            inner = m.group(2)
            found = self._calls_in(inner, fenced_as=m.group(1))
            if found is None:
                continue
            pieces.append(text[last:m.start()])
            last = m.end()
            calls += found
        pieces.append(text[last:])
        answer = "".join(pieces)
        if not calls:
            found = self._calls_in(answer.strip(), fenced_as=None)
            if found:
                return "", found
        return _join(answer), calls

    def _calls_in(self, inner: str, *, fenced_as: str | None) -> list[ToolCall] | None:
        body = inner.strip()
        if re.match(r'\[?\s*\{\s*"name"', body):
            found, rest = calls_from_json(body, ("parameters", "arguments"))
            if rest.strip() and not any(c.error for c in found):
                found[-1].error = f"text after the call's JSON: {rest.strip()[:40]!r}"
            return found
        python = calls_from_python(body)
        if python is not None and (fenced_as == "tool_code" or fenced_as is None and body.startswith("[")):
            return python
        if fenced_as == "tool_code":
            return [ToolCall(new_call_id(), "", raw=body, error="the tool_code block holds no call like name(arg=value)")]
        return None

    def grammar(self, tools: Sequence[Tool]) -> str:
        return call_grammar(tools, "parameters", "gptterm-call")

    def instructions(self, tools: Sequence[Tool]) -> str:
        return ("You have access to functions. If you decide to invoke any of the function(s), you MUST put it in "
                'the format of {"name": function name, "parameters": dictionary of argument name and its value}\n\n'
                "You SHOULD NOT include any other text in the response if you call a function\n\n"
                + "\n".join(json.dumps(t.openai()["function"], ensure_ascii=False) for t in tools))

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        return "\n".join(_call_json(c, self.key) for c in calls)

    def render_results(self, results: Sequence[dict[str, Any]]) -> str:
        return "\n".join(f"```tool_output\n{m.get('content') or ''}\n```" for m in results)


HERMES = Hermes()
FORMATS: dict[str, CallFormat] = {f.name: f for f in (HERMES, Llama3(), Mistral(), Phi4(), Gemma())}


# -- which one a template speaks -----------------------------------------------------------------

_BLOCKS = re.compile(r"\{[%{](.*?)[%}]\}", re.DOTALL)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_TOOLS_NAME = re.compile(r"(?<![\w.])(tools|xml_tools|custom_tools)\b")
_TOOLS_KEY = re.compile(r"""\[\s*['"]tools['"]\s*\]|\.tools\b""")


def template_has_tools(template: str | None) -> bool:
    """Whether a chat template renders tool definitions itself: it uses a ``tools`` variable (Qwen, Llama 3,
    Mistral, SmolLM3's ``xml_tools``) or a message's ``tools`` field (Phi-4-mini's original template)."""
    if not template:
        return False
    for block in _BLOCKS.findall(template):
        if _TOOLS_KEY.search(block) or _TOOLS_NAME.search(_STRINGS.sub("''", block)):
            return True
    return False


def for_template(template: str | None) -> CallFormat:
    """The call format a chat template's family writes (Hermes for a template that shows none)."""
    text = template or ""
    if "[TOOL_CALLS]" in text:
        return Mistral(args_marker="[ARGS]" in text, call_id="[CALL_ID]" in text)
    if "<|tool_call|>" in text or "<|tool|>" in text:
        return FORMATS["phi4"]
    if "<tool_call>" in text:
        return HERMES
    if "<|python_tag|>" in text or "<|start_header_id|>" in text and template_has_tools(text):
        return FORMATS["llama3"]
    if "<start_of_turn>" in text:
        return FORMATS["gemma"]
    return HERMES


def marker_texts(fmt: CallFormat) -> Iterable[str]:
    return dict.fromkeys(fmt.markers + tuple(m for m in fmt.openings if m.startswith(("<", "["))))
