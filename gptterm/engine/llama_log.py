"""Route llama.cpp's log into memory instead of the terminal.

llama-cpp-python's ``verbose=False`` silences llama.cpp by pointing fds 1 and
2 at /dev/null for the whole process while a model loads, which would blank
a TUI or a streaming CLI. Instead gptterm installs its own log callback
(``llama_log_set``): lines are kept in a ring buffer so a failed load can say
why, and are echoed to stderr only when ``GPTTERM_LLAMA_LOG=1``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections import deque

# Raw chunks as llama.cpp hands them over (often a piece of a line): the
# callback runs ~2,000 times while a model loads, so it only stores bytes;
# lines are made when someone asks for them.
_MAX_CHUNKS = 4000
_chunks: deque[bytes] = deque(maxlen=_MAX_CHUNKS)
_count = [0]  # chunks ever logged: positions stay absolute as old ones drop out
_lock = threading.Lock()
_callback = None  # keeps the ctypes callback alive for the process lifetime
_echo = os.environ.get("GPTTERM_LLAMA_LOG") == "1"

LEVEL_ERROR = 3
LEVEL_WARN = 2


def install() -> None:
    """Install the callback once; safe to call repeatedly."""
    global _callback
    if _callback is not None:
        return
    import llama_cpp  # heavy: llama_cpp (only the commands that load a model pay for it)

    @llama_cpp.llama_log_callback
    def _on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        with _lock:
            _chunks.append(text)
            _count[0] += 1
        if _echo:
            sys.stderr.write(text.decode("utf-8", "replace"))

    _callback = _on_log
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


def mark() -> int:
    """A position in the log; ``since(mark)`` returns the lines logged after it."""
    with _lock:
        return _count[0]


def since(position: int) -> list[str]:
    with _lock:
        new = min(len(_chunks), _count[0] - position)
        chunks = list(_chunks)[len(_chunks) - new:] if new > 0 else []
    text = b"".join(chunks).decode("utf-8", "replace")
    return [line for line in text.split("\n") if line.strip()]


def failure_reason(lines: list[str]) -> str | None:
    """The most telling line of a failed load: llama.cpp's own error, minus its prefix."""
    keywords = ("error", "failed", "invalid", "not within", "truncated", "unknown", "unsupported", "corrupt")
    for line in reversed(lines):
        low = line.lower()
        if any(k in low for k in keywords) and "failed to load model from file" not in low and "llama_model_load_from_file" not in low:
            text = line.strip()
            # "gguf_init_from_file_impl: invalid magic ..." -> "invalid magic ..."
            if ": " in text and text.split(": ", 1)[0].replace("_", "").isalnum():
                text = text.split(": ", 1)[1]
            return text
    return None
