"""Advice per task: a model asked for a language or a task it does not cover says so once, names the best
catalog model for this machine and the exact pull line; --quiet and 'advice = false' silence it."""

from __future__ import annotations

import io
import json
import sys

import pytest

from gptterm.cli import main
from gptterm.types import ModelInfo
from gptterm.models import advice, catalog
from gptterm.models.machine import Machine
from tests.conftest import write_config
from tests.scripted import script

GB = 1000**3
LAPTOP = Machine(ram_total=16 * GB, ram_available=8 * GB)
SMALL = Machine(ram_total=2 * GB, ram_available=1 * GB)
EN_TEXT = b"GPT models can be used for machine translation, text summarization and question answering.\n"


@pytest.fixture
def stdin(monkeypatch):
    def give(data: bytes) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    give(b"")
    return give


def test_every_catalog_model_says_what_it_is_good_for():
    for e in catalog.CATALOG:
        assert e.languages and e.tasks and e.ctx_train and e.licence and e.size_class, e.id
        assert set(e.tasks) <= set(catalog.TASKS), e.id
    families = {e.family for e in catalog.CATALOG}
    assert {"Qwen3", "Gemma 3", "SmolLM3", "Phi-4", "Llama 3.2"} <= families
    assert any(e.kind == "embed" for e in catalog.CATALOG)
    assert catalog.BUNDLED.languages == ("en",)


def test_the_bundled_model_asked_for_chinese_gets_a_multilingual_model_that_fits():
    found = advice.check(catalog.BUNDLED, "translate", ("zh", "en"), machine=LAPTOP, free=100 * GB)
    assert found is not None and found.entry is not None
    assert found.entry.speaks("zh") and "translate" in found.entry.tasks
    assert f"gptterm models pull {found.entry.id}" in found.text and "Chinese" in found.text
    assert found.entry.billions <= advice.practical_billions(LAPTOP)
    assert found.entry.memory_needed() <= LAPTOP.ram_available  # type: ignore[operator]


def test_nothing_to_say_when_the_model_covers_it_and_a_line_when_nothing_fits():
    qwen = catalog.profile_of(catalog.BY_ID["qwen2.5-1.5b"])
    assert advice.check(qwen, "translate", ("zh", "en"), machine=LAPTOP, free=100 * GB) is None
    assert advice.check(None, "translate", ("zh",)) is None  # an unknown model: no guess
    found = advice.check(catalog.BUNDLED, "translate", ("zh",), machine=SMALL, free=10**6)
    assert found is not None and found.entry is None and "models catalog --for translate --lang zh" in found.text


def test_ranked_models_cover_the_task_and_the_language():
    ranked = advice.ranked("translate", ("zh",))
    assert ranked and all(e.covers("translate", ("zh",)) for e in ranked)
    assert [e.rank for e in ranked] == sorted((e.rank for e in ranked), reverse=True)
    assert not any(e.id.startswith("smollm") for e in ranked)


def test_a_model_of_a_known_family_is_recognised_by_its_name():
    info = ModelInfo(name="Qwen3-4B-Instruct", path="/x/Qwen3-4B-Q4_K_M.gguf", size_bytes=1, n_params=4_000_000_000)
    profile = advice.profile_for(info)
    assert profile is not None and profile.speaks("zh") and profile.thinking and "translate" in profile.tasks


def test_a_prompts_script_names_its_language():
    assert advice.script_language("请把这段话翻译成英文，谢谢") == "zh"
    assert advice.script_language("これは日本語の文章です") == "ja"
    assert advice.script_language("What is the capital of France?") is None
    assert advice.script_language("Explain 量子 in simple words please, as for a child") is None


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    return code, out, err


def test_translate_to_chinese_on_the_bundled_model_warns_once_and_names_the_pull_line(capsys, stdin, monkeypatch):
    script(monkeypatch, (["机器翻译。"], "stop"))
    stdin(EN_TEXT)
    code, out, err = cli(capsys, "translate", "--to", "zh")
    assert code == 0 and out.strip()
    lines = [line for line in err.splitlines() if "gptterm models pull" in line]
    assert len(lines) == 1, err
    assert "Chinese" in lines[0] and "English only" in lines[0]
    pulled = lines[0].split("gptterm models pull ")[1].split(",")[0]
    assert catalog.BY_ID[pulled].speaks("zh")


def test_quiet_and_the_config_switch_silence_the_advice(capsys, stdin, monkeypatch, isolated_dirs):
    script(monkeypatch, (["机器翻译。"], "stop"))
    stdin(EN_TEXT)
    code, _, err = cli(capsys, "translate", "--to", "zh", "--quiet")
    assert code == 0 and "models pull" not in err
    write_config(isolated_dirs, "advice = false\n")
    stdin(EN_TEXT)
    code, _, err = cli(capsys, "translate", "--to", "zh")
    assert code == 0 and "models pull" not in err


def test_a_chinese_prompt_to_an_english_model_is_advised(capsys, stdin, monkeypatch):
    script(monkeypatch, (["OK."], "stop"))
    code, _, err = cli(capsys, "--no-log", "请用中文介绍一下你自己")
    assert code == 0 and err.count("gptterm models pull") == 1
    code, _, err = cli(capsys, "--no-log", "Introduce yourself")
    assert code == 0 and "models pull" not in err
    script(monkeypatch, (["OK."], "stop"))
    code, _, err = cli(capsys, "--no-log", "-q", "请用中文介绍一下你自己")  # the one-shot prompt takes -q too
    assert code == 0 and "models pull" not in err


def test_catalog_for_a_task_and_a_language_ranks_the_models(capsys):
    code, out, _ = cli(capsys, "models", "catalog", "--for", "translate", "--lang", "zh", "--json")
    data = json.loads(out)
    assert code == 0 and data["task"] == "translate" and data["languages"] == ["zh"]
    ids = [m["id"] for m in data["models"]]
    assert ids == [e.id for e in advice.ranked("translate", ("zh",))]
    assert data["recommended"] in ids
    code, out, _ = cli(capsys, "models", "catalog")
    header = out.splitlines()[0]
    for column in ("GOOD FOR", "LANGUAGES", "CTX", "LICENCE", "CLASS", "THINKS"):
        assert column in header
