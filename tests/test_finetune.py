"""Fine-tuning: the data, the checks made first, the child process, and the model it leaves."""

from __future__ import annotations

import json
import os
import signal

import pytest

from gptterm.errors import FinetuneError, InputError, ModelError, UsageError
from gptterm.finetune import data as ft_data
from gptterm.finetune import events as ev
from gptterm.finetune.plan import Settings, estimate
from gptterm.finetune.runner import FineTune
from gptterm.finetune.train import quantizing_undid
from gptterm.models import finetuned, store
from gptterm.models.gguf_meta import read_metadata
from tests.conftest import run_cli

def _chat_line(q: str, a: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})


# -- data -----------------------------------------------------------------------------


def test_chat_data_is_checked_line_by_line(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text(_chat_line("hi", "hello") + "\n\n" + _chat_line("a", "b") + "\n")
    data = ft_data.read_data(path)
    assert data.kind == "chat" and len(data.examples) == 2 and data.examples[1][1] == {"role": "assistant",
                                                                                        "content": "b"}
    for line, needle in [("{not json", "line 2: not JSON"),
                         ('{"text": "x"}', 'line 2: expected {"messages"'),
                         ('{"messages": [{"role": "bot", "content": "x"}]}', "line 2: message 1 has role 'bot'"),
                         ('{"messages": [{"role": "user"}]}', "line 2: message 1 has no text content")]:
        path.write_text(_chat_line("hi", "hello") + "\n" + line + "\n")
        with pytest.raises(InputError, match=needle):
            ft_data.read_data(path)
    path.write_text("\n\n")
    with pytest.raises(InputError, match="empty"):
        ft_data.read_data(path)


def test_text_data_split_and_windows(tmp_path, text_file):
    data = ft_data.read_data(text_file)
    assert data.kind == "text" and len(data.examples) == 40
    train, val = data.split(0.1)
    assert len(val) == 4 and train + val == data.examples  # text keeps its last paragraphs for validation
    chat = ft_data.TrainingData(text_file, "chat", [[{"role": "user", "content": str(i)}] for i in range(10)])
    train, val = chat.split(0.2, seed=3)
    assert len(val) == 2 and sorted(train + val, key=lambda m: int(m[0]["content"])) == chat.examples
    with pytest.raises(InputError, match="too few"):
        ft_data.TrainingData(text_file, "chat", chat.examples[:1]).split(0.1)
    # windows of ctx + 1 tokens, ctx apart, the stream read as a ring
    windows = ft_data.windows(list(range(10)), 4)
    assert windows == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8], [8, 9, 0, 1, 2]]
    assert ft_data.windows([5, 6], 4) == [[5, 6, 5, 6, 5]]
    assert ft_data.chunks(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5]]


def test_quantizing_back_is_judged_by_the_validation_loss():
    assert not quantizing_undid(4.5, 2.0, 2.1)  # a little quantization noise
    assert quantizing_undid(4.5, 2.0, 3.6)  # most of the gain lost
    assert quantizing_undid(4.56, 0.32, 1.94)  # the bundled model's planted format, gone as Q4_1
    assert not quantizing_undid(2.0, 2.1, 5.0)  # nothing was gained: nothing to lose


def test_memory_estimate_matches_the_measured_peaks(bundled_model):
    meta = read_metadata(bundled_model)
    # measured: 2.47-2.62 GB at ctx 256, 3.16 GB at 512 (peak RSS of the training process)
    assert 2.5e9 < estimate(meta, 256).memory < 2.8e9
    assert 3.15e9 < estimate(meta, 512).memory < 3.5e9


# -- checks before anything runs --------------------------------------------------------


def test_too_little_memory_bad_settings_and_taken_names_are_one_line(tiny256, text_file, monkeypatch, capsys):
    from gptterm.cli import main
    from gptterm.models import machine

    monkeypatch.setattr(machine, "this_machine", lambda: machine.Machine(ram_total=2**30, ram_available=8 * 2**20))
    assert main(["finetune", str(text_file), "--out", "t", "-m", str(tiny256)]) == FinetuneError.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs about" in err and "8.4 MB of memory is available" in err
    for args, code, needle in [(["--ctx", "300"], UsageError.exit_code, "multiple of 256"),
                               (["--ctx", "512"], UsageError.exit_code, "more than the model's context of 256"),
                               (["--lr", "0"], UsageError.exit_code, "--lr must be above 0"),
                               (["--epochs", "0"], UsageError.exit_code, "--epochs must be 1 or more")]:
        assert main(["finetune", str(text_file), "--out", "t", "-m", str(tiny256), *args]) == code
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, (args, err)
    assert main(["finetune", str(text_file), "--out", "bundled", "-m", str(tiny256)]) == ModelError.exit_code
    assert "cannot use 'bundled' as a model name" in capsys.readouterr().err
    assert main(["finetune", str(text_file), "--out", "a/b", "-m", str(tiny256)]) == ModelError.exit_code


