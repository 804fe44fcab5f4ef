"""A reasoning model's <think> block: kept apart from the answer everywhere (CLI, --json, history, tasks),
shown only when asked for, switched through the template; old history databases keep working."""

from __future__ import annotations

import io
import json
import sqlite3
import sys

import pytest

from gptterm.cli import main
from gptterm.engine.thinking import ThinkSplitter, split, template_thinks
from gptterm.history.store import MIGRATIONS, HistoryStore
from tests.scripted import THINKING_TEMPLATE, make_thinking_gguf, script

THOUGHT = ["<th", "ink>\nThe user greets me.", " I should greet back.</th", "ink>\n\n", "Hello", " there."]


@pytest.fixture(scope="module")
def thinking_model(tmp_path_factory):
    return make_thinking_gguf(tmp_path_factory.mktemp("models") / "thinker.gguf")


@pytest.fixture
def thinks(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(b""))))
    return script(monkeypatch, (THOUGHT, "stop"))


def cli(capsys, model, *args: str) -> tuple[int, str, str]:
    code = main(["-m", str(model), "--ctx", "512", "--temperature", "0", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    return code, out, err


# -- the splitter ------------------------------------------------------------------------------------


def test_splitter_holds_back_only_what_could_be_a_tag():
    s = ThinkSplitter()
    pieces = []
    for piece in ["<", "think>a <b> c</", "thi", "nk>\n\nans", "wer </th", "at>"]:
        pieces += s.feed(piece)
    pieces += s.flush()
    thinking = "".join(t for k, t in pieces if k == "thinking")
    answer = "".join(t for k, t in pieces if k == "answer")
    assert thinking == "a <b> c" and answer == "answer </that>"


def test_a_template_that_opens_the_block_starts_inside_it():
    assert split("reasoning</think>\nanswer", inside=True) == ("reasoning", "answer")
    assert split("no thinking at all") == ("", "no thinking at all")
    assert template_thinks(THINKING_TEMPLATE) and not template_thinks("{{ messages }}")


# -- the CLI -------------------------------------------------------------------------------------------


def test_one_shot_leaves_the_thinking_out_and_history_keeps_it_apart(capsys, thinking_model, thinks):
    code, out, err = cli(capsys, thinking_model, "Hi!")
    assert code == 0
    assert out == "Hello there.\n"
    assert "greet" not in out + err
    stored = HistoryStore().latest().messages[-1]
    assert stored.role == "assistant" and stored.content == "Hello there."
    assert stored.thinking == "The user greets me. I should greet back."


def test_show_thinking_prints_it_before_the_answer(capsys, thinking_model, thinks):
    code, out, _ = cli(capsys, thinking_model, "--show-thinking", "--no-log", "Hi!")
    assert code == 0
    assert out == "<think>\nThe user greets me. I should greet back.\n</think>\n\nHello there.\n"


def test_json_has_the_thinking_in_its_own_field(capsys, thinking_model, thinks):
    code, out, _ = cli(capsys, thinking_model, "--json", "--no-log", "Hi!")
    data = json.loads(out)
    assert code == 0 and data["text"] == "Hello there."
    assert data["thinking"] == "The user greets me. I should greet back."


def test_the_thinking_setting_goes_through_the_template(capsys, thinking_model, thinks):
    cli(capsys, thinking_model, "--thinking", "off", "--no-log", "Hi!")
    cli(capsys, thinking_model, "--thinking", "on", "--no-log", "Hi!")
    off, on = thinks.prompts
    assert off.endswith("<think>\n\n</think>\n\n") and not on.endswith("</think>\n\n")


def test_summary_and_translation_never_take_the_thinking_for_the_answer(capsys, thinking_model, monkeypatch):
    s = script(monkeypatch, (["<think>I will write it short.</think>\n\n", "A short summary."], "stop"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(b"The cat sat on the mat."))))
    code, out, _ = cli(capsys, thinking_model, "summarize", "--json")
    data = json.loads(out)
    assert code == 0 and data["text"] == "A short summary." and "short." not in data["text"].replace("summary.", "")
    assert s.prompts[-1].endswith("</think>\n\n")  # tasks switch thinking off
    s.replies[:] = [(["<think>Cat is Katze.</think>", "Die Katze sitzt."], "stop")]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(b"The cat sits."))))
    code, out, _ = cli(capsys, thinking_model, "translate", "--to", "de", "--from", "en", "--json")
    assert code == 0 and json.loads(out)["text"].strip() == "Die Katze sitzt."


def test_think_and_no_think_switch_it_in_the_repl(thinking_model, monkeypatch, capsys):
    from gptterm.cli.args import parse
    from gptterm.cli.chat import Repl

    s = script(monkeypatch, (THOUGHT, "stop"))
    _, ns = parse(["chat", "-m", str(thinking_model), "--ctx", "512", "--no-log"])
    repl = Repl(ns)
    repl.command("/no_think")
    repl.send("Hi!")
    repl.command("/think")
    repl.send("Hi again!")
    out, err = capsys.readouterr()
    assert s.prompts[0].endswith("</think>\n\n") and not s.prompts[1].endswith("</think>\n\n")
    assert "greet" not in out and out.count("Hello there.") == 2


# -- history ---------------------------------------------------------------------------------------------


def test_a_database_from_before_thinking_is_upgraded_and_keeps_its_messages(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO conversations (id, title, created_at, updated_at) VALUES (1, 'old', 1, 1)")
    db.execute("INSERT INTO messages (conversation_id, role, content, created_at) VALUES (1, 'user', 'hi', 1)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    store = HistoryStore(path)
    conv = store.get(1)
    assert [m.content for m in conv.messages] == ["hi"] and conv.messages[0].thinking is None
    store.add_message(1, "assistant", "hello", thinking="a thought")
    assert store.get(1).messages[-1].thinking == "a thought"
