"""Saved KV states: a continued conversation skips re-reading its history, and a bad state is never used."""

from __future__ import annotations

import pytest

from gptterm.engine.local import LocalEngine
from gptterm.engine.state_cache import MIN_TOKENS, StateCache
from gptterm.history.store import HistoryStore
from gptterm.settings import Params
from gptterm.tasks.chat import ChatSession

P = Params().replace(temperature=0.0, max_tokens=24)


@pytest.fixture
def engines(tiny_model):
    made = []

    def make(ctx=1024):
        engine = LocalEngine(tiny_model, ctx=ctx, gpu_layers=0, threads=1)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


def long_conversation(engine, store, cache):
    session = ChatSession(engine, P, store=store, state_cache=cache)
    while engine.evaluated_tokens < MIN_TOKENS + 50:
        session.send("tell me more about the quick brown fox " * 3).drain()
    return session.conversation_id


def continue_in_new_process(make, store, cache, cid, ctx=1024):
    engine = make(ctx)  # a fresh model load: nothing in its KV cache
    session = ChatSession(engine, P, store=store, conversation=store.get(cid), state_cache=cache)
    reply = session.send("and then?")
    reply.drain()
    return session, reply


def test_continued_conversation_starts_from_saved_state(engines, isolated_dirs):
    store, cache = HistoryStore(), StateCache()
    first = engines()
    cid = long_conversation(first, store, cache)
    saved = list(cache.directory.glob("*.kvstate"))
    assert len(saved) == 1
    session, reply = continue_in_new_process(engines, store, cache, cid)
    assert session.restored_tokens >= MIN_TOKENS
    assert reply.stats.cached_tokens >= session.restored_tokens - 2  # the history was not evaluated again
    assert reply.stats.prompt_tokens - reply.stats.cached_tokens < 40


@pytest.mark.parametrize("damage", ["flip", "truncate", "meta"])
def test_damaged_state_is_never_loaded(engines, isolated_dirs, damage):
    store, cache = HistoryStore(), StateCache()
    cid = long_conversation(engines(), store, cache)
    [path] = cache.directory.glob("*.kvstate")
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 3]))
    else:
        path.with_suffix(".json").write_text("{not json")
    session, reply = continue_in_new_process(engines, store, cache, cid)
    assert session.restored_tokens == 0
    assert reply.stats.cached_tokens == 0  # evaluated from scratch instead
    assert reply.text


def test_state_is_keyed_by_context_size(engines, isolated_dirs):
    store, cache = HistoryStore(), StateCache()
    cid = long_conversation(engines(1024), store, cache)
    session, reply = continue_in_new_process(engines, store, cache, cid, ctx=768)
    assert session.restored_tokens == 0 and reply.stats.cached_tokens == 0


def test_cache_is_size_capped_least_recently_used_first(engines, isolated_dirs):
    store = HistoryStore()
    cache = StateCache()
    engine = engines()
    first = long_conversation(engine, store, cache)
    size = next(cache.directory.glob("*.kvstate")).stat().st_size
    small = StateCache(max_bytes=int(size * 1.5))
    second = long_conversation(engines(), store, small)
    names = [p.name for p in cache.directory.glob("*.kvstate")]
    assert len(names) == 1 and f"conversation-{second}-" in names[0]
    small.forget(second)
    assert list(cache.directory.glob(f"conversation-{second}-*")) == []
    del first


def test_short_conversations_are_not_saved(tiny_engine, isolated_dirs):
    store, cache = HistoryStore(), StateCache()
    ChatSession(tiny_engine, P, store=store, state_cache=cache).send("hi").drain()
    assert not cache.directory.exists() or list(cache.directory.glob("*.kvstate")) == []
