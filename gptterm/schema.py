"""JSON that matches a schema: reading a schema, compiling it to a llama.cpp grammar, checking a reply.

A schema is given as a JSON Schema file, JSON text, or the short form
``name, age int, bio: a short bio`` (fields separated by commas or new
lines; types str, int, float, bool; every field required). The local engine
constrains decoding with the grammar ``grammar()`` compiles (llama-cpp-python's
converter); a server is sent the schema as ``response_format``. Either way the
reply is checked with the ``jsonschema`` library before a face calls it done:
a reply that is not JSON matching the schema is a ``SchemaError``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from gptterm import textio
from gptterm.errors import SchemaError, UsageError

if TYPE_CHECKING:
    from gptterm.types import Reply

#: --json-object: any JSON object
ANY_OBJECT: dict[str, Any] = {"type": "object"}

# What llama-cpp-python's schema-to-grammar converter enforces (llama_cpp/llama_grammar.py, 0.3.36)...
ENFORCED = {"type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
            "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions", "pattern", "minLength",
            "maxLength", "format"}
# ...and what only describes (no constraint to enforce).
ANNOTATIONS = {"$schema", "$id", "$anchor", "$comment", "title", "description", "default", "examples", "deprecated",
               "readOnly", "writeOnly"}
GRAMMAR_FORMATS = {"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"}

_SHORT_TYPES = {"str": "string", "string": "string", "int": "integer", "integer": "integer", "float": "number",
                "number": "number", "bool": "boolean", "boolean": "boolean"}
_SHORT_FIELD = re.compile(r"^\s*([A-Za-z_][\w-]*)(?:\s+(\w+))?\s*(?::\s*(.*?))?\s*$")


def load(spec: str, *, base: Path | None = None) -> dict[str, Any]:
    """The schema ``spec`` names: a file (relative to ``base`` when given), JSON text, or the short form."""
    text = spec.strip()
    if not text:
        raise UsageError("the schema is empty: give a JSON Schema file, JSON text, or fields like 'name, age int'")
    path = Path(text).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if not text.startswith("{") and path.is_file():
        try:
            data = path.read_bytes()
        except OSError as err:
            raise UsageError(f"cannot read the schema file {path}: {err.strerror}") from None
        return _checked(_json(textio.decode(data, str(path)).text, str(path)), str(path))
    if text.startswith("{"):
        return _checked(_json(text, "the schema"), "the schema")
    if text.lower().endswith(".json") or text.startswith(("/", "./", "../", "~")):
        raise UsageError(f"schema file not found: {path}")
    return short_form(text)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise UsageError(f"{where} is not valid JSON: {err}") from None


def short_form(text: str) -> dict[str, Any]:
    """``name, age int, bio: a short bio`` as an object schema (every field required, no others)."""
    properties: dict[str, Any] = {}
    parts = text.splitlines() if "\n" in text.strip() else text.split(",")
    for part in parts:
        if not part.strip():
            continue
        m = _SHORT_FIELD.match(part)
        if m is None or (m[2] is not None and m[2].lower() not in _SHORT_TYPES):
            raise UsageError(f"cannot read schema field {part.strip()!r}: write 'name', 'name TYPE' or "
                             "'name TYPE: description' (types: str, int, float, bool), separated by commas")
        prop: dict[str, Any] = {"type": _SHORT_TYPES[(m[2] or "str").lower()]}
        if m[3]:
            prop["description"] = m[3]
        properties[m[1]] = prop
    if not properties:
        raise UsageError("the schema names no fields")
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _checked(schema: Any, where: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise UsageError(f"{where} must be a JSON object (a JSON Schema), not {type(schema).__name__}")
    from jsonschema import exceptions, validators  # heavy: jsonschema (only checking a schema pays for it)

    try:
        validators.validator_for(schema).check_schema(schema)
    except exceptions.SchemaError as err:
        at = "/".join(str(p) for p in err.absolute_path)
        raise UsageError(f"{where} is not a valid JSON Schema: {err.message}" + (f" (at /{at})" if at else "")) from None
    return schema


# -- the grammar ----------------------------------------------------------------------


def _subschemas(schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, subschema) for every subschema the converter visits."""
    for key in ("properties", "$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            yield f"{key}.{name}", sub
    for key in ("additionalProperties", "items"):
        value = schema.get(key)
        if isinstance(value, dict):
            yield key, value
    for key in ("prefixItems", "anyOf", "oneOf", "allOf", "items"):
        value = schema.get(key)
        if isinstance(value, list):
            for i, sub in enumerate(value):
                yield f"{key}[{i}]", sub


def unsupported(schema: dict[str, Any]) -> list[str]:
    """The keywords of ``schema`` the grammar cannot enforce (the reply is still checked against them)."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if key == "format" and value not in GRAMMAR_FORMATS:
                found.append(f"format {value}")
            elif key not in ENFORCED and key not in ANNOTATIONS:
                found.append(key)
        for _, sub in _subschemas(node):
            visit(sub)

    visit(schema)
    return list(dict.fromkeys(found))


def unsupported_note(schema: dict[str, Any]) -> str | None:
    """One line naming what the grammar leaves unenforced, or None."""
    missing = unsupported(schema)
    if not missing:
        return None
    return (f"the grammar cannot enforce {', '.join(missing)} (schema keywords llama.cpp's converter does not "
            "support); the reply is still checked against them")


_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def grammar(schema: dict[str, Any]) -> str:
    """The GBNF grammar of ``schema``; a UsageError naming what the converter refuses."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf  # heavy: llama_cpp (only a schema's grammar pays for it)

    try:
        gbnf = json_schema_to_gbnf(json.dumps(schema))
    except (ValueError, AssertionError, KeyError, TypeError, RecursionError) as err:
        raise UsageError(f"the schema cannot be turned into a grammar: {err}") from None
    # llama-cpp-python's converter lets a string hold any character but " and \ — raw newlines and control
    # characters too, which JSON forbids (the model wrote '"{\n    "' and the reply did not parse);
    # llama.cpp's own converter excludes them, as here
    return gbnf.replace(_LOOSE_CHAR, _JSON_CHAR)


# -- checking a reply ---------------------------------------------------------------------------

_FENCE = re.compile(r"^```[\w-]*\n(.*?)\n?```$", re.DOTALL)


def extract(text: str) -> tuple[Any, str]:
    """The JSON value in a reply and its text: the reply itself, the inside of a ```json fence, or the first
    JSON value in it (servers that ignore the schema tend to wrap it). ValueError when there is none."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced[1].strip()
    try:
        return json.loads(stripped), stripped
    except ValueError:
        pass
    starts = [i for i in (stripped.find("{"), stripped.find("[")) if i >= 0]
    if not starts:
        raise ValueError("no JSON value in it")
    value, end = json.JSONDecoder().raw_decode(stripped, min(starts))
    return value, stripped[min(starts):end]


def validate(text: str, schema: dict[str, Any], *, finish_reason: str | None = None,
             max_tokens: int | None = None) -> tuple[Any, str]:
    """The reply's JSON value and its text, if it matches ``schema``; else a SchemaError saying why."""
    why = ""
    if finish_reason == "length":
        why = f": it stopped at max_tokens ({max_tokens}) or a full context" if max_tokens else ": it was cut off"
    elif finish_reason == "cancelled":
        why = ": it was stopped"
    try:
        value, json_text = extract(text)
    except ValueError:
        raise SchemaError(f"the reply is not JSON{why}" if why else
                          f"the reply is not JSON (the model wrote {_preview(text)})") from None
    from jsonschema import exceptions, validators  # heavy: jsonschema (only checking a reply pays for it)

    cls = validators.validator_for(schema)
    error = exceptions.best_match(cls(schema).iter_errors(value))
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path)
        raise SchemaError(f"the reply does not match the schema: {error.message}" + (f" (at /{at})" if at else "")
                          + why)
    return value, json_text


def check_reply(reply: Reply, schema: dict[str, Any], max_tokens: int | None = None) -> tuple[Any, str]:
    """``validate`` for a finished reply."""
    return validate(reply.text, schema, finish_reason=reply.finish_reason, max_tokens=max_tokens)


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return repr(text[:60] + ("…" if len(text) > 60 else "")) if text else "nothing"
