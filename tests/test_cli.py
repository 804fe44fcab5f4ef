"""The real `gptterm` command in subprocesses, on a tiny generated model."""

import json

import pytest

from gptterm.history.store import HistoryStore
from tests.conftest import run_cli

FAST = ("--temperature", "0", "--max-tokens", "12", "--ctx", "512")


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def fails(proc, code, needle):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one clear line, never a traceback
    assert lines[0].startswith("gptterm: error: ")
    assert needle in lines[0], lines[0]
    return proc


def stored(kind=None):
    store = HistoryStore()
    convs = store.list_conversations(limit=None, kinds=(kind,) if kind else ("chat", "oneshot", "generate"))
    return [store.get(c.id) for c in convs]


def test_oneshot_streams_reply_and_logs_nothing_else(tiny_model):
    proc = ok(run_cli("-m", str(tiny_model), *FAST, "hello", "there"))
    # llama.cpp's log never reaches the terminal: stderr holds only our note
    assert proc.stderr == "gptterm: the reply stopped at --max-tokens (12)\n"
    assert proc.stdout.endswith("\n") and len(proc.stdout.strip()) > 0
    [conv] = stored()
    assert conv.kind == "oneshot"
    assert [m.content for m in conv.messages] == ["hello there", proc.stdout.rstrip("\n")]


def test_pipe_is_context_and_argument_the_instruction(tiny_model):
    ok(run_cli("-m", str(tiny_model), *FAST, "explain this change", input="diff --git a b\n+added\n"))
    assert stored()[0].messages[0].content == "diff --git a b\n+added\n\nexplain this change"


def test_input_placeholder_places_stdin(tiny_model):
    ok(run_cli("-m", str(tiny_model), *FAST, "Translate: {input} -- done", input="bonjour"))
    assert stored()[0].messages[0].content == "Translate: bonjour -- done"


def test_piped_stdin_alone_is_the_prompt(tiny_model):
    ok(run_cli("-m", str(tiny_model), *FAST, input="just this\n"))
    assert stored()[0].messages[0].content == "just this\n"


def test_empty_stdin_without_prompt_is_an_error(tiny_model):
    fails(run_cli("-m", str(tiny_model), *FAST, input=""), 5, "stdin is empty")
    fails(run_cli("-m", str(tiny_model), *FAST, "{input}", input="  \n"), 5, "stdin is empty")
    ok(run_cli("-m", str(tiny_model), *FAST, "hello", input=""))


def test_binary_stdin_is_refused_and_legacy_text_decoded(tiny_model):
    # tests/test_encodings.py sweeps every input path; here the one-shot prompt as a user meets it
    fails(run_cli("-m", str(tiny_model), *FAST, "what is this", input=b"\x00\x01PNG\xff\xfe data"), 5,
          "stdin looks like a binary file")
    proc = ok(run_cli("-m", str(tiny_model), *FAST, "what", input="caf\u00e9 ".encode("latin-1")))
    assert "read stdin as Windows-1252" in proc.stderr
    assert stored()[0].messages[0].content.startswith("caf\u00e9")


@pytest.mark.parametrize("args,code,needle", [
    (("--bogus", "hi"), 2, "unrecognized arguments: --bogus"),
    (("--temperature", "-1", "hi"), 2, "temperature must be in 0..5, not -1"),
    (("--top-p", "2", "hi"), 2, "top_p must be in 0..1, not 2"),
    (("--ctx", "0", "hi"), 2, "ctx must be in 64..1048576, not 0"),
    (("--max-tokens", "lots", "hi"), 2, "max_tokens must be an integer"),
    (("-m", "/nonexistent/model.gguf", "hi"), 4, "model file not found: /nonexistent/model.gguf"),
    (("--on-overflow", "explode", "hi"), 2, "invalid choice"),
])
def test_bad_arguments_are_one_line(args, code, needle):
    fails(run_cli(*args), code, needle)


def test_bad_model_files_are_one_line(tiny_model, tmp_path):
    text = tmp_path / "notes.gguf"
    text.write_text("hello, I am not a model")
    fails(run_cli("-m", str(text), "hi"), 4, "not a GGUF model file")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_model.read_bytes()[:300_000])
    fails(run_cli("-m", str(cut), "hi"), 4, "not within the file bounds")
    assert stored() == []


