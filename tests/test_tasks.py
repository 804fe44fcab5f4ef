"""Summarize and translate mechanics on a tiny model (fast), and their prompts and helpers."""

from __future__ import annotations

import threading

import pytest

from gptterm.assets import language_name, load_prompt
from gptterm.errors import InputError, UsageError
from gptterm.settings import Params
from gptterm.tasks.job import PreambleFilter, strip_preamble
from gptterm.tasks.summarize import Summarizer, SummaryOptions
from gptterm.tasks.translate import Translator, detect_language, load_glossary

P = Params().replace(temperature=0.0, repeat_penalty=1.0)
DOC = "\n\n".join(f"Paragraph {i}. " + "The quick brown fox jumps over the lazy dog. " * 6 for i in range(30)) + "\n"


def run(job, text):
    events = list(job.run(text))
    return events, "".join(e.text for e in events if e.kind == "text")


def test_short_text_is_summarized_in_one_pass(tiny_engine):
    job = Summarizer(tiny_engine, P, SummaryOptions.parse("short"))
    events, out = run(job, "A short note about foxes.")
    assert len(job.chunks) == 1 and job.chunks[0]["final"]
    assert out.strip() and job.text == out.strip()


def test_long_text_is_summarized_in_parts_within_context(tiny_engine):
    job = Summarizer(tiny_engine, P, SummaryOptions.parse("short"))
    assert tiny_engine.count_tokens(DOC) > 4 * tiny_engine.n_ctx
    events, out = run(job, DOC)
    parts = [c for c in job.chunks if not c.get("final")]
    assert len(parts) >= 4 and job.chunks[-1]["final"]
    assert job.levels >= 1
    for c in job.chunks:  # every call fits: prompt + reply <= context
        assert c["prompt_tokens"] + c["completion_tokens"] <= tiny_engine.n_ctx
    level0 = [c for c in parts if c["level"] == 0]
    assert [c["index"] for c in level0] == list(range(len(level0)))  # in order, each once
    assert sum(c["input_tokens"] for c in level0) >= tiny_engine.count_tokens(DOC) - len(level0)
    progress = [e for e in events if e.kind == "progress"]
    assert progress[0].total == len(level0) + 1  # the parts and the final pass
    # the count is honest: a second round grows the total (and says so), and the last part is the last
    assert [e.index for e in progress] == list(range(len(job.chunks)))
    assert progress[-1].total == len(job.chunks) and job.count.done == job.count.total
    if job.levels > 1:
        assert any("need round 2" in e.note for e in progress)
    # the fixed instruction before each part is a shared prefix: its KV cache is reused
    instruction = tiny_engine.count_chat_tokens(job._part_messages(""))
    assert all(c["cached_tokens"] >= instruction - 2 for c in level0[1:])
    assert out.strip()


def test_cancel_keeps_finished_parts(tiny_engine):
    job = Summarizer(tiny_engine, P, SummaryOptions.parse("short"))
    events = []
    for event in job.run(DOC):
        events.append(event)
        if event.kind == "chunk" and event.index == 1:
            threading.Thread(target=job.cancel).start()
            threading.Event().wait(0.05)
    assert job.cancelled
    assert 2 <= len(job.chunks) < 10
    assert not any(c.get("final") for c in job.chunks)
    assert tiny_engine.complete("still usable", P.replace(max_tokens=3)).drain()


@pytest.mark.parametrize("args,needle", [
    (("huge",), "--length must be short, medium, long"),
    (("3",), "--length in words must be in 5..5000"),
    (("short", "poem"), "--form must be one of"),
    (("short", "paragraph", "klingon"), "unknown language 'klingon'"),
])
def test_bad_summary_options(args, needle):
    with pytest.raises(UsageError, match=needle):
        SummaryOptions.parse(*args)


MARKDOWN = """# Title here

First paragraph with words.
It wraps onto a second line.

- item one
- item two
  continued

```python
print("do not translate me")
```

   Indented text stays indented.
12345

> a quoted line
"""


def test_translation_keeps_structure(tiny_engine):
    job = Translator(tiny_engine, P.replace(max_tokens=40), target="fr", source="en")
    events, out = run(job, MARKDOWN)
    assert out == job.text
    assert out.count("\n") == MARKDOWN.count("\n")  # every paragraph keeps its line count
    assert '```python\nprint("do not translate me")\n```\n' in out
    lines, src = out.split("\n"), MARKDOWN.split("\n")
    for got, want in zip(lines, src):
        for marker in ("# ", "- ", "  ", "> ", "   "):
            if want.startswith(marker):
                assert got.startswith(marker), (got, want)
        if not want.strip():
            assert not got.strip()
    assert "12345" in out  # nothing to translate: copied
    assert not any(c["source"].startswith(("```", "print(")) for c in job.chunks)


