"""The Engine contract, one suite for every backend: the local engine and the remote one.

Both run the bundled SmolLM2 model — in this process, and behind a real
``python -m llama_cpp.server`` — so the same assertions hold for both.
"""

from __future__ import annotations

import threading

import pytest

from gptterm.errors import ContextOverflowError
from gptterm.settings import Params

GREEDY = Params().replace(temperature=0.0, max_tokens=24)
SAMPLED = Params().replace(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, max_tokens=16)
STORY = "Once upon a time, in a small village by the sea, there lived"


@pytest.fixture(params=["local", "remote"])
def engine(request):
    return request.getfixturevalue("smol_engine" if request.param == "local" else "remote_engine")


def test_stream_yields_text_and_reports_stats(engine):
    reply = engine.complete(STORY, GREEDY)
    pieces = list(reply)
    assert pieces and reply.text == "".join(pieces)
    assert reply.finish_reason == "length"
    s = reply.stats
    assert s.completion_tokens == 24
    assert s.prompt_tokens == engine.count_tokens(STORY)
    assert s.ttft_s is not None and 0 < s.ttft_s <= s.total_s
    assert s.tokens_per_s and s.tokens_per_s > 0


def test_chat_answers_with_the_models_template(engine):
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    reply = engine.chat(msgs, GREEDY.replace(max_tokens=40))
    assert "Paris" in reply.drain()
    assert reply.finish_reason in ("stop", "length")
    # the count covers the template around the message, not just its words
    assert engine.count_chat_tokens(msgs) > engine.count_tokens(msgs[0]["content"])


def test_greedy_output_is_deterministic(engine):
    assert engine.complete(STORY, GREEDY).drain() == engine.complete(STORY, GREEDY).drain()


def test_seed_repeats_sampled_output_and_other_seeds_differ(engine):
    a = engine.complete("x", SAMPLED.replace(seed=7)).drain()
    b = engine.complete("x", SAMPLED.replace(seed=7)).drain()
    c = engine.complete("x", SAMPLED.replace(seed=8)).drain()
    assert a == b
    assert a != c


def test_unseeded_replies_report_the_seed_that_repeats_them(engine):
    first = engine.complete("x", SAMPLED)
    text = first.drain()
    assert first.seed is not None
    assert engine.complete("x", SAMPLED.replace(seed=first.seed)).drain() == text


def test_tokens_round_trip_and_count(engine):
    text = "The quick brown fox jumps over the lazy dog."
    assert engine.detokenize(engine.tokenize(text)).strip() == text
    assert engine.count_tokens("") == 0
    assert 5 <= engine.count_tokens(text) <= len(text)
    assert engine.count_tokens(text * 3) > engine.count_tokens(text)


def test_cancel_from_another_thread_keeps_partial_text(engine):
    reply = engine.complete(STORY, GREEDY.replace(max_tokens=400))
    got = []
    for piece in reply:
        got.append(piece)
        if len(got) == 5:
            threading.Thread(target=engine.cancel).start()
    assert reply.finish_reason == "cancelled"
    assert 5 <= reply.stats.completion_tokens < 400
    assert reply.text == "".join(got)
    assert engine.complete(STORY, GREEDY.replace(max_tokens=4)).drain()  # usable again


def test_cancel_before_start_yields_nothing(engine):
    reply = engine.complete(STORY, GREEDY)
    engine.cancel()
    assert reply.drain() == ""
    assert reply.finish_reason == "cancelled"
    assert reply.stats.ttft_s is None
    assert engine.complete(STORY, GREEDY.replace(max_tokens=4)).drain()


def test_on_done_runs_once_with_final_state(engine):
    seen = []
    reply = engine.complete(STORY, GREEDY.replace(max_tokens=6))
    reply.on_done(lambda r: seen.append((r.finish_reason, r.text)))
    reply.drain()
    assert seen == [("length", reply.text)]


def test_prompt_longer_than_the_context_is_refused_before_generating(engine):
    assert engine.n_ctx == 2048
    with pytest.raises(ContextOverflowError) as err:
        engine.complete("word " * 3000, GREEDY)
    assert err.value.n_ctx == 2048 and err.value.prompt_tokens >= 2048


def test_remote_and_local_greedy_replies_are_the_same(smol_engine, remote_engine):
    msgs = [{"role": "user", "content": "Name three colours."}]
    assert remote_engine.chat(msgs, GREEDY).drain() == smol_engine.chat(msgs, GREEDY).drain()
