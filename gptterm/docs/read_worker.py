"""Reading the files an index update needs, beside the writing: in a thread, or for much text in a process.

The reading side (bytes, decoding, passages, CJK pairs: all Python) runs
beside the writing side (SQLite). In a thread the two share the interpreter
lock, and SQLite must take it back after every row it writes: on 100 MB the
index grew at 13-14 MB/s so. A child process (``python -m
gptterm.docs.read_worker``) reads on its own interpreter and sends its steps
through a pipe (pickled): 16-19 MB/s. Starting it costs about 0.1 s, so it
is used only when there are at least ``PROCESS_BYTES`` to read.

Either way the writer gets the same steps, in file order: per file ``Begin``,
its passages in ``Batch``-es, ``End``; or ``Same`` (read: the bytes did not
change) or ``Skip`` (not indexed, and why).
"""

from __future__ import annotations

import pickle
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from gptterm.docs import passages as cutter
from gptterm.docs import terms, textfiles
from gptterm.errors import DocsError, GpttermError

BATCH = 500  # passages handed over at a time: a huge file never sits whole in memory
PROCESS_BYTES = 16 * 1024 * 1024


@dataclass
class Skip:
    path: str
    reason: str
    row: tuple | None


@dataclass
class Same:
    """A file whose time changed but whose bytes did not (read, and not indexed again)."""

    path: str
    size: int
    mtime_ns: int
    row: tuple


@dataclass
class Begin:
    path: str
    size: int
    mtime_ns: int
    row: tuple | None


@dataclass
class Batch:
    """Passages as (first line, last line, text), and their text as indexed. Plain tuples and strings
    (paths too): unpickled in C, where dataclasses and ``Path``-s would cost the writer 10% of its time."""

    passages: list[tuple[int, int, str]]
    terms: list[str]


@dataclass
class End:
    path: str
    sha256: str
    note: str | None


Step = Skip | Same | Begin | Batch | End
#: a file to read: its path, size, modification time and the index's row for it (None: new)
ToRead = tuple[str, int, int, "tuple | None"]


def steps(files: list[ToRead]) -> Iterator[Step]:
    """Read ``files`` in order into steps."""
    for file, size, mtime_ns, row in files:
        path = Path(file)
        try:
            reason = textfiles.sniff(path)
            if reason:
                yield Skip(file, reason, row)
                continue
            opened = textfiles.Opened(path)
            if size <= textfiles.STREAM_BYTES and row is not None and opened.sha256 == row[3]:
                yield Same(file, size, mtime_ns, row)
                continue
            code = textfiles.kind(path) == "code"
            yield Begin(file, size, mtime_ns, row)
            batch: list[tuple[int, int, str]] = []
            for first_line, text in opened.slices:
                for p in cutter.cut(text, first_line=first_line, code=code):
                    batch.append((p.start_line, p.end_line, p.text))
                    if len(batch) >= BATCH:
                        yield Batch(batch, [terms.index_text(t) for _, _, t in batch])
                        batch = []
            if batch:
                yield Batch(batch, [terms.index_text(t) for _, _, t in batch])
            yield End(file, opened.sha256, opened.note)
        except OSError as err:
            yield Skip(file, f"cannot read it ({err.strerror or err})", row)
        except GpttermError as err:
            yield Skip(file, str(err), row)


class Reading:
    """The steps of ``files``, read beside the caller: iterate, then ``close()`` (which also stops early)."""

    def __init__(self, files: list[ToRead]) -> None:
        total = sum(size for _, size, _, _ in files)
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        if total >= PROCESS_BYTES:
            self._errors = tempfile.TemporaryFile()
            try:
                self._proc = subprocess.Popen([sys.executable, "-m", "gptterm.docs.read_worker"], stdin=subprocess.PIPE,
                                              stdout=subprocess.PIPE, stderr=self._errors)
            except OSError:
                self._proc = None  # no interpreter to start (an embedded one): read in a thread
                self._errors.close()
            else:
                self._send(files)
                return
        self._queue: queue.Queue[Step | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._read, args=(files,), daemon=True, name="gptterm-docs-read")
        self._thread.start()

    def _send(self, files: list[ToRead]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        # written from a thread: the child starts sending steps before it has read the whole list
        data = pickle.dumps(files, protocol=pickle.HIGHEST_PROTOCOL)
        stdin = self._proc.stdin

        def write() -> None:
            try:
                stdin.write(data)
                stdin.close()
            except OSError:  # the child is gone: its end of the steps says why
                pass

        threading.Thread(target=write, daemon=True, name="gptterm-docs-send").start()

    def _read(self, files: list[ToRead]) -> None:
        def put(step: Step | None) -> bool:
            while not self._stop.is_set():
                try:
                    self._queue.put(step, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            for step in steps(files):
                if not put(step):
                    return
        finally:
            put(None)

    def __iter__(self) -> Iterator[Step]:
        if self._proc is None:
            while (step := self._queue.get()) is not None:
                yield step
            return
        assert self._proc.stdout is not None
        while True:
            try:
                step = pickle.load(self._proc.stdout)
            except (EOFError, pickle.UnpicklingError, OSError):
                raise DocsError(f"the document reader stopped: {self._child_error()}") from None
            if step is None:
                return
            yield step

    def _child_error(self) -> str:
        assert self._proc is not None
        code = self._proc.wait()
        self._errors.seek(0)
        lines = self._errors.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {code}"

    def close(self) -> None:
        self._stop.set()
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
            self._errors.close()
        elif self._thread is not None:
            while self._thread.is_alive():  # the thread sees the stop at its next hand-over
                try:
                    self._queue.get(timeout=0.05)
                except queue.Empty:
                    pass


def _serve(source: IO[bytes], sink: IO[bytes]) -> None:
    files = pickle.load(source)
    for step in steps(files):
        pickle.dump(step, sink, protocol=pickle.HIGHEST_PROTOCOL)
    pickle.dump(None, sink)
    sink.flush()


if __name__ == "__main__":
    # Ctrl+C reaches the whole process group: the parent decides, and stops this one if it must.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from gptterm.docs import read_worker  # the steps must be pickled as this module's classes, not __main__'s

    try:
        read_worker._serve(sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the parent stopped reading (cancelled)
        pass
