"""The tool loop of the session core (gptterm/session/turn.py) in every face: the model's calls are run
(approved where they must be), their results go back to it, and the answer comes; the history keeps every
step and gives it back when a conversation is reopened."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from gptterm.engine.local import LocalEngine
from gptterm.history.store import HistoryStore
from gptterm.session.turn import StepLimit, ToolEnded, ToolStarted, ToolUse, turn
from gptterm.settings import Params
from gptterm.tasks.chat import ChatSession
from gptterm.tools.permissions import Approvals
from gptterm.tools.registry import build_toolbox
from tests.conftest import ROOT, run_cli
from tests.scripted import script

def pieces(text: str, size: int = 8) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


# what a model of the Hermes family writes to call a tool (the tiny model's template has no tools section:
# gptterm's fallback asks for this form), streamed in small pieces
CALL = pieces('<tool_call>\n{"name": "read_file", "arguments": {"path": "notes.txt"}}\n</tool_call>')
SHELL = pieces('<tool_call>\n{"name": "run_shell", "arguments": {"command": "echo hi"}}\n</tool_call>')
FIXTURE_SERVER = f"{sys.executable} {ROOT / 'tests' / 'fixtures' / 'mcp_server.py'}"


@pytest.fixture(scope="module")
def roomy_model(tmp_path_factory):
    """The tiny model with room for several tool steps (its tokens are bytes: a tool prompt is long)."""
    from tests.fixtures.tiny_gguf import make_tiny_gguf

    return make_tiny_gguf(tmp_path_factory.mktemp("roomy") / "tiny.gguf", context_length=4096)


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "notes.txt").write_text("The secret word is pineapple.\n")
    return tmp_path


def session_with(tiny_model, **params) -> tuple[ChatSession, LocalEngine]:
    engine = LocalEngine(tiny_model, ctx=4096, gpu_layers=0, threads=1)
    chat = ChatSession(engine, Params().replace(temperature=0.0, max_tokens=120, **params), store=HistoryStore())
    return chat, engine


def test_a_call_is_run_and_answered_and_the_history_keeps_every_step(roomy_model, folder, monkeypatch):
    said = script(monkeypatch, (CALL, "stop"), (["The secret word is pineapple."], "stop"))
    chat, engine = session_with(roomy_model)
    box = build_toolbox(["read_file"], allow=[folder])
    current = turn(chat, "What does notes.txt say?", tools=ToolUse(box, Approvals()))
    events = list(current.events())
    started = [e for e in events if isinstance(e, ToolStarted)]
    ended = [e for e in events if isinstance(e, ToolEnded)]
    assert [e.call.name for e in started] == ["read_file"] and started[0].call.arguments == {"path": "notes.txt"}
    assert "pineapple" in ended[0].result.content and not ended[0].result.error
    assert "pineapple" in said.prompts[1]  # the model was given the result at its second step
    assert current.reply is not None and current.reply.text == "The secret word is pineapple."
    assert len(current.replies) == 2
    conv = HistoryStore().get(chat.conversation_id)
    assert [m.role for m in conv.messages] == ["user", "assistant", "tool", "assistant"]
    assert conv.messages[1].tool_calls[0]["function"]["name"] == "read_file"
    assert conv.messages[2].tool_call_id == conv.messages[1].tool_calls[0]["id"]
    # reopened, the conversation is the same for the model: the next turn's prompt holds the earlier step
    again = ChatSession(engine, chat.params, store=HistoryStore(), conversation=conv)
    assert [m["role"] for m in again.messages] == ["user", "assistant", "tool", "assistant"]
    script(monkeypatch, (["Yes."], "stop"))
    follow = turn(again, "Are you sure?")
    list(follow.events())
    from gptterm.history.export import to_markdown

    text = to_markdown(HistoryStore().get(chat.conversation_id))
    assert "## Tool result: read_file" in text and "pineapple" in text and "Calls `read_file`" in text
    box.close()
    engine.close()


def test_the_step_limit_ends_a_turn_with_every_call_answered(roomy_model, folder, monkeypatch):
    script(monkeypatch, (CALL, "stop"))  # a model that never stops calling
    chat, engine = session_with(roomy_model)
    box = build_toolbox(["read_file"], allow=[folder])
    current = turn(chat, "Read it again and again.", tools=ToolUse(box, Approvals(), max_steps=2))
    events = list(current.events())
    [limit] = [e for e in events if isinstance(e, StepLimit)]
    assert limit.steps == 2
    roles = [m["role"] for m in chat.messages]
    # two rounds ran, the third round's calls got "not run" results, and the model answered without tools
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant", "tool", "assistant"]
    assert "limit of 2 tool steps" in chat.messages[-2]["content"] and "tool_calls" not in chat.messages[-1]
    assert len(current.replies) == 4
    box.close()
    engine.close()


def test_a_tool_that_asks_is_refused_where_nothing_can_ask(roomy_model, folder, monkeypatch):
    script(monkeypatch, (SHELL, "stop"), (["I could not run it."], "stop"))
    chat, engine = session_with(roomy_model)
    box = build_toolbox(["run_shell"], allow=[folder])
    current = turn(chat, "Say hi in the shell.", tools=ToolUse(box, Approvals(), ask=None))
    ended = [e for e in current.events() if isinstance(e, ToolEnded)]
    assert ended[0].refused.startswith("run_shell needs approval and there is no terminal")
    assert ended[0].result.error and "--approve run_shell" in ended[0].result.content
    asked = []
    script(monkeypatch, (SHELL, "stop"), (["It said hi."], "stop"))
    current = turn(chat, "Again.", tools=ToolUse(box, Approvals(), ask=lambda call, tool: asked.append(call) or "yes"))
    ended = [e for e in current.events() if isinstance(e, ToolEnded)]
    assert [c.arguments["command"] for c in asked] == ["echo hi"]  # shown in full, asked about
    assert not ended[0].result.error and "hi" in ended[0].result.content
    box.close()
    engine.close()


def test_the_bundled_model_calls_a_tool_forced_by_the_grammar_and_answers(bundled_model, folder):
    proc = run_cli("-T", "read_file", "--tool-choice", "read_file", "--allow", str(folder), "--max-tokens", "40",
                   "--temperature", "0", "--json", "Read the file notes.txt and tell me the secret word.")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["steps"] == 2 and data["tool_calls"][0]["name"] == "read_file"
    assert isinstance(data["tool_calls"][0]["arguments"]["path"], str)  # valid arguments for the tool's schema
    assert data["finish_reason"] in ("stop", "length") and data["completion_tokens"] > 0
    assert "→ read_file" in proc.stderr
    shown = run_cli("history", "show", "--json", str(data["conversation_id"]))
    assert [m["role"] for m in json.loads(shown.stdout)["messages"]] == ["user", "assistant", "tool", "assistant"]


def test_a_tool_that_is_not_read_only_is_refused_in_a_pipe_unless_approved(bundled_model, folder):
    args = ["--mcp", FIXTURE_SERVER, "--tool-choice", "add", "--max-tokens", "40", "--temperature", "0", "--json",
            "--no-log", "Add 2 and 3 with the add tool."]
    refused = run_cli(*args, input="")
    assert refused.returncode == 0, refused.stderr
    call = json.loads(refused.stdout)["tool_calls"][0]
    assert call["name"] == "add" and call["error"]
    assert "add needs approval and there is no terminal to ask: give --approve add" in refused.stderr
    approved = run_cli(*args, "--approve", "add", "--approve", "ad", input="")
    call = json.loads(approved.stdout)["tool_calls"][0]
    assert not call["error"] and call["result"].strip().isdigit()
    assert "--approve ad: no tool of that name is offered" in approved.stderr  # a misspelling is said
    assert "--approve add:" not in approved.stderr


def test_tools_through_a_real_server(llama_server, folder):
    proc = run_cli("--server", llama_server, "-T", "read_file", "--tool-choice", "read_file", "--allow", str(folder),
                   "--max-tokens", "30", "--temperature", "0", "--json", "--no-log",
                   "Read the file notes.txt and tell me the secret word.")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["tool_calls"] and data["tool_calls"][0]["name"] == "read_file" and data["steps"] == 2


def test_a_stopped_turn_answers_every_call_and_the_conversation_goes_on(roomy_model, folder, monkeypatch):
    two = pieces("".join(CALL) * 2)  # two calls in one step
    script(monkeypatch, (two, "stop"), (["Yes."], "stop"))
    chat, engine = session_with(roomy_model)
    box = build_toolbox(["read_file"], allow=[folder])
    use = ToolUse(box, Approvals())
    current = turn(chat, "Read it twice.", tools=use)
    for event in current.events():
        if isinstance(event, ToolEnded):
            current.cancel()  # Esc after the first call
    assert [m["role"] for m in chat.messages] == ["user", "assistant", "tool", "tool"]
    assert chat.messages[-1]["content"] == "stopped"
    list(turn(chat, "And now?").events())  # the next message renders: an empty turn bridges tool and user
    assert chat.messages[-1] == {"role": "assistant", "content": "Yes."}
    box.close()
    engine.close()


def test_a_reply_that_cannot_start_leaves_no_message_behind(roomy_model, folder):
    chat, engine = session_with(roomy_model, tool_choice="list_dir")
    box = build_toolbox(["read_file"], allow=[folder])
    with pytest.raises(Exception, match="tool_choice names 'list_dir'"):
        turn(chat, "hello", tools=ToolUse(box, Approvals()))
    assert chat.messages == [] and chat.conversation_id is None
    chat.params = chat.params.replace(tool_choice="auto")
    with pytest.raises(Exception, match="cannot both match a schema and call tools"):  # the engine refuses it
        turn(chat, "hello", schema={"type": "object"}, tools=ToolUse(box, Approvals()))
    assert chat.messages == []
    assert [m.role for m in HistoryStore().get(chat.conversation_id).messages] == []
    box.close()
    engine.close()


def test_gptterm_tools_lists_built_ins_and_mcp_tools_and_says_which_server_failed(isolated_dirs):
    (isolated_dirs["config"]).mkdir(parents=True, exist_ok=True)
    (isolated_dirs["config"] / "config.toml").write_text(
        f'[mcp.fixture]\ncommand = "{sys.executable}"\nargs = ["{ROOT / "tests" / "fixtures" / "mcp_server.py"}"]\n'
        f'[mcp.dead]\ncommand = "{sys.executable}"\nargs = ["{ROOT / "tests" / "fixtures" / "mcp_server.py"}", '
        '"exit"]\n')
    proc = run_cli("tools", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    names = {t["name"]: t for t in data["tools"]}
    assert {"read_file", "list_dir", "search_docs", "run_shell", "fetch_url", "add", "echo"} <= set(names)
    assert names["echo"]["read_only"] and not names["add"]["read_only"] and names["add"]["source"] == "mcp:fixture"
    assert any(line.startswith("mcp.dead") for line in data["failures"])
    plain = run_cli("tools")
    assert "add  (mcp:fixture; asks first)" in plain.stdout and "- a (integer)" in plain.stdout
    assert "mcp.dead" in plain.stderr and "Traceback" not in plain.stderr


def test_unknown_tools_are_one_line(tiny_model):
    proc = run_cli("-m", str(tiny_model), "-T", "read_fiel", "hello")
    assert proc.returncode == 2 and "unknown tool 'read_fiel'" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("chat", "-m", str(tiny_model), input="/set tools nope\n")
    assert "unknown tool 'nope'" in proc.stderr and proc.returncode == 0


def test_the_tui_shows_each_call_as_a_block_and_asks_before_a_command(roomy_model, folder, monkeypatch):
    from gptterm.tui.screens import ToolApproval
    from gptterm.tui.widgets.chat import ToolBlock
    from tests.tui_helpers import make_app, running

    monkeypatch.chdir(folder)
    script(monkeypatch, (CALL, "stop"), (["The secret word is pineapple."], "stop"),
           (SHELL, "stop"), (["It said hi."], "stop"))

    async def run():
        app = make_app(model=str(roomy_model), ctx=4096, threads=1, max_tokens=120, tools=("read_file", "run_shell"))
        async with running(app) as t:
            await t.ready()
            answer = await t.reply("What does notes.txt say?")
            assert answer == "The secret word is pineapple."
            [block] = t.app.query(ToolBlock)
            assert "read_file" in str(block.title) and "pineapple" in block.result
            await t.send("Say hi in the shell.")
            await t.wait_for(lambda: isinstance(t.app.screen, ToolApproval), what="the approval dialog")
            assert "echo hi" in str(t.app.screen.query_one("#tool-call-text").render())
            await t.pilot.press("y")
            await t.wait_for(lambda: len(t.app.query(ToolBlock)) == 2 and t.app.busy is None, what="the command")
            assert "hi" in t.app.query(ToolBlock)[-1].result
            cid = t.chat.session.conversation_id
            await t.chat.open_conversation(cid)  # reopened: the blocks come back from the history
            await t.pilot.pause()
            assert len(t.app.query(ToolBlock)) == 2
    asyncio.run(run())


def test_esc_during_a_tool_in_the_tui_stops_the_turn(roomy_model, folder, monkeypatch):
    from gptterm.tui.widgets.chat import ToolBlock
    from tests.tui_helpers import make_app, running

    monkeypatch.chdir(folder)
    slow = pieces('<tool_call>\n{"name": "run_shell", "arguments": {"command": "sleep 20"}}\n</tool_call>')
    said = script(monkeypatch, (slow, "stop"), (["Done."], "stop"))

    async def run():
        app = make_app(model=str(roomy_model), ctx=4096, threads=1, max_tokens=120, tools=("run_shell",))
        app.session.tools.settings.yes = True
        async with running(app) as t:
            await t.ready()
            await t.send("Wait a while in the shell.")
            await t.wait_for(lambda: t.app.query(ToolBlock), what="the call shown while it runs")
            assert "running" in str(t.app.query_one(ToolBlock).title)
            await t.pilot.press("escape")
            await t.wait_for(lambda: t.app.busy is None, timeout=10, what="the stop")
            assert len(said.prompts) == 1  # no step after the stopped tool
            assert "stopped" in str(t.app.query_one(ToolBlock).title) or t.app.query_one(ToolBlock).result
    asyncio.run(run())
