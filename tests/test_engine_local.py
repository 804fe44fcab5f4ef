"""The local engine on real llama.cpp, with tiny generated models."""

import threading

import pytest

from gptterm.engine.local import LocalEngine
from gptterm.errors import ContextOverflowError, ModelError
from gptterm.settings import Params

GREEDY = Params().replace(temperature=0.0, max_tokens=40)


def test_stream_yields_text_and_counts_exactly(tiny_engine):
    reply = tiny_engine.complete("hello there", GREEDY)
    pieces = list(reply)
    assert len(pieces) == 40  # one clean ASCII token per piece
    assert reply.text == "".join(pieces) and reply.text.isascii()
    assert reply.finish_reason == "length"
    s = reply.stats
    assert s.completion_tokens == 40
    assert s.prompt_tokens == len(tiny_engine.completion_tokens("hello there"))
    assert s.ttft_s is not None and s.ttft_s > 0
    assert s.tokens_per_s and s.tokens_per_s > 0


def test_greedy_output_is_deterministic(tiny_engine):
    a = tiny_engine.complete("the cat", GREEDY).drain()
    b = tiny_engine.complete("the cat", GREEDY).drain()
    assert a == b


def test_seed_repeats_sampled_output_and_other_seeds_differ(tiny_engine):
    p = Params().replace(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, max_tokens=30)
    a = tiny_engine.complete("x", p.replace(seed=7)).drain()
    b = tiny_engine.complete("x", p.replace(seed=7)).drain()
    c = tiny_engine.complete("x", p.replace(seed=8)).drain()
    assert a == b
    assert a != c


def test_unseeded_replies_report_the_seed_that_repeats_them(tiny_engine):
    p = Params().replace(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, max_tokens=30)
    first = tiny_engine.complete("x", p)
    text = first.drain()
    again = tiny_engine.complete("x", p.replace(seed=first.seed)).drain()
    assert text == again


def test_chat_uses_template_and_reuses_kv_prefix(tiny_engine):
    msgs = [{"role": "user", "content": "hello"}]
    r1 = tiny_engine.chat(msgs, GREEDY)
    r1.drain()
    assert "<|im_start|>user\nhello<|im_end|>" in tiny_engine.render_chat(msgs)
    msgs2 = msgs + [{"role": "assistant", "content": r1.text}, {"role": "user", "content": "more"}]
    r2 = tiny_engine.chat(msgs2, GREEDY)
    r2.drain()
    # the first turn's prompt is not evaluated again
    assert r2.stats.cached_tokens >= r1.stats.prompt_tokens
    assert r2.stats.prompt_tokens > r1.stats.prompt_tokens


def test_model_without_template_falls_back_to_chatml(tiny_model_no_template):
    engine = LocalEngine(tiny_model_no_template, ctx=256, gpu_layers=0, threads=1)
    try:
        assert not engine.info.has_chat_template
        assert engine.render_chat([{"role": "user", "content": "hi"}]).startswith("<|im_start|>user\nhi")
        assert engine.chat([{"role": "user", "content": "hi"}], GREEDY).drain()
    finally:
        engine.close()


def test_cancel_from_another_thread_keeps_partial_text(tiny_engine):
    reply = tiny_engine.complete("go", Params().replace(temperature=0, max_tokens=400))
    got = []
    for piece in reply:
        got.append(piece)
        if len(got) == 5:
            threading.Thread(target=tiny_engine.cancel).start()
            threading.Event().wait(0.05)
    assert reply.finish_reason == "cancelled"
    assert 5 <= reply.stats.completion_tokens < 400
    assert reply.text == "".join(got)
    # the engine is usable again afterwards
    assert tiny_engine.complete("go", GREEDY).drain()


def test_cancel_before_start_stops_prompt_evaluation(tiny_engine):
    reply = tiny_engine.complete("word " * 100, GREEDY)
    tiny_engine.cancel()  # llama.cpp's abort callback stops the prompt's llama_decode
    assert reply.drain() == ""
    assert reply.finish_reason == "cancelled"
    assert reply.stats.ttft_s is None
    assert tiny_engine.complete("word " * 100, GREEDY).drain()


def test_on_done_runs_once_with_final_state(tiny_engine):
    seen = []
    reply = tiny_engine.complete("abc", GREEDY)
    reply.on_done(lambda r: seen.append((r.finish_reason, r.text)))
    reply.drain()
    assert seen == [("length", reply.text)]


def test_max_tokens_is_cut_to_the_context(tiny_model):
    engine = LocalEngine(tiny_model, ctx=64, gpu_layers=0, threads=1)
    try:
        reply = engine.complete("hello", Params().replace(temperature=0, max_tokens=1000))
        reply.drain()
        assert reply.finish_reason == "length"
        assert reply.stats.prompt_tokens + reply.stats.completion_tokens == engine.n_ctx
        with pytest.raises(ContextOverflowError):
            engine.complete("word " * 100, GREEDY)
    finally:
        engine.close()


def test_ctx_is_capped_at_training_context(tiny_model):
    engine = LocalEngine(tiny_model, ctx=100_000, gpu_layers=0, threads=1)
    try:
        assert engine.n_ctx == 1024
    finally:
        engine.close()


def _bad_files(tmp_path, good: bytes):
    yield "missing", tmp_path / "nope.gguf", "model file not found"
    d = tmp_path / "dir.gguf"
    d.mkdir()
    yield "directory", d, "is a directory"
    (tmp_path / "empty.gguf").write_bytes(b"")
    yield "empty", tmp_path / "empty.gguf", "empty or truncated"
    (tmp_path / "random.gguf").write_bytes(bytes(range(256)) * 40)
    yield "random", tmp_path / "random.gguf", "not a GGUF model file"
    (tmp_path / "head.gguf").write_bytes(good[:200])
    yield "truncated header", tmp_path / "head.gguf", "truncated"
    (tmp_path / "body.gguf").write_bytes(good[: len(good) // 2])
    yield "truncated tensors", tmp_path / "body.gguf", "cannot load model"
    (tmp_path / "garbage.gguf").write_bytes(b"GGUF" + b"\xff" * 500)
    yield "garbage after magic", tmp_path / "garbage.gguf", "cannot load model"


def test_bad_model_files_give_one_clear_error(tiny_model, tmp_path):
    for label, path, needle in _bad_files(tmp_path, tiny_model.read_bytes()):
        with pytest.raises(ModelError) as err:
            LocalEngine(path, ctx=256, gpu_layers=0, threads=1)
        message = str(err.value)
        assert needle in message, (label, message)
        assert "\n" not in message, label
