"""Files written whole or not at all: the one write-temp-then-rename helper.

A temporary file beside the target is written, flushed to disk and renamed
over the target, so a crash, a full disk or Ctrl+C never leaves half a file
(a reader sees the old file or the new one). Errors are ``OSError``: each
caller turns them into its own one-line message.

Who may read the file is decided here, by where it is: in one of gptterm's
own directories (config, data, cache: ``paths.is_own``) it is its owner's
only, 0600 from the moment it exists; anywhere else (an export the user asked
for with ``-o FILE``, the Hugging Face cache) it gets the user's umask, as
any other program's file would.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gptterm import paths


def _temp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _open(tmp: Path, private: bool) -> int:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                 paths.PRIVATE_FILE if private else 0o666)
    if private:
        paths.exact_mode(fd, paths.PRIVATE_FILE)  # also a stale temporary of an earlier run
    return fd


@contextmanager
def _swap(path: Path) -> Iterator[tuple[Path, bool]]:
    """The temporary beside ``path`` and whether it is private; renamed over ``path`` or removed."""
    tmp = _temp_for(path)
    try:
        yield tmp, paths.is_own(path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; renamed over ``path`` when the block ends
    without an error, removed otherwise. For writers that take a path (llama.cpp's state files): in
    gptterm's own directories the temporary exists already, 0600, and a writer that opens it by path
    keeps that mode."""
    with _swap(Path(path)) as (tmp, private):
        if private:
            os.close(_open(tmp, True))
        yield tmp
        if private:
            os.chmod(tmp, paths.PRIVATE_FILE)  # whatever the writer did with the file


def write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """``durable=False`` skips the fsync, for caches: a reader still never sees half a file, a power cut
    may lose or empty one (its readers check it and rebuild it), and its writer (after a reply, on a model
    load) does not wait for the disk."""
    with _swap(Path(path)) as (tmp, private):
        with open(_open(tmp, private), "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())


def write_text(path: Path, text: str, encoding: str = "utf-8", *, durable: bool = True) -> None:
    write_bytes(path, text.encode(encoding), durable=durable)


def install(finished: Path, path: Path) -> None:
    """Put a file that was written whole elsewhere (a model a child process made in a work folder on the same
    filesystem) in place as ``path``: flushed to disk, then renamed over it in one step."""
    fd = os.open(finished, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if paths.is_own(path):
        os.chmod(finished, paths.PRIVATE_FILE)
    os.replace(finished, path)
