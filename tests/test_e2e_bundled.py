"""End to end on the bundled SmolLM2-135M-Instruct: real processes, real pipes, real signals."""

import json
import os
import select
import signal
import subprocess
import sys
import time

from gptterm.history.store import HistoryStore
from tests.conftest import ROOT, run_cli


def test_oneshot_answers_a_question():
    proc = run_cli("--temperature", "0", "--max-tokens", "60", "What is the capital of France?")
    assert proc.returncode == 0, proc.stderr
    assert "Paris" in proc.stdout
    assert "Traceback" not in proc.stderr and "llama" not in proc.stderr.lower()


def test_pipe_with_instruction():
    text = "The meeting moved from Monday to Thursday at 3pm because the CEO is travelling."
    proc = run_cli("--temperature", "0", "--max-tokens", "60", "--json", "On which day is the meeting?", input=text)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert "Thursday" in data["text"]
    assert data["finish_reason"] == "stop"
    assert data["prompt_tokens"] > 20


def test_generate_continues_text_without_template_and_repeats_with_seed():
    args = ("generate", "--max-tokens", "30", "--seed", "11", "--json", "Once upon a time")
    a = json.loads(run_cli(*args).stdout)
    b = json.loads(run_cli(*args).stdout)
    assert a["samples"][0]["text"] == b["samples"][0]["text"]
    assert a["samples"][0]["completion_tokens"] == 30
    assert "<|im_start|>" not in a["samples"][0]["text"]
    conv = HistoryStore().latest(kinds=("generate",))
    assert conv.messages[0].content == "Once upon a time"


def test_chat_repl_remembers_context_and_continues_across_processes():
    first = run_cli("chat", "--temperature", "0", "--max-tokens", "40",
                    input="My name is Zorblax. Please remember it.\n/exit\n", timeout=300)
    assert first.returncode == 0, first.stderr
    second = run_cli("chat", "-c", "--temperature", "0", "--max-tokens", "40", input="What is my name?\n",
                     timeout=300)
    assert second.returncode == 0, second.stderr
    assert "Zorblax" in second.stdout
    conv = HistoryStore().latest()
    assert [m.role for m in conv.messages] == ["user", "assistant", "user", "assistant"]


def _read_until(fd, predicate, timeout):
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            out += chunk
            if predicate(out):
                break
    return out


def test_ctrl_c_mid_reply_keeps_partial_reply_and_exits_130():
    proc = subprocess.Popen(
        [sys.executable, "-m", "gptterm", "--max-tokens", "1500", "--temperature", "0.8", "--seed", "1",
         "Write a very long story about a dragon who learns to bake bread. Make it at least ten paragraphs."],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    got = _read_until(proc.stdout.fileno(), lambda b: len(b) > 40, timeout=120)
    assert len(got) > 40, "no reply streamed"
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    out = (got + rest).decode()
    assert proc.returncode == 130, err
    assert b"Traceback" not in err and b"stopped" in err
    conv = HistoryStore().latest()
    reply = conv.messages[-1]
    assert reply.role == "assistant"
    assert reply.stats["finish_reason"] == "cancelled"
    assert out.rstrip("\n") == reply.content.rstrip("\n")
    assert 0 < reply.stats["completion_tokens"] < 1500


def test_ctrl_c_in_repl_stops_reply_then_exits_at_prompt():
    proc = subprocess.Popen(
        [sys.executable, "-m", "gptterm", "chat", "--max-tokens", "1500", "--temperature", "0.8", "--seed", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    # the same prompt and seed as the one-shot test above: a reply far longer than 20 characters
    proc.stdin.write(b"Write a very long story about a dragon who learns to bake bread. "
                     b"Make it at least ten paragraphs.\n")
    proc.stdin.flush()
    got = _read_until(proc.stdout.fileno(), lambda b: len(b) > 20, timeout=120)
    assert len(got) > 20
    proc.send_signal(signal.SIGINT)  # stops the reply, the REPL goes on
    proc.stdin.write(b"/set temperature 0\n")
    proc.stdin.flush()
    time.sleep(0.5)
    proc.stdin.close()  # Ctrl+D at the prompt
    proc.wait(timeout=30)
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert b"temperature = 0" in err
    conv = HistoryStore().latest()
    assert conv.messages[-1].stats["finish_reason"] == "cancelled"
