import pytest

from gptterm.errors import ContextOverflowError
from gptterm.history.store import HistoryStore
from gptterm.settings import Params
from gptterm.tasks.chat import ChatSession, compose_prompt
from gptterm.tasks.context import head_tokens

P = Params().replace(temperature=0.0, max_tokens=16)


def test_compose_prompt():
    assert compose_prompt("explain", "diff") == "diff\n\nexplain"
    assert compose_prompt("before {input} after", "X") == "before X after"
    assert compose_prompt(None, "only stdin") == "only stdin"
    assert compose_prompt("only arg", None) == "only arg"


def test_exchanges_are_stored_as_they_happen(tiny_engine, isolated_dirs):
    store = HistoryStore()
    s = ChatSession(tiny_engine, P, store=store)
    r = s.send("hello")
    assert [m.role for m in store.get(s.conversation_id).messages] == ["user"]  # before the reply
    r.drain()
    conv = store.get(s.conversation_id)
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    assert conv.messages[1].content == r.text
    assert conv.messages[1].stats["completion_tokens"] == 16
    assert conv.messages[1].params["temperature"] == 0.0


def test_regenerate_replaces_last_reply(tiny_engine, isolated_dirs):
    store = HistoryStore()
    s = ChatSession(tiny_engine, Params().replace(max_tokens=16, temperature=1.5, top_k=0, seed=1), store=store)
    first = s.send("hi").drain()
    s.params = s.params.replace(seed=2)
    second = s.regenerate().drain()
    assert first != second
    msgs = store.get(s.conversation_id).messages
    assert [m.content for m in msgs] == ["hi", second]


def test_edit_forks_from_that_message_and_keeps_the_original(tiny_engine, isolated_dirs):
    store = HistoryStore()
    s = ChatSession(tiny_engine, P, store=store)
    s.send("one").drain()
    s.send("two").drain()
    original = s.conversation_id
    s.edit(2, "dos").drain()
    fork = s.conversation_id
    assert fork != original
    assert [m.content for m in store.get(original).messages if m.role == "user"] == ["one", "two"]
    assert [m.content for m in store.get(fork).messages if m.role == "user"] == ["one", "dos"]
    assert len(store.get(fork).messages) == 4
    assert store.get(fork).title.endswith("(edited)")
    s.regenerate().drain()  # the session's ids follow the fork
    assert len(store.get(fork).messages) == 4 and len(store.get(original).messages) == 4


def test_cancelled_reply_keeps_partial_text(tiny_engine, isolated_dirs):
    store = HistoryStore()
    s = ChatSession(tiny_engine, P.replace(max_tokens=300), store=store)
    reply = s.send("hi")
    for i, _ in enumerate(reply):
        if i == 3:
            tiny_engine.cancel()
    msgs = store.get(s.conversation_id).messages
    assert msgs[-1].stats["finish_reason"] == "cancelled"
    assert msgs[-1].content == reply.text and len(reply.text) >= 4


def test_continuing_a_stored_conversation(tiny_engine, isolated_dirs):
    store = HistoryStore()
    s = ChatSession(tiny_engine, P.replace(system="be terse"), store=store)
    s.send("first").drain()
    again = ChatSession(tiny_engine, P, store=store, conversation=store.latest())
    assert again.system == "be terse"
    assert [m["content"] for m in again.messages][0] == "first"
    again.send("second").drain()
    assert len(store.get(s.conversation_id).messages) == 4


def test_overflow_error_names_both_numbers(tiny_engine):
    s = ChatSession(tiny_engine, P.replace(max_tokens=100), store=None)
    with pytest.raises(ContextOverflowError) as err:
        s.send("word " * 600)
    msg = str(err.value)
    assert "context holds 512" in msg and "--ctx" in msg and "summarize" in msg
    assert s.messages == []  # nothing recorded for a refused prompt


def test_overflow_truncate_drops_oldest_messages_and_keeps_prefix(tiny_engine):
    reports = []
    s = ChatSession(tiny_engine, P.replace(max_tokens=16), store=None, on_overflow="truncate",
                    on_truncate=reports.append)
    cut_turns, reused_turns = 0, 0
    previous_prompt = 0
    for i in range(20):
        before = len(reports)
        reply = s.send(f"message number {i} " + "abc " * 5)
        reply.drain()
        assert reply.stats.prompt_tokens <= 512 - 16
        if len(reports) > before:
            cut_turns += 1
        elif i:
            # an uncut turn extends the previous prompt: its KV cache is reused
            assert reply.stats.cached_tokens >= previous_prompt
            reused_turns += 1
        previous_prompt = reply.stats.prompt_tokens
    assert reports and reports[-1].dropped_messages > 0
    assert len(s.messages) == 40  # the session keeps everything; the model sees the tail
    assert cut_turns <= 6 and reused_turns == 19 - cut_turns


def test_head_tokens_cuts_at_token_budget(tiny_engine):
    text = "the quick brown fox " * 50
    cut = head_tokens(tiny_engine, text, 30)
    assert text.startswith(cut)
    assert tiny_engine.count_tokens(cut) <= 30
    assert head_tokens(tiny_engine, "short", 30) == "short"
