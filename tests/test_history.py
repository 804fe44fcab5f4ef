import json
import sqlite3

import pytest

from gptterm.errors import HistoryError
from gptterm.history import export
from gptterm.history.store import MIGRATIONS, HistoryStore


@pytest.fixture
def store(isolated_dirs):
    s = HistoryStore()
    yield s
    s.close()


def test_schema_is_versioned_and_wal(store):
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_conversation_roundtrip_with_stats(store):
    cid = store.new_conversation(model="m", system="be brief")
    store.add_message(cid, "user", "why is the sky blue?")
    store.add_message(cid, "assistant", "Rayleigh scattering.", model="m", params={"temperature": 0.2},
                      stats={"prompt_tokens": 12, "completion_tokens": 4, "ttft_s": 0.1, "tokens_per_s": 80.0,
                             "finish_reason": "stop"})
    conv = store.get(cid)
    assert conv.title == "why is the sky blue?"
    assert conv.system == "be brief"
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    assert conv.messages[1].params == {"temperature": 0.2}
    assert conv.messages[1].stats["completion_tokens"] == 4
    assert conv.messages[1].stats["finish_reason"] == "stop"


def test_list_search_latest_delete(store):
    a = store.new_conversation()
    store.add_message(a, "user", "tell me about penguins")
    b = store.new_conversation(kind="generate")
    store.add_message(b, "user", "Once upon a time")
    c = store.new_conversation()
    store.add_message(c, "user", "hello")
    store.add_message(c, "assistant", "100% sure about_this")
    assert [x.id for x in store.list_conversations()] == [c, b, a]
    assert [x.id for x in store.list_conversations(query="penguin")] == [a]
    assert [x.id for x in store.list_conversations(query="100%")] == [c]
    assert [x.id for x in store.list_conversations(query="e_l")] == []  # _ is literal, not a wildcard ("hello" would match)
    assert store.latest().id == c  # latest chat skips the generate conversation
    store.delete_conversation(c)
    assert store.latest().id == a
    with pytest.raises(HistoryError):
        store.get(c)


def test_delete_messages_from_forks_conversation(store):
    cid = store.new_conversation()
    ids = [store.add_message(cid, role, text) for role, text in
           [("user", "1"), ("assistant", "2"), ("user", "3"), ("assistant", "4")]]
    store.delete_messages_from(cid, ids[2])
    assert [m.content for m in store.get(cid).messages] == ["1", "2"]


def test_newer_schema_is_refused(store):
    store._db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    with pytest.raises(HistoryError, match="newer gptterm"):
        HistoryStore(store.path)


def test_not_a_database_is_one_clear_error(isolated_dirs, tmp_path):
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="cannot open history database"):
        HistoryStore(bad)


def test_failed_transaction_leaves_nothing(store):
    cid = store.new_conversation()
    with pytest.raises(sqlite3.IntegrityError):
        store.add_message(cid, "robot", "bad role")
    assert store.get(cid).messages == []
    store.add_message(cid, "user", "still works")
    assert len(store.get(cid).messages) == 1


def test_exports(store):
    cid = store.new_conversation(model="m", system="sys")
    store.add_message(cid, "user", "q")
    store.add_message(cid, "assistant", "partial", stats={"finish_reason": "cancelled"})
    conv = store.get(cid)
    md = export.to_markdown(conv)
    assert "# q" in md and "## System" in md and "## Assistant (stopped)" in md
    data = json.loads(export.to_json(conv))
    assert data["messages"][1]["finish_reason"] == "cancelled"


def test_cli_export_goes_through_the_one_export_writer(store, tmp_path):
    from argparse import Namespace

    from gptterm.cli.history import run_history

    cid = store.new_conversation(model="m")
    store.add_message(cid, "user", "q")
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "chat.md"
    assert run_history(Namespace(action="export", id=cid, format="md", output=str(out))) == 0
    assert out.read_text("utf-8") == export.render(store.get(cid), "md")
    with pytest.raises(HistoryError, match="cannot write .*no-such-dir.*No such file or directory"):
        run_history(Namespace(action="export", id=cid, format="json", output=str(folder / "no-such-dir" / "c.json")))
    assert [p.name for p in folder.iterdir()] == ["chat.md"]  # no temporary left behind


def test_fork_copies_messages_before_the_edit(store):
    cid = store.new_conversation(system="s")
    ids = [store.add_message(cid, role, text, stats={"completion_tokens": 3} if role == "assistant" else None)
           for role, text in [("user", "1"), ("assistant", "2"), ("user", "3"), ("assistant", "4")]]
    new, copied = store.fork(cid, ids[2])
    fork = store.get(new)
    assert [m.content for m in fork.messages] == ["1", "2"] and [m.id for m in fork.messages] == copied
    assert fork.system == "s" and fork.messages[1].stats["completion_tokens"] == 3
    assert fork.title == "1 (edited)"
    assert len(store.get(cid).messages) == 4
