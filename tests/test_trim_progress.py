"""Whole outputs and honest counts: --length is a target with headroom, a reply cut by the token cap ends
at its last complete sentence (and -v/--json say so), a translation part cut by the cap is split and done
again with the total grown, and the last progress event says every part is done."""

from __future__ import annotations

import io
import json
import sys

import pytest

from gptterm.cli import main
from gptterm.engine.local import LocalEngine
from gptterm.settings import Params
from gptterm.tasks.job import TASK_DEFAULTS, last_boundary, trim_to_sentence
from gptterm.tasks.progress import PartCount, PartProgress
from gptterm.tasks.summarize import HEADROOM, LENGTH_WORDS, TOKENS_PER_WORD, Summarizer, SummaryOptions
from gptterm.tasks.translate import Translator
from tests.scripted import never_stops, script

PARAMS = Params().replace(**TASK_DEFAULTS, max_tokens=256)


@pytest.fixture(scope="module")
def engine(tiny_model):
    e = LocalEngine(tiny_model, ctx=1024, gpu_layers=0, threads=1)
    yield e
    e.close()


def cli(capsys, monkeypatch, stdin: str, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(stdin.encode()))))
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    return code, out, err


def test_trimming_keeps_whole_sentences_and_list_numbers_are_not_sentence_ends():
    assert trim_to_sentence("One. Two is") == ("One.", True)
    assert trim_to_sentence("One. Two.") == ("One. Two.", False)
    assert trim_to_sentence("no sentence end at all") == ("no sentence end at all", False)
    assert trim_to_sentence("步骤如下。\n\n1. 输入文本") == ("步骤如下。", True)
    assert last_boundary("Steps:\n1. Read") == len("Steps:\n")


def test_a_summary_that_reaches_its_cap_ends_at_its_last_complete_sentence(engine, monkeypatch):
    s = script(monkeypatch, never_stops())
    job = Summarizer(engine, PARAMS, SummaryOptions.parse("short"))
    streamed = "".join(e.text for e in job.run("The cat sat on the mat. It was warm.") if e.kind == "text")
    assert streamed == job.text  # no line break left hanging after the last sentence
    assert job.text.endswith("text.") and "and then" not in job.text
    final = job.chunks[-1]
    assert final["final"] and final["trimmed"] and final["finish_reason"] == "length"
    # the cap is the target with headroom, not the target
    assert s.max_tokens[-1] >= LENGTH_WORDS["short"] * TOKENS_PER_WORD * HEADROOM


def test_a_model_that_never_stops_really_gets_whole_sentences_or_its_text_whole(engine):
    job = Summarizer(engine, PARAMS, SummaryOptions.parse("5"))
    for _ in job.run("The cat sat on the mat. It was warm."):
        pass
    final = job.chunks[-1]
    assert final["finish_reason"] in ("length", "repetition")
    if final["trimmed"]:
        assert last_boundary(job.text + " ") == len(job.text)


def test_cli_says_the_summary_was_trimmed(capsys, monkeypatch, tiny_model):
    script(monkeypatch, never_stops())
    code, out, err = cli(capsys, monkeypatch, "The cat sat on the mat.", "summarize", "-m", str(tiny_model),
                         "--ctx", "1024", "--length", "short", "--json")
    data = json.loads(out)
    assert code == 0 and data["text"].endswith(".") and data["chunks"][-1]["trimmed"] is True
    assert data["stats"]["trimmed"] == 1
    code, out, err = cli(capsys, monkeypatch, "The cat sat on the mat.", "summarize", "-m", str(tiny_model),
                         "--ctx", "1024", "--length", "short", "-v")
    assert code == 0 and out.rstrip().endswith("text.")
    assert "cut at its last complete sentence" in err


def test_a_translation_part_cut_by_the_cap_is_split_and_the_count_grows(engine, monkeypatch):
    # the first call (the whole line) never stops; the halves are translated and end by themselves
    script(monkeypatch, never_stops(), (["Erste Hälfte."], "stop"))
    job = Translator(engine, PARAMS.replace(max_tokens=64), target="de", source="en")
    progress = PartProgress("translating")
    events = []
    for event in job.run("The first sentence is here. The second sentence is there.\n"):
        events.append(event)
        progress.update(event)
    notes = [e.note for e in events if e.note]
    assert notes and "split in 2" in notes[0]
    totals = [e.total for e in events if e.kind == "progress"]
    assert totals[0] == 1 and totals[-1] == 3  # one planned part, then its two halves
    chunks = [e for e in events if e.kind == "chunk"]
    assert chunks[-1].index + 1 == chunks[-1].total == 3
    assert progress.done == progress.total == 3
    assert job.text.strip() == "Erste Hälfte. Erste Hälfte."
    assert not job.incomplete


def test_a_half_that_is_still_cut_is_reported_incomplete_with_its_number(engine, monkeypatch, capsys, tiny_model):
    script(monkeypatch, never_stops())
    code, out, err = cli(capsys, monkeypatch, "The first sentence is here. The second sentence is there.\n",
                         "translate", "-m", str(tiny_model), "--ctx", "1024", "--to", "de", "--from", "en",
                         "--max-tokens", "64")
    assert code == 0
    assert "parts 2, 3 of 3 reached the token cap even when split" in err
    # off a terminal: plain progress lines, and the count grows honestly
    assert "gptterm: translating: part 1 reached the token cap: split in 2 and done again; now 3 parts" in err
    assert "part 3 of 3 done" in err and "of 1 done" not in err.split("now 3 parts")[1]


def test_part_count_and_progress_line():
    count = PartCount(total=8)
    count.done = 8
    count.grow(2, "part 8 was split in 2")
    assert count.total == 10 and count.take_note() == "part 8 was split in 2" and count.take_note() == ""
    from gptterm.tasks.job import TaskEvent

    p = PartProgress("translating")
    p.update(TaskEvent("progress", index=0, total=2))
    line = p.update(TaskEvent("chunk", index=0, total=2, result={"input_tokens": 5, "tokens_per_s": 40.0}))
    assert line == "translating: part 1 of 2 done (5 tokens in, 40 tok/s)"
    assert p.text().startswith("translating: part 1 of 2 · 40 tok/s")
    grown = p.update(TaskEvent("progress", index=1, total=3, note="part 2 was split in 2"))
    assert grown == "translating: part 2 was split in 2; now 3 parts" and "(part 2 was split in 2)" in p.text()
