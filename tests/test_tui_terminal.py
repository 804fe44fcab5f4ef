"""The real `gptterm` TUI in a real terminal (tmux): a reply appears and no log output corrupts the screen."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

LOG_MARKERS = ("llama_", "load_tensors", "ggml_", "print_info", "llm_load", "gguf_", "Traceback")


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def wait_screen(session: str, predicate, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture(session)
        if predicate(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"screen never matched; last screen:\n{screen}")


@pytest.mark.parametrize("width, height", [(80, 24), (120, 40)])
def test_tui_in_tmux_shows_reply_without_log_garbage(isolated_dirs, width, height):
    session = f"gptterm-test-{uuid.uuid4().hex[:8]}"
    env = " ".join(f"GPTTERM_{k.upper()}_DIR={shlex.quote(str(v))}" for k, v in isolated_dirs.items())
    cmd = f"cd {shlex.quote(str(ROOT))} && env TERM=xterm-256color {env} {shlex.quote(sys.executable)} -m gptterm --temperature 0 --max-tokens 40"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), cmd],
                   check=True)
    try:
        screen = wait_screen(session, lambda s: "ready" in s, 60)
        assert not any(m in screen for m in LOG_MARKERS), screen
        subprocess.run(["tmux", "send-keys", "-t", session, "What is the capital of France?", "Enter"], check=True)
        screen = wait_screen(session, lambda s: "tok/s" in s, 60)
        assert "Assistant" in screen and "Paris" in screen, screen
        assert not any(m in screen for m in LOG_MARKERS), screen
        # the header and footer are where they belong: nothing scrolled the screen
        lines = screen.splitlines()
        assert "gptterm" in lines[0] and "Send" in lines[-1], screen
        subprocess.run(["tmux", "send-keys", "-t", session, "C-q"], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0
            if not alive or "gptterm" not in capture(session).splitlines()[0]:
                break
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
