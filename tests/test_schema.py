"""Structured output: reading schemas, the grammar, checking replies, and --schema / --json-object through the CLI
(locally and through a real llama-cpp-python server)."""

from __future__ import annotations

import json

import pytest

from gptterm import schema as schemas
from gptterm.errors import SchemaError, UsageError
from gptterm.history.store import HistoryStore
from gptterm.settings import Params
from tests.conftest import run_cli
from tests.test_templates import one_line_error

PERSON = "name, age int"
TEXT = "John Smith is 42 years old and lives in Leeds."


def test_short_form_json_text_and_files(tmp_path):
    assert schemas.load("name, age int, bio: a short bio") == {
        "type": "object", "additionalProperties": False, "required": ["name", "age", "bio"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                       "bio": {"type": "string", "description": "a short bio"}}}
    assert schemas.load("a bool\nb float")["properties"] == {"a": {"type": "boolean"}, "b": {"type": "number"}}
    (tmp_path / "s.json").write_text('{"type": "array", "items": {"type": "string"}}')
    assert schemas.load(str(tmp_path / "s.json"))["type"] == "array"
    assert schemas.load("s.json", base=tmp_path)["type"] == "array"
    assert schemas.load('{"type": "object"}') == {"type": "object"}
    for bad, wanted in [("", "empty"), ("name, age integr", "cannot read schema field 'age integr'"),
                        ("{nope", "not valid JSON"), ('{"type": "thing"}', "not a valid JSON Schema"),
                        ("[1]", "schema field"), ("./missing.json", "schema file not found")]:
        with pytest.raises(UsageError, match=wanted):
            schemas.load(bad)


def test_unsupported_keywords_are_named():
    schema = {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 3},
                                               "e": {"type": "string", "format": "email"},
                                               "d": {"type": "string", "format": "date", "description": "x"}},
              "patternProperties": {"^x": {}}}
    assert schemas.unsupported(schema) == ["patternProperties", "multipleOf", "format email"]
    assert "multipleOf" in schemas.unsupported_note(schema)
    assert schemas.unsupported(schemas.load(PERSON)) == [] and schemas.unsupported_note(schemas.load(PERSON)) is None
    gbnf = schemas.grammar(schemas.load(PERSON))
    assert "root ::=" in gbnf
    # a JSON string holds no raw newline or control character (llama-cpp-python's converter allowed them)
    assert 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |' in gbnf


def test_validate_says_why():
    schema = schemas.load(PERSON)
    assert schemas.validate('{"name": "A", "age": 3}', schema) == ({"name": "A", "age": 3}, '{"name": "A", "age": 3}')
    assert schemas.validate('```json\n{"name": "A", "age": 3}\n```', schema)[0]["age"] == 3  # a fenced reply
    with pytest.raises(SchemaError, match="'age' is a required property"):
        schemas.validate('{"name": "A"}', schema)
    with pytest.raises(SchemaError, match=r"not of type 'integer' \(at /age\)"):
        schemas.validate('{"name": "A", "age": "3"}', schema)
    with pytest.raises(SchemaError, match=r"not JSON: it stopped at max_tokens \(5\)"):
        schemas.validate('{"name": "Jo', schema, finish_reason="length", max_tokens=5)
    with pytest.raises(SchemaError, match="the model wrote 'hello'"):
        schemas.validate("hello", schema)


def test_the_grammar_constrains_the_tiny_model(tiny_engine):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    params = Params().replace(temperature=0.0, max_tokens=40)
    plain = tiny_engine.chat([{"role": "user", "content": "hi"}], params)
    plain.drain()
    reply = tiny_engine.chat([{"role": "user", "content": "hi"}], params, schema=schema)
    reply.drain()
    assert reply.text != plain.text  # random weights write no JSON on their own
    value, _ = schemas.check_reply(reply, schema)
    assert value in ({"ok": True}, {"ok": False})


def test_a_reply_cut_by_max_tokens_exits_14_and_history_keeps_it(tiny_model):
    proc = run_cli("-m", str(tiny_model), "--schema", PERSON, "--max-tokens", "4", "--temperature", "0", "hi")
    line = one_line_error(proc, SchemaError.exit_code)
    assert "stopped at max_tokens (4)" in line and "kept in history" in line
    assert proc.stdout == ""  # a pipe never gets half an object
    conv = HistoryStore().latest()
    partial = conv.messages[-1]
    assert partial.role == "assistant" and partial.content.startswith("{") and partial.stats["finish_reason"] == "length"
    # --json: the reply and the reason, for machines, before the same exit
    proc = run_cli("-m", str(tiny_model), "--json-object", "--max-tokens", "3", "--json", "--no-log", "hi")
    assert proc.returncode == SchemaError.exit_code
    data = json.loads(proc.stdout)
    assert data["text"].startswith("{") and "not JSON" in data["error"]


def test_unusable_schemas_are_one_line_before_the_model_loads():
    assert "not valid JSON" in one_line_error(run_cli("-m", "/nonexistent.gguf", "--schema", "{x", "hi"), 2)
    line = one_line_error(run_cli("--schema", "a, b", "--json-object", "hi"), 2)
    assert "not allowed with argument" in line


def test_schema_on_the_bundled_model_validates(bundled_model, tmp_path):
    proc = run_cli("--schema", PERSON, "--temperature", "0", "--no-log", input=TEXT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"name": "John Smith", "age": 42}
    # a keyword the grammar cannot enforce is named; the reply is still checked against it
    schema = {"type": "object", "properties": {"age": {"type": "integer", "multipleOf": 2}}, "required": ["age"]}
    proc = run_cli("--schema", json.dumps(schema), "--temperature", "0", "--no-log", input=TEXT)
    assert proc.returncode == 0, proc.stderr
    assert "cannot enforce multipleOf" in proc.stderr and json.loads(proc.stdout)["age"] == 42
    gen = run_cli("generate", "--schema", PERSON, "--temperature", "0", "--no-log",
                  "The following JSON describes John Smith, aged 42: ")
    assert gen.returncode == 0, gen.stderr
    assert json.loads(gen.stdout) == {"name": "John Smith", "age": 42}  # the JSON only: no echoed prompt
    extract = run_cli("-t", "extract", "-V", "fields=name, age int", "--no-log", input=TEXT)
    assert extract.returncode == 0, extract.stderr
    assert json.loads(extract.stdout)["age"] == 42


def test_schema_through_a_real_server(llama_server):
    proc = run_cli("--server", llama_server, "--schema", PERSON, "--temperature", "0", "--no-log", input=TEXT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"name": "John Smith", "age": 42}
    gen = run_cli("generate", "--server", llama_server, "--schema", PERSON, "--temperature", "0", "--no-log",
                  "The following JSON describes John Smith, aged 42: ")
    assert gen.returncode == 0, gen.stderr
    assert json.loads(gen.stdout)["age"] == 42
    cut = run_cli("--server", llama_server, "--schema", PERSON, "--max-tokens", "3", "hi")
    assert "stopped at max_tokens (3)" in one_line_error(cut, SchemaError.exit_code)
    assert HistoryStore().latest().messages[-1].content.startswith("{")
