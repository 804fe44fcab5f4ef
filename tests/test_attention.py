"""Self-attention weights read out of llama.cpp (a second context with an eval callback), and their views."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gptterm.engine import attention
from gptterm.engine.attention import Capture
from gptterm.errors import InputError, UsageError
from gptterm.tasks import attention as views
from tests.conftest import run_cli

TEXT = "The cat sat on the mat because it was tired"


def test_bundled_attention_rows_sum_to_one_and_respect_the_causal_mask(smol_engine):
    tokens = smol_engine.completion_tokens(TEXT)
    before = smol_engine.evaluated_tokens
    found = attention.capture(smol_engine, tokens)
    n = len(tokens)
    assert found.weights.shape == (30, 9, n, n) and found.layers == list(range(30))
    w = found.weights.astype(np.float64)
    assert np.allclose(w.sum(axis=-1), 1.0, atol=1e-4)  # softmax rows over the keys a token can see
    assert np.all(w[..., np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] == 0)  # no token sees a later one
    assert np.all(w[:, :, 0, 0] == 1.0)  # the first token can only look at itself
    assert smol_engine.evaluated_tokens == before  # the engine's own context was not touched
    # the usual "attention sink": the last token puts much of its attention on the first
    last = views.most_attended(views.matrix(found, views.Selection()), n - 1, 1)
    assert last[0][0] == 0 and last[0][1] > 0.3


def test_a_text_over_the_limit_is_refused_in_one_line(bundled_model):
    layers, heads = 30, 9
    limit = attention.max_tokens(layers, heads)
    assert layers * heads * limit**2 <= attention.MAX_FLOATS < layers * heads * (limit + 1) ** 2
    with pytest.raises(InputError, match=f"over the limit of {attention.MAX_FLOATS:,} \\({limit:,} tokens"):
        attention.check_size(limit + 1, layers, heads)
    proc = run_cli("attention", "-m", str(bundled_model), "-", input="word " * (limit + 50))
    assert proc.returncode == InputError.exit_code
    assert proc.stderr.count("\n") == 1 and "layers × 9 heads" in proc.stderr and f"{attention.MAX_FLOATS:,}" in proc.stderr


def _capture() -> Capture:
    rng = np.random.default_rng(0)
    n, layers, heads = 5, 3, 2
    raw = np.tril(rng.random((layers, heads, n, n)) + 0.01)
    return Capture(list(range(n)), (raw / raw.sum(-1, keepdims=True)).astype(np.float32), list(range(layers)))


def test_views_reduce_layers_and_heads():
    c = _capture()
    w = c.weights
    assert np.allclose(views.matrix(c, views.Selection()), w.mean(axis=(0, 1)))
    assert np.allclose(views.matrix(c, views.Selection(2, 1)), w[2, 1])
    assert np.allclose(views.matrix(c, views.Selection(1, "max")), w[1].max(axis=0))
    assert np.allclose(views.matrix(c, views.Selection("all", 0)), w[:, 0].mean(axis=0))
    m = views.matrix(c, views.Selection(0, 0))
    assert [j for j, _ in views.bars(m, 3)] == [0, 1, 2, 3]
    top = views.most_attended(m, 4, 2)
    assert top[0][1] >= top[1][1] and top[0][1] == max(m[4])
    f = views.focus(c, 4, views.Selection(0, 0), k=3)
    assert len(f.weights) == len(f.shade) == 5 and max(f.shade) == 1.0 and len(f.top) == 3
    assert all(0 <= s <= 1 for s in f.shade)
    assert views.focus_in(m, 4, 3) == f  # a face keeps the reduced matrix and moves from token to token
    with pytest.raises(UsageError, match="layers 0 to 2"):
        views.matrix(c, views.Selection(3, "mean"))
    with pytest.raises(UsageError, match="heads 0 to 1"):
        views.matrix(c, views.Selection(0, 5))
    with pytest.raises(UsageError, match="tokens 0 to 4"):
        views.bars(m, 5)
    assert views.parse_layer(None) == "all" and views.parse_layer("7") == 7 and views.parse_head("MAX") == "max"
    with pytest.raises(UsageError):
        views.parse_head("median")


def test_json_holds_every_layer_and_head_as_lower_triangular_rows(tiny_model):
    proc = run_cli("attention", "-m", str(tiny_model), "--json", "the cat sat")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    n = len(data["tokens"])
    assert "".join(t["piece"] for t in data["tokens"]) == "the cat sat"
    assert data["n_layers"] == len(data["layers"]) == 2 and data["n_heads"] == 4
    for layer in data["layers"]:
        assert [h["head"] for h in layer["heads"]] == [0, 1, 2, 3]
        for head in layer["heads"]:
            assert [len(row) for row in head["weights"]] == list(range(1, n + 1))
            assert all(abs(sum(row) - 1) < 1e-3 for row in head["weights"])
    narrowed = json.loads(run_cli("attention", "-m", str(tiny_model), "--json", "--layer", "1", "--head", "max",
                                  "--from", "2", "the cat sat").stdout)
    assert [layer["layer"] for layer in narrowed["layers"]] == [1]
    assert narrowed["layers"][0]["heads"][0]["head"] == "max" and len(narrowed["from"]["weights"]) == 3


def test_plain_output_and_chat_tokens(tiny_model):
    proc = run_cli("attention", "-m", str(tiny_model), "--chat", "hi")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split("\t")[1] == '"<|im_start|>"'
    assert [len(line.split("\t")[2].split()) for line in lines] == list(range(1, len(lines) + 1))
    bars = run_cli("attention", "-m", str(tiny_model), "--from", "1", "--head", "0", "ab").stdout.splitlines()
    assert [line.split("\t")[0] for line in bars] == ["0", "1"]
    assert abs(sum(float(line.split("\t")[2]) for line in bars) - 1) < 1e-3
    bad = run_cli("attention", "-m", str(tiny_model), "--from", "9", "ab")
    assert bad.returncode == UsageError.exit_code and "--from 9: the text has tokens 0 to 1" in bad.stderr
