"""summarize / translate through the real CLI: bundled model end to end, bad input on a tiny model."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli

ESSAY = "\n\n".join([
    "The printing press was invented by Johannes Gutenberg around 1440 in Mainz. It used movable metal type, "
    "oil-based ink and a wooden press. Before it, books were copied by hand, which made them rare and expensive.",
    "Within fifty years, printing shops had spread to more than 250 cities in Europe and had produced millions "
    "of books. Prices fell, literacy rose, and ideas travelled faster than ever before.",
    "The press played a central role in the Renaissance, the Reformation and the Scientific Revolution. "
    "Pamphlets spread arguments across borders in weeks instead of years.",
    "Historians still debate its exact impact, but most agree that it changed how knowledge was stored and "
    "shared, and that it laid the groundwork for the modern information age.",
]) + "\n"


def test_summarize_text_several_times_the_context(tmp_path):
    doc = tmp_path / "essay.txt"
    doc.write_text(ESSAY * 4)
    proc = run_cli("summarize", "--ctx", "512", "--length", "short", "--json", str(doc), timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    parts = [c for c in data["chunks"] if not c.get("final")]
    level0 = [c for c in parts if c["level"] == 0]
    assert len(level0) >= 3, "the document did not need parts?"
    assert all(c["output"].strip() for c in level0), "a part produced nothing"
    assert data["chunks"][-1]["final"]
    for c in data["chunks"]:
        assert c["prompt_tokens"] + c["completion_tokens"] <= 512
    assert data["text"].strip() and len(data["text"]) < len(ESSAY * 4) / 3
    assert "Traceback" not in proc.stderr


def test_summarize_streams_and_reports_progress(tmp_path):
    doc = tmp_path / "essay.md"
    doc.write_text(ESSAY * 3)
    proc = run_cli("summarize", "--ctx", "512", "--form", "bullets", str(doc), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "summarizing: part 1 of" in proc.stderr  # progress goes to stderr, never stdout
    assert "part" not in proc.stdout and proc.stdout.strip()


def test_translate_markdown_keeps_paragraphs_and_code():
    src = ("# Getting started\n\nInstall the package with pip.\n\n"
           "```sh\npip install gptterm\n```\n\n- Open the settings\n- Change the temperature\n\n"
           "The model loads in the background.\n")
    proc = run_cli("translate", "--to", "fr", "--json", input=src, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    out = data["text"]
    assert data["source"] == "English" and data["target"] == "French"
    assert "```sh\npip install gptterm\n```" in out
    assert out.count("\n\n") == src.count("\n\n")  # paragraph breaks kept
    assert out.count("\n") == src.count("\n")  # and every paragraph's line count
    assert out.startswith("# ") and "\n- " in out
    assert out != src


def test_translate_detects_source_language():
    proc = run_cli("translate", "--to", "en", input="Le chat dort sur la table de la cuisine.\n", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "detected source language: French" in proc.stderr
    assert proc.stdout.strip()


@pytest.mark.parametrize("args,stdin,code,needle", [
    (("summarize",), "", 5, "nothing to summarize: the input is empty"),
    (("translate", "--to", "fr"), "   \n", 5, "nothing to translate: the input is empty"),
    (("translate", "--to", "xx"), "hello", 2, "unknown language 'xx'; valid codes:"),
    (("translate", "--to", "fr", "--from", "qq"), "hello", 2, "unknown language 'qq'"),
    (("translate",), "hello", 2, "--to"),
    (("summarize", "/nonexistent.txt"), None, 5, "cannot read /nonexistent.txt: No such file or directory"),
    (("summarize", "/bin/sh"), None, 5, "looks like a binary file"),
    (("summarize", "/"), None, 5, "is a directory"),
])
def test_bad_task_input_is_one_line(tiny_model, args, stdin, code, needle):
    proc = run_cli(*args, "-m", str(tiny_model), input=stdin)
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_unreadable_file(tiny_model):
    # /proc/self/mem exists but cannot be read whole, even by root (as CI runs)
    proc = run_cli("summarize", "-m", str(tiny_model), "/proc/self/mem")
    assert proc.returncode == 5, proc.stderr
    assert proc.stderr.strip().splitlines() == ["gptterm: error: cannot read /proc/self/mem: Input/output error"]
