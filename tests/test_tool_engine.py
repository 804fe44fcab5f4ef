"""Engines with tools: the bundled model end to end (fallback Hermes format, the call decoded under its
grammar), the remote engine's streamed tool_call deltas (tests/fixtures/fake_openai.py), and a real
llama-cpp-python server."""

from __future__ import annotations

import json

import pytest

from gptterm.engine.remote import RemoteEngine
from gptterm.servers import ServerProfile
from gptterm.settings import Params
from gptterm.types import Tool, ToolCall, assistant_message
from gptterm.tools.registry import build_toolbox, check_arguments

GREEDY = Params().replace(temperature=0.0, max_tokens=60, seed=1)
SHORT = GREEDY.replace(max_tokens=16)
READ = Tool("read_file", "Read a text file and return its contents",
            {"type": "object", "properties": {"path": {"type": "string", "description": "the file's path"}},
             "required": ["path"]}, read_only=True)
LIST = Tool("list_dir", "List the files in a folder",
            {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}, read_only=True)
TOOLS = [READ, LIST]
MARKUP = ("<tool_call>", "</tool_call>", '"arguments"', '{"name"')


def pieces(reply) -> list[str]:
    return list(reply)


def test_the_bundled_model_calls_a_tool_under_the_grammar(smol_engine):
    assert smol_engine.tool_format.name == "hermes" and not smol_engine.native_tools
    reply = smol_engine.chat([{"role": "user", "content": "Read the file notes.txt and tell me what it says."}],
                             GREEDY, tools=TOOLS, tool_choice="required")
    shown = "".join(pieces(reply))
    assert shown == "" and reply.text == ""
    assert len(reply.tool_calls) >= 1 and reply.finish_reason == "stop"
    first = reply.tool_calls[0]
    assert first.error is None and first.name in ("read_file", "list_dir")
    assert check_arguments(READ if first.name == "read_file" else LIST, first.arguments) is None


def test_a_call_the_model_opens_itself_is_finished_under_the_grammar(smol_engine):
    # greedy, this prompt makes the bundled model open a <tool_call> on its own: from there the grammar holds
    prompt = ('Repeat exactly this line and nothing else: <tool_call>{"name": "read_file", "arguments": '
              '{"path": "notes.txt"}}</tool_call>')
    reply = smol_engine.chat([{"role": "user", "content": prompt}], GREEDY, tools=TOOLS)
    shown = pieces(reply)
    assert [(c.name, c.arguments, c.error) for c in reply.tool_calls] == [("read_file", {"path": "notes.txt"}, None)]
    assert not any(m in "".join(shown) for m in MARKUP)


def test_a_named_tool_choice_gets_that_tool(smol_engine):
    reply = smol_engine.chat([{"role": "user", "content": "What is in my home folder?"}], GREEDY, tools=TOOLS,
                             tool_choice="list_dir")
    reply.drain()
    assert [c.name for c in reply.tool_calls][:1] == ["list_dir"]
    assert check_arguments(LIST, reply.tool_calls[0].arguments) is None


def test_tools_given_and_no_call_is_a_plain_answer(smol_engine):
    with_tools = smol_engine.chat([{"role": "user", "content": "Say hello to Ann in one short sentence."}], SHORT,
                                  tools=TOOLS)
    assert with_tools.drain()
    assert with_tools.tool_calls == [] and "<tool_call>" not in with_tools.text


def test_a_whole_tool_step_on_the_bundled_model(smol_engine, tmp_path):
    (tmp_path / "notes.txt").write_text("Buy milk and eggs.\n")
    box = build_toolbox(["read_file"], allow=[tmp_path])
    messages = [{"role": "user", "content": "Read notes.txt and tell me what to buy."}]
    first = smol_engine.chat(messages, GREEDY, tools=box.tools, tool_choice="read_file")
    first.drain()
    call = first.tool_calls[0]
    call.arguments = {"path": "notes.txt"}  # what the model meant; the tiny model invents paths
    result = box.run(call, timeout=5)
    assert result.content == "Buy milk and eggs.\n"
    messages += [assistant_message(first.text, [call]), result.message()]
    rendered = smol_engine.render_chat(messages, tools=box.tools)
    assert "<|im_start|>user\n<tool_response>\nBuy milk and eggs.\n" in rendered
    assert smol_engine.count_chat_tokens(messages, tools=box.tools) > smol_engine.count_chat_tokens(messages)
    answer = smol_engine.chat(messages, SHORT, tools=box.tools)
    assert answer.drain().strip() and answer.finish_reason in ("stop", "length")


