"""`gptterm ask` and `gptterm docs`: answers with sources, not-found, stdin, collections, the context budget."""

from __future__ import annotations

import json

import pytest

from gptterm.history.store import HistoryStore
from tests.conftest import run_cli
from tests.test_docs import make_corpus


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    return proc


def test_sources_without_the_model(tmp_path, tiny_model):
    lines = make_corpus(tmp_path / "corpus")
    proc = ok(run_cli("ask", str(tmp_path / "corpus"), "What is the access code for the north door?",
                      "--sources", "--json", "-k", "2", "-m", "/nonexistent.gguf"))  # no model is loaded
    data = json.loads(proc.stdout)
    first = data["sources"][0]
    assert first["path"].endswith("notes/office.txt") and first["start_line"] <= lines["notes/office.txt"] <= \
        first["end_line"] and "4417" in first["text"] and len(data["sources"]) <= 2
    plain = ok(run_cli("ask", str(tmp_path / "corpus"), "north door access code", "--sources"))
    assert plain.stdout.startswith("[1] ") and "4417" in plain.stdout


def test_answer_cites_sources_and_is_stored(tmp_path, tiny_model):
    make_corpus(tmp_path / "corpus")
    proc = ok(run_cli("ask", str(tmp_path / "corpus"), "What is the access code for the north door?",
                      "-m", str(tiny_model), "--max-tokens", "8", "--temperature", "0"))
    body, _, sources = proc.stdout.partition("\nSources:\n")
    assert body.strip() and sources.startswith("[1] ") and "notes/office.txt:" in sources
    conv = HistoryStore().latest(kinds=("ask",))
    assert conv.kind == "ask" and conv.messages[0].content == "What is the access code for the north door?"
    assert "Sources:" in conv.messages[1].content
    data = json.loads(ok(run_cli("ask", str(tmp_path / "corpus"), "When do the tomato seedlings go out?", "--json",
                                 "-m", str(tiny_model), "--max-tokens", "4", "--no-log")).stdout)
    assert data["found"] and data["sources"][0]["path"].endswith("garden.md") and data["completion_tokens"] <= 4


def test_a_question_the_documents_cannot_answer(tmp_path, tiny_model):
    make_corpus(tmp_path / "corpus")
    proc = ok(run_cli("ask", str(tmp_path / "corpus"), "What is the capital of Peru?", "-m", str(tiny_model)))
    assert proc.stdout.strip() == "The documents do not seem to contain the answer to this question."
    data = json.loads(ok(run_cli("ask", str(tmp_path / "corpus"), "Who painted the Mona Lisa?", "--json",
                                 "-m", str(tiny_model))).stdout)
    assert data["found"] is False and data["answer"] is None


def test_stdin_is_a_document(tiny_model):
    text = "Reset the router by holding the red button for ten seconds.\n\nThe warranty lasts two years.\n"
    data = json.loads(ok(run_cli("ask", "How do I reset the router?", "--sources", "--json", input=text)).stdout)
    assert data["sources"][0]["path"] == "stdin" and "red button" in data["sources"][0]["text"]


def test_collections(tmp_path, tiny_model):
    make_corpus(tmp_path / "corpus")
    ok(run_cli("docs", "add", "work", str(tmp_path / "corpus")))
    listing = ok(run_cli("docs")).stdout
    assert listing.startswith("work\t4 files")
    assert "office.txt" in ok(run_cli("docs", "show", "work")).stdout
    data = json.loads(ok(run_cli("ask", "@work", "north door code", "--sources", "--json")).stdout)
    assert data["sources"][0]["path"].endswith("office.txt")
    (tmp_path / "corpus" / "notes" / "office.txt").write_text("The north door code changed to 5521.\n")
    assert "1 files read again" in ok(run_cli("docs", "update", "work")).stdout
    assert "5521" in json.loads(ok(run_cli("ask", "@work", "north door code", "--sources", "--json")).stdout)[
        "sources"][0]["text"]
    ok(run_cli("docs", "rm", "work"))
    missing = run_cli("ask", "@work", "anything")
    assert missing.returncode == 13 and "no collection named 'work'" in missing.stderr


