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

_MAX_LINES = 1000
_lines: list[str] = []
_dropped = [0]  # lines discarded from the front, so positions stay absolute
_lock = threading.Lock()
_partial = [""]
_callback = None  # keeps the ctypes callback alive for the process lifetime
_echo = os.environ.get("GPTTERM_LLAMA_LOG") == "1"

LEVEL_ERROR = 3
LEVEL_WARN = 2


def install() -> None:
    """Install the callback once; safe to call repeatedly."""
    global _callback
    if _callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        try:
            chunk = text.decode("utf-8", "replace")
        except Exception:  # never raise into C
            return
        if _echo:
            sys.stderr.write(chunk)
        with _lock:
            buf = _partial[0] + chunk
            *complete, rest = buf.split("\n")
            _partial[0] = rest
            _lines.extend(line for line in complete if line.strip())
            if len(_lines) > _MAX_LINES:
                cut = len(_lines) - _MAX_LINES // 2
                del _lines[:cut]
                _dropped[0] += cut

    _callback = _on_log
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))


def mark() -> int:
    """A position in the log; ``since(mark)`` returns the lines logged after it."""
    with _lock:
        return _dropped[0] + len(_lines)


def since(position: int) -> list[str]:
    with _lock:
        return _lines[max(0, position - _dropped[0]):]


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