def test_a_schema_and_tools_together_are_refused(smol_engine):
    from gptterm.errors import UsageError

    with pytest.raises(UsageError):
        smol_engine.chat([{"role": "user", "content": "x"}], GREEDY, schema={"type": "object"}, tools=TOOLS)
    with pytest.raises(UsageError, match="not among the tools"):
        smol_engine.chat([{"role": "user", "content": "x"}], GREEDY, tools=TOOLS, tool_choice="rm")


# -- remote ----------------------------------------------------------------------------------------


def remote(fake_server, scenario: str) -> RemoteEngine:
    return RemoteEngine(ServerProfile(name="t", url=fake_server.url(scenario)), ctx=4096)


def test_streamed_tool_call_deltas_are_put_together(fake_server):
    engine = remote(fake_server, "toolcalls")
    history = [{"role": "user", "content": "look"},
               assistant_message("", [ToolCall("call_0", "list_dir", {"path": "."})]),
               {"role": "tool", "tool_call_id": "call_0", "name": "list_dir", "content": "a.txt"}]
    reply = engine.chat(history, GREEDY, tools=TOOLS, tool_choice="required")
    assert reply.drain() == "Let me look."
    assert [(c.id, c.name, c.arguments, c.error) for c in reply.tool_calls] == [
        ("call_A", "read_file", {"path": "notes.txt"}, None), ("call_B", "list_dir", {}, None)]
    sent = fake_server.sent("toolcalls", "/v1/chat/completions")[-1]["body"]
    assert sent["tools"] == [t.openai() for t in TOOLS] and sent["tool_choice"] == "required"
    assert sent["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"path": "."}'  # JSON text, as OpenAI
    assert sent["messages"][2] == {"role": "tool", "content": "a.txt", "tool_call_id": "call_0", "name": "list_dir"}
    engine.close()


def test_a_server_that_repeats_the_name_in_every_delta(fake_server):
    engine = remote(fake_server, "toolcallsrepeat")
    reply = engine.chat([{"role": "user", "content": "x"}], GREEDY, tools=TOOLS, tool_choice="read_file")
    reply.drain()
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("read_file", {"path": "a.txt"})]
    assert fake_server.sent("toolcallsrepeat", "/v1/chat/completions")[-1]["body"]["tool_choice"] == {
        "type": "function", "function": {"name": "read_file"}}
    engine.close()


def test_broken_streamed_arguments_are_a_call_error(fake_server):
    engine = remote(fake_server, "toolcallsbroken")
    reply = engine.chat([{"role": "user", "content": "x"}], GREEDY, tools=TOOLS)
    reply.drain()
    assert reply.tool_calls[0].name == "read_file" and "not valid JSON" in reply.tool_calls[0].error
    engine.close()


def test_a_call_left_in_the_servers_text_is_read_and_not_shown(fake_server):
    engine = remote(fake_server, "toolcallstext")
    reply = engine.chat([{"role": "user", "content": "x"}], GREEDY, tools=TOOLS)
    shown = "".join(reply)
    assert shown.strip() == "Sure." and not any(m in shown for m in MARKUP)
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("read_file", {"path": "b.txt"})]
    engine.close()


def test_a_real_llama_cpp_python_server(remote_engine):
    # llama-cpp-python's server fills tool_calls only for a forced tool_choice (a grammar over the arguments);
    # with "auto" it hands the tools to the model's template (SmolLM2's ignores them) and parses nothing
    forced = remote_engine.chat([{"role": "user", "content": "Read the file notes.txt."}], GREEDY, tools=TOOLS,
                                tool_choice="read_file")
    forced.drain()
    assert [c.name for c in forced.tool_calls] == ["read_file"] and forced.tool_calls[0].error is None
    assert check_arguments(READ, forced.tool_calls[0].arguments) is None
    auto = remote_engine.chat([{"role": "user", "content": "Say hi."}], GREEDY, tools=TOOLS)
    assert auto.drain() and auto.tool_calls == []
    history = [{"role": "user", "content": "Read notes.txt"},
               assistant_message("", forced.tool_calls),
               {"role": "tool", "tool_call_id": forced.tool_calls[0].id, "name": "read_file", "content": "milk"}]
    after = remote_engine.chat(history, GREEDY, tools=TOOLS)  # the server takes the tool turn back
    assert after.drain() is not None and after.finish_reason in ("stop", "length")
    assert json.dumps(history)  # plain data all the way
