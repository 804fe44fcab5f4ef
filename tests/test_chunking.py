"""Chunking covers the input exactly once, in order, each chunk within budget (real tokenizer)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptterm.tasks.chunking import chunk_text, paragraphs

WORDS = ["the", "cat", "sat", "on", "a", "mat", "猫", "在", "垫子上", "。", "🙂", "👩‍💻", "naïve", "——", "x" * 40,
         "https://example.com/a/very/long/path?with=query&and=more", ".", "!", "?", " ", "  ", "\n", "\n\n", "\t",
         "# Title\n", "- item\n", "1. step\n", "```python\nprint('hi')\n\n\nx = 1\n```\n", "> quote\n", "~~~\ncode\n~~~\n"]

texts = st.lists(st.sampled_from(WORDS), min_size=0, max_size=120).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, budget=st.integers(min_value=4, max_value=80))
def test_chunks_cover_input_exactly_and_fit(tiny_engine, text, budget):
    chunks = chunk_text(text, budget, tiny_engine.count_tokens)
    assert "".join(chunks) == text
    assert all(chunks), "no empty chunks"
    for chunk in chunks:
        assert tiny_engine.count_tokens(chunk) <= budget, (chunk, budget)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_paragraphs_partition_the_text(text):
    parts = paragraphs(text)
    assert "".join(parts) == text
    assert all(parts)


def test_real_tokenizer_cjk_no_newlines_and_giant_paragraph(smol_engine):
    cases = [
        "这是一个很长的中文句子，没有任何换行符" * 80,
        "word " * 3000,
        "One giant paragraph. " * 400,
        "# Doc\n\n```python\n" + "x = 1\n" * 300 + "```\n\nAfter the code.\n",
        "🙂" * 500,
    ]
    for text in cases:
        for budget in (7, 50, 300):
            chunks = chunk_text(text, budget, smol_engine.count_tokens)
            assert "".join(chunks) == text
            assert max(smol_engine.count_tokens(c) for c in chunks) <= budget


def test_boundaries_prefer_paragraphs_then_sentences(smol_engine):
    text = "First paragraph is short.\n\nSecond one. It has two sentences.\n\nThird.\n"
    assert smol_engine.count_tokens("Second one. It has two sentences.\n\n") > 6
    chunks = chunk_text(text, 6, smol_engine.count_tokens)
    assert chunks[0] == "First paragraph is short.\n\n"
    assert "".join(chunks) == text
    assert any(c.startswith("It has two sentences.") for c in chunks)


def test_budget_below_one_character_is_refused(tiny_engine):
    import pytest

    with pytest.raises(ValueError):
        chunk_text("abc", 3, tiny_engine.count_tokens)


def test_code_block_is_one_paragraph():
    text = "Intro\n```\na\n\nb\n```\nOutro\n"
    assert paragraphs(text) == ["Intro\n", "```\na\n\nb\n```\n", "Outro\n"]