@pytest.mark.parametrize("args, code, needle", [
    (["ask", "just a question"], 5, "give files, folders or @COLLECTION"),
    (["ask", "/nowhere/at/all", "q?"], 5, "nothing to search"),
    (["ask", ".", "q", "-k", "0"], 2, "-k must be at least 1"),
    (["docs", "add", "x/y", "."], 2, "plain word"),
    (["docs", "rm", "nothing"], 13, "no collection named"),
])
def test_bad_asks_are_one_line(args, code, needle):
    proc = run_cli(*args)
    assert proc.returncode == code and needle in proc.stderr and "Traceback" not in proc.stderr


def test_passages_are_bounded_by_the_context(tmp_path, tiny_model):
    root = tmp_path / "long"
    root.mkdir()
    for i in range(12):
        (root / f"part{i}.txt").write_text(f"Harbour fact {i}: the harbour crane number {i} lifts boats. " * 5)
    proc = ok(run_cli("ask", str(root), "What does the harbour crane lift?", "-k", "12", "--ctx", "1024",
                      "--max-tokens", "16", "-m", str(tiny_model), "--json", "--no-log"))
    data = json.loads(proc.stdout)
    assert data["prompt_tokens"] + 16 <= 1024 and 1 <= len(data["sources"]) < 12
    assert "did not fit the context" in proc.stderr
    # a context too small for the instructions alone: one clear line
    tight = run_cli("ask", str(root), "What does the harbour crane lift?", "--ctx", "256", "-m", str(tiny_model))
    assert tight.returncode == 6 and "context" in tight.stderr and "Traceback" not in tight.stderr


def test_the_bundled_model_answers_a_planted_fact(tmp_path):
    make_corpus(tmp_path / "corpus")
    proc = ok(run_cli("ask", str(tmp_path / "corpus"), "What is the access code for the north door?",
                      "--temperature", "0", "--max-tokens", "40", "--ctx", "2048"))
    assert "4417" in proc.stdout.partition("\nSources:")[0]


def test_ask_through_a_real_server(tmp_path, llama_server):
    make_corpus(tmp_path / "corpus")
    proc = ok(run_cli("ask", str(tmp_path / "corpus"), "What is the access code for the north door?",
                      "--server", llama_server, "--temperature", "0", "--max-tokens", "40", "--json"))
    data = json.loads(proc.stdout)
    assert data["found"] and "4417" in data["answer"] and data["sources"][0]["path"].endswith("office.txt")


def test_a_follow_up_keeps_the_last_turn_before_more_passages(smol_engine, tmp_path):
    from gptterm.docs.index import DocIndex
    from gptterm.settings import Params
    from gptterm.tasks.ask import Asker

    make_corpus(tmp_path / "corpus")
    index = DocIndex(tmp_path / "docs.sqlite3")
    index.update([tmp_path / "corpus"])
    history = [{"role": "user", "content": "What is the access code for the north door?"},
               {"role": "assistant", "content": "It is 4417 [1]."}]
    asker = Asker(smol_engine, Params().replace(max_tokens=64), index, index.scope([tmp_path / "corpus"]), k=3)
    messages, kept, dropped = asker._fit("And the late fee?", asker.retrieve("the late fee per day"), history)
    assert messages[1:3] == history and kept and kept[0].path.endswith("billing.py")


def test_chat_with_documents_brings_the_passages_to_each_message(tmp_path, tiny_model):
    make_corpus(tmp_path / "corpus")
    proc = ok(run_cli("chat", "--docs", str(tmp_path / "corpus"), "-m", str(tiny_model), "--max-tokens", "4",
                      input="What is the access code for the north door?\n"))
    assert "Sources:\n[1] " in proc.stderr and "office.txt" in proc.stderr
    conv = HistoryStore().latest()
    assert conv.messages[0].content == "What is the access code for the north door?"  # the message, not the passages
