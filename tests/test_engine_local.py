"""What only the local engine does, on real llama.cpp with tiny generated models.

The behaviour every engine shares (streaming, determinism, seeds, cancel,
callbacks, context checks) is in test_engine_contract.py, run on both.
"""

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


def test_the_models_template_is_compiled_once(tiny_engine):
    # llama-cpp-python compiles it while loading; gptterm renders with that same formatter
    handler = tiny_engine._llm._chat_handlers["chat_template.default"]
    assert any(cell.cell_contents is tiny_engine._formatter for cell in handler.__closure__)


def test_model_without_template_falls_back_to_chatml(tiny_model_no_template):
    engine = LocalEngine(tiny_model_no_template, ctx=256, gpu_layers=0, threads=1)
    try:
        assert not engine.info.has_chat_template
        assert engine.render_chat([{"role": "user", "content": "hi"}]).startswith("<|im_start|>user\nhi")
        assert engine.chat([{"role": "user", "content": "hi"}], GREEDY).drain()
    finally:
        engine.close()


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


def test_flash_attention_is_off_on_the_cpu_and_part_of_the_state_key(tiny_engine):
    assert tiny_engine.flash_attn is False  # slower on the CPU beyond a few hundred tokens of context
    key = tiny_engine.state_key()
    tiny_engine.flash_attn = True
    try:
        assert tiny_engine.state_key() != key  # a state from the other KV layout is never offered
    finally:
        tiny_engine.flash_attn = False


def test_device_refusing_flash_attention_loads_without_it(tiny_model, monkeypatch):
    import llama_cpp

    from gptterm.engine import grammar

    real = grammar.GrammarLlama  # the Llama subclass the engine loads with
    asked = []

    def picky(*args, flash_attn=False, **kwargs):
        asked.append(flash_attn)
        if flash_attn:
            raise ValueError("Failed to create llama_context")
        return real(*args, flash_attn=flash_attn, **kwargs)

    monkeypatch.setattr(grammar, "GrammarLlama", picky)
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)  # as with a GPU build
    engine = LocalEngine(tiny_model, ctx=256, gpu_layers=99, threads=1)
    try:
        assert asked == [True, False]
        assert engine.flash_attn is False
        assert engine.complete("hello", GREEDY).drain()
    finally:
        engine.close()
