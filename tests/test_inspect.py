"""Looking inside the model: tokens, log-probabilities of generated tokens, perplexity."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gptterm.engine.local import LocalEngine
from gptterm.settings import Params
from gptterm.tasks.perplexity import Perplexity
from tests.conftest import run_cli
from tests.fixtures.tiny_gguf import make_tiny_gguf

TINY_VOCAB = 279
TEXTS = ["The quick brown fox jumps over the lazy dog.", "机器翻译、文本摘要和问答系统", "emoji 🙂🚀 and ümlauts",
         "a lone byte-ish ǅ and \u200b zero width", "<|im_start|> typed by hand"]


@pytest.fixture(scope="module")
def uniform_engine(tmp_path_factory):
    path = make_tiny_gguf(tmp_path_factory.mktemp("uniform") / "uniform.gguf", uniform=True)
    engine = LocalEngine(path, ctx=64, gpu_layers=0, threads=1)
    yield engine
    engine.close()


def run_perplexity(engine, text, worst=0):
    job = Perplexity(engine, window=64 if engine.n_ctx <= 256 else None, worst=worst)
    progress = list(job.run(text))
    return job.result, progress


# -- tokens ----------------------------------------------------------------------


@pytest.mark.parametrize("text", TEXTS)
def test_token_ids_are_the_models_own(smol_engine, text):
    own = smol_engine._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    tokens = smol_engine.completion_tokens(text)
    assert tokens == own
    infos = smol_engine.token_info(tokens)
    assert [t.id for t in infos] == own
    assert b"".join(t.piece for t in infos).decode("utf-8") == text  # the pieces are the text, byte for byte
    assert not any(t.special for t in infos)  # typed "<|im_start|>" is text, not a control token


def test_pieces_that_are_not_utf8_alone_are_shown_as_bytes(smol_engine):
    infos = smol_engine.token_info(smol_engine.completion_tokens("你好"))
    partial = [t for t in infos if "<0x" in t.text]
    assert partial and all(len(t.piece) < 3 for t in partial)
    assert partial[0].text == "".join(f"<0x{b:02X}>" for b in partial[0].piece)


def test_chat_tokens_flag_the_templates_special_tokens(smol_engine):
    infos = smol_engine.token_info(smol_engine.chat_tokens([{"role": "user", "content": "Hi"}]))
    specials = [t.text for t in infos if t.special]
    assert specials[:2] == ["<|im_start|>", "<|im_end|>"] and specials[-1] == "<|im_start|>"
    assert "Hi" in [t.text for t in infos]


def test_tokens_command_json_and_plain(tiny_model):
    proc = run_cli("tokens", "-m", str(tiny_model), "--json", "the cat")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["count"] == len(data["tokens"]) and "".join(t["piece"] for t in data["tokens"]) == "the cat"
    assert {"id", "piece", "bytes", "special"} <= set(data["tokens"][0])
    plain = run_cli("tokens", "-m", str(tiny_model), "--chat", "hi")
    lines = plain.stdout.splitlines()
    assert lines[0].split("\t")[1] == '"<|im_start|>"' and all("\t" in line for line in lines)
    assert f"{len(lines)} tokens" in plain.stderr
    piped = run_cli("tokens", "-m", str(tiny_model), "-", input="from stdin")
    assert "".join(json.loads(line.split("\t")[1]) for line in piped.stdout.splitlines()) == "from stdin"


# -- log-probabilities of a reply ---------------------------------------------------------


def test_greedy_tokens_are_the_top_alternative_and_logprobs_are_sorted(smol_engine):
    # greedy and no repeat penalty: the sampler then picks what the raw distribution ranks first
    params = Params().replace(temperature=0.0, repeat_penalty=1.0, max_tokens=24, logprobs=5, seed=1)
    reply = smol_engine.chat([{"role": "user", "content": "Name three colours."}], params)
    text = reply.drain()
    assert reply.logprobs is not None and len(reply.logprobs) == reply.stats.completion_tokens
    assert "".join(t.text for t in reply.logprobs) == text
    for t in reply.logprobs:
        assert t.logprob <= 0 and len(t.top) == 5
        assert t.top[0].token == t.token and math.isclose(t.top[0].logprob, t.logprob, abs_tol=1e-6)
        assert [a.logprob for a in t.top] == sorted((a.logprob for a in t.top), reverse=True)
        assert sum(math.exp(a.logprob) for a in t.top) <= 1 + 1e-6


def test_logprobs_off_leaves_the_reply_without_them(smol_engine):
    reply = smol_engine.chat([{"role": "user", "content": "Hi"}], Params().replace(max_tokens=4))
    reply.drain()
    assert reply.logprobs is None


def test_oneshot_json_carries_openai_shaped_logprobs(tiny_model):
    proc = run_cli("-m", str(tiny_model), "--temperature", "0", "--max-tokens", "6", "--logprobs", "2", "--json",
                   "--no-log", "hello")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    content = data["logprobs"]["content"]
    assert len(content) == data["completion_tokens"] == 6
    assert "".join(c["token"] for c in content) == data["text"]
    first = content[0]
    assert set(first) == {"token", "logprob", "bytes", "top_logprobs"} and len(first["top_logprobs"]) == 2
    assert first["top_logprobs"][0]["token"] == first["token"]


# -- perplexity ---------------------------------------------------------------------------


def test_a_uniform_model_has_the_vocabulary_size_as_perplexity(uniform_engine):
    text = "the cat sat on the mat and then it ran off. " * 30
    n_tokens = len(uniform_engine.completion_tokens(text))
    result, progress = run_perplexity(uniform_engine, text)
    window = 64
    assert uniform_engine.n_ctx >= window
    assert result.method == "windows" and result.windows == n_tokens // window
    assert result.scored == result.windows * (window - window // 2 - 1)
    assert math.isclose(result.perplexity, TINY_VOCAB, rel_tol=1e-4)
    assert math.isclose(result.cross_entropy, math.log(TINY_VOCAB), rel_tol=1e-5)
    assert result.stderr is None or result.stderr < 1e-3  # every token equally surprising
    assert len(progress) == result.windows and progress[-1].fraction == 1.0


def test_a_text_shorter_than_a_window_is_scored_whole(uniform_engine):
    result, _ = run_perplexity(uniform_engine, "just a few words")
    n = len(uniform_engine.completion_tokens("just a few words"))
    assert result.method == "whole" and result.windows == 0 and result.scored == n - 1
    assert math.isclose(result.perplexity, TINY_VOCAB, rel_tol=1e-4)
    # bits per byte: ln(279) nats for every scored token, over the bytes of those tokens
    scored_bytes = sum(len(t.piece) for t in uniform_engine.token_info(uniform_engine.completion_tokens(
        "just a few words")[1:]))
    assert math.isclose(result.bits_per_byte, (n - 1) * math.log2(TINY_VOCAB) / scored_bytes, rel_tol=1e-5)


def test_perplexity_matches_an_independent_computation_from_the_models_logits(bundled_model, smol_engine):
    import llama_cpp

    text = ("The printing press was invented by Johannes Gutenberg around 1440 in Mainz. It used movable metal "
            "type and oil-based ink. Before it, books were copied by hand, which made them rare and expensive.")
    tokens = smol_engine.completion_tokens(text)
    scored = smol_engine.score(tokens, 0, top=3)
    llm = llama_cpp.Llama(str(bundled_model), n_ctx=256, logits_all=True, verbose=False, n_threads=2)
    try:
        llm.eval(tokens)
        logits = np.array(llm.scores[: len(tokens)], dtype=np.float64)
    finally:
        llm.close()
    peak = logits.max(axis=1, keepdims=True)
    log_softmax = logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
    expected = [log_softmax[i, tokens[i + 1]] for i in range(len(tokens) - 1)]
    assert len(scored.logprobs) == len(expected)
    assert np.allclose(scored.logprobs, expected, atol=2e-3)
    assert scored.top[0][0].token == int(np.argmax(logits[0]))
    # the chat still works afterwards: scoring emptied the cache it reuses
    reply = smol_engine.chat([{"role": "user", "content": "Hi"}], Params().replace(max_tokens=3, temperature=0))
    assert reply.drain()


def test_worst_tokens_are_the_least_likely_with_context(smol_engine):
    text = "Paris is the capital of France. Berlin is the capital of Germany. Rome is the capital of banana."
    result, _ = run_perplexity(smol_engine, text, worst=3)
    assert len(result.worst) == 3
    assert [s.logprob for s in result.worst] == sorted(s.logprob for s in result.worst)
    assert result.worst[0].logprob < -3 and result.worst[0].expected is not None
    assert any("banana" in s.text or "banana" in s.after for s in result.worst)


def test_perplexity_command(tiny_model, tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("the cat sat on the mat. " * 80)
    proc = run_cli("perplexity", str(doc), "-m", str(tiny_model), "--ctx", "128", "--worst", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["method"] == "windows" and data["window"] == 128 and data["windows"] >= 2
    assert data["perplexity"] > 1 and len(data["worst"]) == 2
    plain = run_cli("perplexity", "-m", str(tiny_model), "--ctx", "128", input=doc.read_text())
    assert plain.returncode == 0 and plain.stdout.startswith("perplexity ")
    assert "the second half of" in plain.stdout
    empty = run_cli("perplexity", "-m", str(tiny_model), input="   ")
    assert empty.returncode == 5 and "empty" in empty.stderr


# -- through a server -----------------------------------------------------------------------


def test_a_real_server_gives_the_same_tokens_and_log_probabilities(remote_engine, smol_engine):
    text = "Hello world, 你好"
    assert remote_engine.completion_tokens(text) == smol_engine.completion_tokens(text)
    assert [t.text for t in remote_engine.token_info(remote_engine.completion_tokens("Hello world"))] == \
        ["Hello", " world"]
    params = Params().replace(temperature=0.0, repeat_penalty=1.0, max_tokens=8, logprobs=3, seed=1)
    messages = [{"role": "user", "content": "Name a fruit."}]
    local, remote = smol_engine.chat(messages, params), remote_engine.chat(messages, params)
    local.drain(), remote.drain()
    assert [t.text for t in remote.logprobs] == [t.text for t in local.logprobs]
    for r, lo in zip(remote.logprobs, local.logprobs):
        assert abs(r.logprob - lo.logprob) < 0.05 and r.top[0].text == lo.top[0].text


def test_a_server_refuses_to_score_a_text_with_a_clear_line(remote_engine):
    from gptterm.errors import RemoteError

    with pytest.raises(RemoteError, match="cannot score a text"):
        remote_engine.score([1, 2, 3], 0)


def test_a_server_without_a_tokenizer_says_so_in_one_line(fake_server):
    proc = run_cli("tokens", "--server", fake_server.url("ok"), "hello")
    assert proc.returncode == 12, proc.stderr
    assert "no tokenizer endpoint" in proc.stderr and "Traceback" not in proc.stderr
