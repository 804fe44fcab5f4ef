"""Every command through a real llama-cpp-python server (`--server`, profiles, env vars), and `gptterm serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx2

from gptterm.history.store import HistoryStore
from tests.conftest import ROOT, free_port, run_cli, wait_for_line, write_config
from tests.test_e2e_tasks import ESSAY

GREEDY = ("--temperature", "0", "--max-tokens", "16")


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def conversations():
    store = HistoryStore()
    return [store.get(c.id) for c in store.list_conversations(limit=None, kinds=("chat", "oneshot", "generate"))]


def test_oneshot_json_and_history_over_the_server(llama_server):
    proc = ok(run_cli("--server", llama_server, *GREEDY, "--json", "What is the capital of France?"))
    data = json.loads(proc.stdout)
    assert data["model"] == "smollm2" and "Paris" in data["text"]
    assert data["completion_tokens"] > 0 and data["ttft_s"] > 0 and data["tokens_per_s"] > 0
    [conv] = conversations()
    assert conv.model == "smollm2"
    assert conv.messages[1].content == data["text"] and conv.messages[1].stats["finish_reason"] == data["finish_reason"]


def test_pipe_and_verbose_stats_over_env_variable(llama_server):
    proc = ok(run_cli(*GREEDY, "-v", "what is this file about?", input="def add(a, b):\n    return a + b\n",
                      env={"OPENAI_BASE_URL": llama_server}))
    assert proc.stdout.strip()
    assert "tok/s" in proc.stderr and "first token" in proc.stderr


def test_generate_over_a_named_profile(llama_server, isolated_dirs):
    write_config(isolated_dirs, f'server = "box"\n[servers.box]\nurl = "{llama_server}"\nctx = 2048\n')
    proc = ok(run_cli("generate", "--temperature", "0", "--max-tokens", "10", "--no-echo", "--json",
                      "Once upon a time"))
    sample = json.loads(proc.stdout)["samples"][0]
    assert sample["text"].strip() and sample["finish_reason"] == "length" and sample["completion_tokens"] == 10
    [conv] = conversations()
    assert conv.kind == "generate" and conv.messages[-1].content == sample["text"]
    # --server local (or GPTTERM_SERVER=local) overrides the config file's server
    local = ok(run_cli("generate", "--server", "local", "--temperature", "0", "--max-tokens", "10", "--no-echo",
                       "--json", "Once upon a time"))
    assert json.loads(local.stdout)["model"] == "SmolLM2-135M-Instruct.Q4_1"


def test_ctrl_c_stops_the_remote_reply_and_keeps_it(llama_server):
    from tests.test_e2e_bundled import _read_until

    proc = subprocess.Popen(
        [sys.executable, "-m", "gptterm", "--server", llama_server, "--max-tokens", "1500", "--temperature", "0.8",
         "Write a very long story about a dragon who learns to bake bread, in ten paragraphs."],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    got = _read_until(proc.stdout.fileno(), lambda b: len(b) > 40, timeout=60)
    assert len(got) > 40, "no reply streamed"
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and b"stopped" in err
    reply = HistoryStore().latest().messages[-1]
    assert reply.stats["finish_reason"] == "cancelled"
    assert (got + rest).decode().rstrip("\n") == reply.content.rstrip("\n")
    assert 0 < reply.stats["completion_tokens"] < 1500


def test_repl_keeps_the_conversation_over_the_server(llama_server):
    script = "My name is Ada.\n/set max_tokens 8\nWhat is my name?\n/exit\n"
    proc = ok(run_cli("chat", "--server", llama_server, "--ctx", "2048", "--temperature", "0", "--max-tokens", "24",
                      input=script))
    assert "smollm2 on " + llama_server in proc.stderr  # the banner names the server
    [conv] = conversations()
    assert [m.role for m in conv.messages] == ["user", "assistant", "user", "assistant"]
    assert conv.messages[-1].stats["completion_tokens"] <= 8


def test_summarize_in_parts_over_the_server(llama_server, tmp_path):
    doc = tmp_path / "essay.txt"
    doc.write_text(ESSAY * 3)
    proc = ok(run_cli("summarize", "--server", llama_server, "--ctx", "512", "--length", "short", "--json",
                      str(doc), timeout=300))
    data = json.loads(proc.stdout)
    parts = [c for c in data["chunks"] if not c.get("final")]
    assert len(parts) >= 2, "the text should not have fit a 512-token context"
    assert data["text"].strip() and data["model"] == "smollm2"
    for c in data["chunks"]:
        assert c["prompt_tokens"] + c["completion_tokens"] <= 512


def test_translate_over_the_server(llama_server):
    src = "Good morning.\n\nThe weather is nice today.\n"
    proc = ok(run_cli("translate", "--server", llama_server, "--to", "fr", "--json", input=src, timeout=300))
    data = json.loads(proc.stdout)
    assert data["target"] == "French" and data["text"].strip()
    assert data["text"].count("\n\n") == 1  # paragraphs kept


def test_doctor_shows_the_server_backend(llama_server):
    data = json.loads(ok(run_cli("doctor", "--json", "--server", llama_server)).stdout)
    backend = data["backend"]
    assert backend["kind"] == "remote" and backend["reachable"] and backend["models"] == ["smollm2"]
    assert backend["token_counts"].startswith("server")
    assert "model" not in data  # no local model is described when a server is used
    text = ok(run_cli("doctor")).stdout
    assert "backend: local" in text


def test_serve_shares_a_model_on_localhost(isolated_dirs):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gptterm", "serve", "--port", str(port), "--ctx", "1024",
                             "--threads", "1", "--name", "shared"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert wait_for_line(proc.stderr, "Uvicorn running on", 120, lines), "".join(lines)
        assert f"http://127.0.0.1:{port}" in "".join(lines)  # bound to localhost by default
        assert "gptterm --server" in lines[0]
        url = f"http://127.0.0.1:{port}"  # without /v1: gptterm adds it
        data = json.loads(ok(run_cli("--server", url, *GREEDY, "--json", "Say hello.")).stdout)
        assert data["model"] == "shared" and data["text"].strip()
        assert httpx2.get(f"{url}/v1/models").json()["data"][0]["id"] == "shared"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_serve_without_the_server_extra_says_how_to_install_it(tmp_path):
    shadow = tmp_path / "shadow" / "sse_starlette"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('simulated: not installed')\n")
    proc = run_cli("serve", env={"PYTHONPATH": str(shadow.parent)})
    assert proc.returncode == 12
    assert proc.stderr.strip().splitlines() == [
        "gptterm: error: gptterm serve needs llama-cpp-python's server extra (missing: sse_starlette): "
        "pip install 'gptterm[server]'"]