def test_json_output(tiny_model):
    proc = ok(run_cli("-m", str(tiny_model), *FAST, "--json", "--seed", "3", "hi"))
    data = json.loads(proc.stdout)
    assert data["completion_tokens"] == 12 and data["finish_reason"] == "length"
    assert data["model"] == "tiny" and data["seed"] == 3
    assert data["ttft_s"] > 0 and data["tokens_per_s"] > 0
    assert data["params"]["temperature"] == 0.0
    assert data["text"] == stored()[0].messages[1].content


def test_no_log_stores_nothing(tiny_model):
    ok(run_cli("-m", str(tiny_model), *FAST, "--no-log", "hi"))
    assert stored() == []


def test_generate_samples_and_seed(tiny_model):
    args = ("generate", "-m", str(tiny_model), "--max-tokens", "15", "--temperature", "1.2", "--top-k", "0")
    a = json.loads(ok(run_cli(*args, "-n", "3", "--seed", "5", "--json", "Once upon a time")).stdout)
    b = json.loads(ok(run_cli(*args, "-n", "3", "--seed", "5", "--json", "Once upon a time")).stdout)
    assert [s["text"] for s in a["samples"]] == [s["text"] for s in b["samples"]]
    assert len({s["text"] for s in a["samples"]}) == 3
    assert [s["completion_tokens"] for s in a["samples"]] == [15, 15, 15]
    plain = ok(run_cli(*args, "--seed", "5", "Once upon a time")).stdout
    assert plain == "Once upon a time" + a["samples"][0]["text"] + "\n"
    conv = stored("generate")[-1]  # the oldest: the -n 3 run
    assert [m.role for m in conv.messages] == ["user", "assistant", "assistant", "assistant"]


def test_context_overflow_is_never_silent(tiny_model):
    long_text = "lorem ipsum dolor sit amet " * 200
    # "--": the prompt is the word summarize, not the summarize command (which chunks instead of overflowing)
    proc = fails(run_cli("-m", str(tiny_model), "--ctx", "512", "--max-tokens", "64", "--", "summarize",
                         input=long_text), 6, "context holds 512")
    assert "tokens" in proc.stderr and "--on-overflow truncate" in proc.stderr
    proc = ok(run_cli("-m", str(tiny_model), "--ctx", "512", "--max-tokens", "64", "--temperature", "0",
                      "--on-overflow", "truncate", "--", "summarize", input=long_text))
    assert "kept" in proc.stderr and "dropped" in proc.stderr
    sent = stored()[0].messages[0].content
    assert sent.endswith("\n\nsummarize") and sent.startswith("lorem ipsum")
    assert len(sent) < len(long_text)


def test_config_file_sets_defaults_and_bad_config_fails(tiny_model, isolated_dirs):
    cfg = isolated_dirs["config"]
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text(f'model = "{tiny_model}"\nmax_tokens = 7\ntemperature = 0\n')
    data = json.loads(ok(run_cli("--json", "hi")).stdout)
    assert data["model"] == "tiny" and data["completion_tokens"] == 7
    data = json.loads(ok(run_cli("--json", "--max-tokens", "9", "hi")).stdout)
    assert data["completion_tokens"] == 9  # a flag beats the config file
    (cfg / "config.toml").write_text("top_p = 3\n")
    fails(run_cli("hi"), 3, "top_p must be in 0..1")


def test_history_commands(tiny_model, tmp_path):
    for prompt in ("about penguins", "about owls"):
        ok(run_cli("-m", str(tiny_model), *FAST, prompt))
    listing = ok(run_cli("history")).stdout
    assert "about penguins" in listing and "about owls" in listing
    rows = json.loads(ok(run_cli("history", "list", "--json")).stdout)
    owls, penguins = rows[0]["id"], rows[1]["id"]
    assert rows[0]["messages"] == 2
    found = ok(run_cli("history", "search", "penguin")).stdout
    assert "about penguins" in found and "owls" not in found
    md = ok(run_cli("history", "show", str(penguins))).stdout
    assert md.startswith("# about penguins") and "## Assistant" in md
    shown = json.loads(ok(run_cli("history", "show", str(penguins), "--json")).stdout)
    assert shown["messages"][0]["content"] == "about penguins"
    out = tmp_path / "owls.json"
    ok(run_cli("history", "export", str(owls), "-f", "json", "-o", str(out)))
    assert json.loads(out.read_text())["id"] == owls
    ok(run_cli("history", "rename", str(owls), "Owl talk"))
    ok(run_cli("history", "delete", str(penguins)))
    assert [c.title for c in stored()] == ["Owl talk"]
    fails(run_cli("history", "show", "999"), 7, "no conversation 999")
    fails(run_cli("history", "delete", str(owls), "999"), 7, "no conversation 999")
    assert len(stored()) == 1  # nothing deleted when one id is wrong


