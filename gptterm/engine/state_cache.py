"""Saved KV states of conversations, so ``chat -c`` does not re-read the history.

A conversation's evaluated tokens and KV cache are written next to the
history after each reply (llama.cpp's sequence state files), keyed by the
conversation and by what the state is valid for: the model file and the
context size. A checksum beside each file keeps a damaged state from ever
being loaded (the history is then simply evaluated again). The directory is
capped in size; the least recently used states go first.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from gptterm import atomic, paths
from gptterm.errors import GpttermError

if TYPE_CHECKING:
    from gptterm.engine.base import Engine

DEFAULT_MAX_BYTES = 2 * 1024**3
# Shorter histories re-evaluate in well under a second: not worth a file.
MIN_TOKENS = 200


@runtime_checkable
class SavesState(Protocol):
    """An engine that writes its KV state to a file and reads it back: the local engine, not a server."""

    @property
    def evaluated_tokens(self) -> int:
        """Tokens whose KV state is in the context now (what a saved state would hold)."""
        ...

    def state_key(self) -> str:
        """What a saved state is valid for (model file, context size, KV layout), as a file-name part."""
        ...

    def save_state(self, path: Path) -> int: ...

    def load_state(self, path: Path) -> int: ...


def _crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc


class StateCache:
    def __init__(self, directory: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
        self.directory = directory or paths.cache_dir() / "kv"
        self.max_bytes = max_bytes

    def _path(self, engine: SavesState, conversation_id: int) -> Path:
        return self.directory / f"conversation-{conversation_id}-{engine.state_key()}.kvstate"

    def save(self, engine: Engine, conversation_id: int) -> int:
        """Save the engine's current state for the conversation; returns tokens saved (0: skipped)."""
        if not isinstance(engine, SavesState) or engine.evaluated_tokens < MIN_TOKENS:
            return 0
        path = self._path(engine, conversation_id)
        try:
            paths.private_dir(self.directory)
            with atomic.replacing(path) as tmp:  # llama.cpp writes the state itself, by path (0600: atomic)
                n = engine.save_state(tmp)
                meta = {"tokens": n, "crc32": _crc(tmp), "size": tmp.stat().st_size}
            atomic.write_text(path.with_suffix(".json"), json.dumps(meta), durable=False)
        except (OSError, GpttermError):
            return 0  # a cache: failing to save only costs speed later
        self._evict(keep=path)
        return n

    def load(self, engine: Engine, conversation_id: int) -> int:
        """Restore the conversation's state if a sound one exists; returns tokens restored."""
        if not isinstance(engine, SavesState):
            return 0
        path = self._path(engine, conversation_id)
        meta_path = path.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text())
            sound = path.stat().st_size == meta["size"] and _crc(path) == meta["crc32"]
        except (OSError, ValueError, KeyError, TypeError):
            sound = False
        if not sound:
            self._drop(path)
            return 0
        n = engine.load_state(path)
        if n == 0:
            self._drop(path)
            return 0
        os.utime(path)  # recently used
        return n

    def forget(self, conversation_id: int) -> None:
        for path in self.directory.glob(f"conversation-{conversation_id}-*"):
            path.unlink(missing_ok=True)

    def _drop(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)

    def _evict(self, keep: Path) -> None:
        states = sorted(self.directory.glob("*.kvstate"), key=lambda p: p.stat().st_mtime, reverse=True)
        total = 0
        for path in states:
            total += path.stat().st_size
            if total > self.max_bytes and path != keep:
                self._drop(path)