def test_translation_cancel_keeps_done_paragraphs(tiny_engine):
    job = Translator(tiny_engine, P.replace(max_tokens=20), target="de", source="en")
    done = 0
    for event in job.run(DOC):
        if event.kind == "chunk":
            done += 1
            if done == 2:
                job.cancel()
    assert job.cancelled and 2 <= len(job.chunks) < 30
    kept = [c for c in job.chunks if not c.get("redone")]  # a part cut at the cap is split and redone
    assert job.text.startswith(kept[0]["output"][:5])


def test_glossary_terms_go_into_the_prompt_and_are_enforced(tiny_engine, tmp_path):
    gl = tmp_path / "terms.tsv"
    gl.write_text("# comment\nfox\tRenard\nlazy dog = chien paresseux\n")
    terms = load_glossary(gl)
    assert terms == {"fox": "Renard", "lazy dog": "chien paresseux"}
    job = Translator(tiny_engine, P, target="fr", source="en", glossary=terms)
    prompt = job._messages("the fox runs")[-1]["content"]
    assert "fox → Renard" in prompt and "chien" not in prompt
    assert job._apply_glossary("the fox", "le fox court") == "le Renard court"
    (tmp_path / "g.json").write_text('{"cat": "chat"}')
    assert load_glossary(tmp_path / "g.json") == {"cat": "chat"}
    (tmp_path / "bad.txt").write_text("no separator here\n")
    with pytest.raises(InputError, match="line 1"):
        load_glossary(tmp_path / "bad.txt")


@pytest.mark.parametrize("text,code", [
    ("The weather is lovely today and we are going for a walk in the park.", "en"),
    ("Le temps est magnifique aujourd'hui et nous allons nous promener dans le parc.", "fr"),
    ("Das Wetter ist heute herrlich und wir gehen im Park spazieren.", "de"),
    ("今天天气很好，我们去公园散步吧。", "zh"),
    ("Сегодня прекрасная погода, и мы идём гулять в парк.", "ru"),
])
def test_language_detection(text, code):
    assert detect_language(text) == code


def test_language_names_and_codes():
    assert language_name("zh") == "Chinese" and language_name("German") == "German"
    with pytest.raises(UsageError, match="valid codes: .*zh"):
        language_name("xx")


def test_preamble_is_stripped_streaming_or_not():
    cases = {
        "Sure! Here is the summary:\nFoxes jump.": "Foxes jump.",
        "Here's the translation: Hallo Welt": "Hallo Welt",
        "Translation:\n\nHola": "Hola",
        "Of course the fox jumped.": "Of course the fox jumped.",
        "The report says: growth.": "The report says: growth.",
    }
    for raw, want in cases.items():
        assert strip_preamble(raw) == want
        f = PreambleFilter()
        assert "".join(f.feed(c) for c in raw) + f.flush() == want


def test_prompt_templates_can_be_overridden(isolated_dirs):
    assert "{text}" in load_prompt("summarize").user
    override = isolated_dirs["config"] / "prompts"
    override.mkdir(parents=True)
    (override / "summarize.txt").write_text("[user]\nTL;DR please: {text}\n")
    assert load_prompt("summarize").messages(text="X") == [{"role": "user", "content": "TL;DR please: X"}]
    (override / "summarize.txt").write_text("[user]\nno placeholder\n")
    from gptterm.errors import ConfigError

    with pytest.raises(ConfigError, match="needs a \\[user\\] section containing"):
        load_prompt("summarize")


def test_translating_into_the_source_language_is_refused(tiny_engine):
    from gptterm.errors import TaskError

    with pytest.raises(TaskError, match="already in English"):
        list(Translator(tiny_engine, P, target="en").run("The weather is lovely today and we walk in the park."))


def feed_all(text, size=3):
    from gptterm.tasks.job import LoopGuard

    guard = LoopGuard()
    for i in range(0, len(text), size):  # token-sized pieces, as a reply streams
        if guard.feed(text[i:i + size]):
            break
    return guard


def test_loop_guard_stops_a_repeated_sentence_and_a_phrase_said_over_and_over():
    sentence = "The printing press changed how books were made. "
    guard = feed_all("Intro. " + sentence + "Then more happened here. " + sentence + "tail")
    assert guard.tripped and guard.text[:guard.keep].rstrip() == "Intro. " + sentence + "Then more happened here."

    # what the bundled model wrote summarizing the seed document (no sentence end at all)
    lead = "在Hugging Face的Transformers库中，可以使用GPT2"
    guard = feed_all(lead + "LemAlleravolution" * 30)
    assert guard.tripped and guard.text[:guard.keep] == lead + "LemAlleravolution"


def test_loop_guard_leaves_tables_rules_and_number_rows_alone():
    text = ("Results:\n\n| name | value | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n"
            + "-" * 120 + "\n" + "0, " * 60 + "\n" + "ha" * 10 + " said the owl, and the story went on to its end.\n")
    assert not feed_all(text).tripped