def test_doctor_reports_model_params_and_paths(tiny_model, isolated_dirs):
    proc = ok(run_cli("doctor", "-m", str(tiny_model), "--temperature", "0.3"))
    out = proc.stdout
    assert "training context   1024" in out and "architecture       llama" in out
    assert "chat template      yes" in out and "GPU offload" in out
    assert "temperature" in out and "0.3" in out
    assert str(isolated_dirs["data"]) in out
    data = json.loads(ok(run_cli("doctor", "--json", "-m", str(tiny_model))).stdout)
    assert data["model"]["parameters"] > 0 and data["llama.cpp"]["system_info"]
    bad = run_cli("doctor", "-m", "/nope.gguf")
    assert bad.returncode == 1 and "model file not found" in bad.stdout


def test_repl_commands(tiny_model):
    script = "\n".join([
        "hello there",
        "/set temperature 0.2",
        "/set top_p 5",
        "/set",
        "/system be brief",
        '"""',
        "line one",
        "line two",
        '"""',
        "/regen",
        "/bogus",
        "/clear",
        "second conversation \\",
        "continued",
        "/exit",
    ]) + "\n"
    proc = ok(run_cli("chat", "-m", str(tiny_model), "--max-tokens", "8", "--ctx", "512", input=script))
    assert "top_p must be in 0..1, not 5" in proc.stderr
    assert "temperature = 0.2" in proc.stderr
    assert "unknown command /bogus" in proc.stderr
    assert ">>> " in proc.stderr and ">>> " not in proc.stdout  # prompts never pollute stdout
    first, second = sorted(stored(), key=lambda c: c.id)
    assert [m.content for m in first.messages if m.role == "user"] == ["hello there", "line one\nline two"]
    assert len(first.messages) == 4  # /regen replaced the last reply instead of adding one
    assert first.system == "be brief"
    assert first.messages[-1].params["temperature"] == 0.2
    assert second.messages[0].content == "second conversation \ncontinued"


def test_chat_continue_picks_up_last_conversation(tiny_model):
    ok(run_cli("chat", "-m", str(tiny_model), "--max-tokens", "5", input="first question\n"))
    proc = ok(run_cli("chat", "-c", "-m", str(tiny_model), "--max-tokens", "5", input="follow up\n"))
    assert "continuing conversation" in proc.stderr
    [conv] = stored()
    assert [m.content for m in conv.messages if m.role == "user"] == ["first question", "follow up"]
    fails(run_cli("chat", "--cid", "42", "-m", str(tiny_model), input=""), 7, "no conversation 42")


def test_help_and_version():
    out = ok(run_cli("--help")).stdout
    for word in ("chat", "generate", "history", "doctor", "--temperature", "--ctx", "{input}"):
        assert word in out
    assert ok(run_cli("--version")).stdout.startswith("gptterm ")
    assert "--samples" in ok(run_cli("generate", "--help")).stdout


def test_config_command_validates_and_writes_atomically(tiny_model, isolated_dirs):
    ok(run_cli("config", "set", "temperature", "0.25"))
    fails(run_cli("config", "set", "top_p", "3"), 2, "top_p must be in 0..1, not 3")
    fails(run_cli("config", "set", "model", "/nope.gguf"), 4, "model file not found")
    ok(run_cli("config", "set", "model", str(tiny_model)))
    shown = ok(run_cli("config")).stdout
    assert "temperature      0.25" in shown and "config" in shown
    assert str(tiny_model) in shown
    text = (isolated_dirs["config"] / "config.toml").read_text()
    assert "temperature = 0.25" in text and "top_p" not in text
    ok(run_cli("config", "unset", "temperature"))
    assert "temperature" not in (isolated_dirs["config"] / "config.toml").read_text()
    assert ok(run_cli("config", "path")).stdout.strip().endswith("config.toml")


def test_repl_save_persists_changed_parameters(tiny_model, isolated_dirs):
    ok(run_cli("chat", "-m", str(tiny_model), input="/set top_k 7\n/save\n"))
    assert "top_k = 7" in (isolated_dirs["config"] / "config.toml").read_text()
