"""Files written whole or not at all: the one write-temp-then-rename helper.

A temporary file beside the target is written, flushed to disk and renamed
over the target, so a crash, a full disk or Ctrl+C never leaves half a file
(a reader sees the old file or the new one). Errors are ``OSError``: each
caller turns them into its own one-line message.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _temp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; renamed over ``path`` when the block ends
    without an error, removed otherwise. For writers that take a path (llama.cpp's state files)."""
    path = Path(path)
    tmp = _temp_for(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """``durable=False`` skips the fsync, for caches: a reader still never sees half a file, a power cut
    may lose or empty one (its readers check it and rebuild it), and its writer (after a reply, on a model
    load) does not wait for the disk."""
    with replacing(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())


def write_text(path: Path, text: str, encoding: str = "utf-8", *, durable: bool = True) -> None:
    write_bytes(path, text.encode(encoding), durable=durable)