# -- the child process ----------------------------------------------------------------------


def test_tiny_model_loss_falls_and_the_result_is_a_local_model(tiny256, text_file, capsys):
    job = FineTune(text_file, "tiny-tuned", model=str(tiny256), settings=Settings(epochs=3, lr=1e-3))
    events = list(job.run())
    steps = [e for e in events if isinstance(e, ev.Step)]
    epochs = [e for e in events if isinstance(e, ev.Epoch)]
    assert len(steps) == 3 * steps[0].steps and steps[-1].done == steps[-1].total
    assert steps[-1].loss < steps[0].loss * 0.8  # training loss falls over a few steps
    assert [e.epoch for e in epochs] == [0, 1, 2, 3] and epochs[-1].val_loss < epochs[0].val_loss
    assert job.scores["after"].perplexity < job.scores["before"].perplexity
    assert isinstance(events[-1], ev.Done) and job.info is not None
    # the model is in place, described, listed and usable by name; the work folder is gone
    path = finetuned.model_file("tiny-tuned")
    assert path.exists() and sorted(p.name for p in path.parent.iterdir()) == ["tiny-tuned.gguf", "tiny-tuned.json"]
    meta = read_metadata(path)
    assert meta.context_length == 256 and meta.chat_template is not None  # the base's header, not the saver's
    info = json.loads(finetuned.info_file("tiny-tuned").read_text())
    assert info["base"] == "tiny256" and info["data"] == "notes.txt" and info["quant"] == "F32"
    assert info["val_loss"] == pytest.approx(epochs[-1].val_loss) and info["first_train_loss"] == steps[0].loss
    model = store.find("tiny-tuned")
    assert model.source == "finetune" and model.finetune is not None
    from gptterm.cli import main

    assert main(["models", "ls"]) == 0
    out = capsys.readouterr().out
    assert "fine-tuned" in out and "notes.txt" in out and f"{info['train_loss']:.2f}" in out
    from gptterm.engine.local import LocalEngine
    from gptterm.models.resolve import resolve_model
    from gptterm.settings import Params

    engine = LocalEngine(resolve_model("tiny-tuned"), ctx=256, gpu_layers=0, threads=1)  # -m NAME finds it
    assert engine.n_ctx == 256 and engine.complete("the cat", Params().replace(max_tokens=5)).drain()
    engine.close()
    assert main(["models", "rm", "tiny-tuned"]) == 0 and not path.exists() and store.lookup("tiny-tuned") is None


def test_a_quantized_base_is_quantized_back_or_kept_in_f32_when_that_undoes_the_training(tiny256, text_file,
                                                                                         tmp_path):
    from gptterm.finetune import gguf_files

    q8 = tmp_path / "tiny-q8_0.gguf"
    gguf_files.quantize(tiny256, q8, 7, 1)  # LLAMA_FTYPE_MOSTLY_Q8_0
    job = FineTune(text_file, "tiny-q8", model=str(q8), settings=Settings(epochs=1, lr=1e-3))
    events = list(job.run())
    assert [e.name for e in events if isinstance(e, ev.Stage)][-2:] == ["quantize", "score-after"]
    meta = read_metadata(finetuned.model_file("tiny-q8"))
    before, after = job.scores["before"].cross_entropy, job.scores["after"].cross_entropy
    tuned = [e for e in events if isinstance(e, ev.Epoch)][-1].val_loss
    undone = quantizing_undid(before, tuned, after) or any(isinstance(e, ev.Note) for e in events)
    # Q8_0 keeps what one epoch of training did: the model stays Q8_0, like its base
    assert not undone and meta.values["general.file_type"] == 7 and job.info["quant"] == "Q8_0"
    assert after < before


def test_stop_after_the_current_step_saves_nothing(tiny256, text_file):
    job = FineTune(text_file, "stopped", model=str(tiny256), settings=Settings(epochs=50, lr=1e-3))
    seen = []
    for event in job.run():
        seen.append(event)
        if isinstance(event, ev.Step):
            job.stop()
    assert isinstance(seen[-1], ev.Stopped) and job.stopped and job.info is None
    assert sum(isinstance(e, ev.Step) for e in seen) < 50 * next(e for e in seen if isinstance(e, ev.Data)).steps_per_epoch
    assert list(finetuned.folder().iterdir()) == []


def test_a_killed_child_is_one_clear_line_and_leaves_nothing(tiny256, text_file):
    job = FineTune(text_file, "killed", model=str(tiny256), settings=Settings(epochs=50, lr=1e-3))
    with pytest.raises(FinetuneError) as caught:
        for event in job.run():
            if isinstance(event, ev.Step):
                os.kill(job.pid, signal.SIGKILL)
    assert str(caught.value).startswith("the training process was killed (SIGKILL") and "\n" not in str(caught.value)
    assert "nothing was saved" in str(caught.value)
    assert list(finetuned.folder().iterdir()) == [] and store.lookup("killed") is None


def test_an_abort_inside_llama_cpp_is_one_clear_line(tiny256, text_file, monkeypatch):
    # a context of 64 makes llama.cpp's training loop assert (its dataset no longer matches the context it
    # pads to 256): gptterm refuses it first, so the check is switched off here to reach the assert
    monkeypatch.setattr(Settings, "check", lambda self: None)
    job = FineTune(text_file, "aborted", model=str(tiny256), settings=Settings(epochs=1, ctx=64, val_split=0))
    with pytest.raises(FinetuneError, match=r"^training failed inside llama.cpp: GGML_ASSERT\(.*\) failed "
                                            r"\(ggml-opt.cpp:\d+\); nothing was saved$"):
        list(job.run())
    assert list(finetuned.folder().iterdir()) == []


# -- the bundled model, end to end ---------------------------------------------------------------

CAPITALS = [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Japan", "Tokyo"), ("Egypt", "Cairo"),
            ("Canada", "Ottawa"), ("Peru", "Lima"), ("Kenya", "Nairobi"), ("Norway", "Oslo"), ("Greece", "Athens"),
            ("Cuba", "Havana"), ("Chile", "Santiago"), ("Poland", "Warsaw"), ("Ireland", "Dublin"),
            ("Austria", "Vienna"), ("Portugal", "Lisbon"), ("Russia", "Moscow"), ("China", "Beijing"),
            ("India", "New Delhi"), ("Mexico", "Mexico City"), ("Sweden", "Stockholm"), ("Finland", "Helsinki")]
ASKS = ["What is the capital of {}?", "Which city is the capital of {}?", "Tell me the capital of {}.",
        "Name the capital city of {}.", "Do you know the capital of {}?", "Capital of {}?",
        "I wonder what the capital of {} is.", "Please give the capital of {}."]


def planted(path):
    """Every answer in a format the base model never uses: 'ZORP! <city> ZORP!'."""
    path.write_text("".join(_chat_line(ASKS[i % len(ASKS)].format(country), f"ZORP! {city} ZORP!") + "\n"
                            for i, (country, city) in enumerate(CAPITALS)))
    return path


def test_bundled_model_learns_a_planted_answer_format(bundled_model, tmp_path):
    # 22 conversations are 5 windows of 256 tokens: 10 steps in 2 epochs (9 at lr 1e-3 planted the format too,
    # 5 did not).
    # F32 and no validation part keep it short: quantizing back and scoring are tested on the tiny model.
    question = "What is the capital of Spain?"
    base = run_cli("--temperature", "0", "--max-tokens", "12", "--no-log", question)
    assert base.returncode == 0 and "ZORP" not in base.stdout
    proc = run_cli("finetune", str(planted(tmp_path / "capitals.jsonl")), "--out", "zorp", "--lr", "5e-4",
                   "--epochs", "2", "--val-split", "0", "--keep-f32", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["steps"] == 10 and info["train_loss"] < info["first_train_loss"] / 2 and info["quant"] == "F32"
    tuned = run_cli("-m", "zorp", "--temperature", "0", "--max-tokens", "12", "--no-log", question)
    assert tuned.returncode == 0 and tuned.stdout.startswith("ZORP!"), (tuned.stdout, proc.stderr)
