"""Terminal and pipe plumbing shared by the commands.

stdout carries only results; everything else (notes, progress, statistics)
goes to stderr through ``note``.
"""

from __future__ import annotations

import codecs
import os
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from gptterm import textio
from gptterm.engine.base import Reply
from gptterm.errors import GpttermError, InputError

def note(message: str) -> None:
    """A one-line diagnostic on stderr."""
    print(f"gptterm: {message}", file=sys.stderr, flush=True)


def utf8_streams() -> None:
    """Output is UTF-8 whatever the locale says (PYTHONIOENCODING, a Latin-1 locale); a character that
    is not text (a surrogate from an undecodable file name) is written as ?, never a traceback or a
    stray byte on the terminal."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            if codecs.lookup(stream.encoding).name != "utf-8" or stream.errors != "replace":
                reconfigure(encoding="utf-8", errors="replace")
        except (LookupError, ValueError, OSError):
            pass


class StatusLine:
    """Progress on stderr: one line rewritten in place on a terminal (cleared before results are written
    and at the end), a plain line per ``final`` update otherwise, so logs stay readable."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = False

    def show(self, line: str, *, final: bool = False) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
            sys.stderr.flush()
            self.shown = True
        elif final:
            note(line)

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False


def stdin_is_piped() -> bool:
    try:
        return not sys.stdin.isatty()
    except (AttributeError, ValueError):  # closed or missing stdin
        return False


def read_stdin_decoded(encoding: str | None = None) -> textio.Decoded | None:
    """Piped stdin decoded by ``textio`` (``encoding``: --encoding or the config's), or None when stdin is a
    terminal or absent. How it was read, when that was a guess, is noted on stderr; bytes that are not text
    are an InputError (exit 5), never replacement characters handed to the model."""
    if sys.stdin is None or not stdin_is_piped():
        return None
    try:
        data = sys.stdin.buffer.read()
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read stdin: {err}") from None
    decoded = textio.decode(data, "stdin", encoding)
    if (line := decoded.note("stdin")) is not None:
        note(line)
    return decoded


def read_stdin(encoding: str | None = None) -> str | None:
    """Piped stdin as text (see ``read_stdin_decoded``), or None when stdin is a terminal or absent."""
    decoded = read_stdin_decoded(encoding)
    return None if decoded is None else decoded.text


def run_reply(reply: Reply, cancel: Callable[[], None], write: Callable[[str], Any]) -> bool:
    """Stream ``reply`` through ``write``; Ctrl+C stops it. Returns True if interrupted."""
    return run_stream(reply, cancel, write)


@contextmanager
def keeping_partial(reply: Reply, writer: "StdoutWriter", *, logged: bool) -> Iterator[None]:
    """When a reply fails midway (e.g. a server drops the stream), end its line and say what was kept."""
    try:
        yield
    except GpttermError:
        writer.end_line()
        if reply.text:
            note("the partial reply is kept in history, marked incomplete" if logged else "the reply is incomplete")
        raise


def run_stream(items: Iterable[Any], cancel: Callable[[], None], handle: Callable[[Any], Any]) -> bool:
    """Hand each item of ``items`` to ``handle``; Ctrl+C calls ``cancel``. Returns True if interrupted.

    The items are produced and handled in a worker thread so that Ctrl+C
    reaches the main thread at once, even while llama.cpp evaluates a long
    prompt in C; the main thread then asks for a stop and keeps what was
    produced. The main thread only waits: passing each token to it would wake
    it once per token, and on a 2-core machine that wake-up takes the core
    llama.cpp's threads decode on (measured: 10% of the decode rate).
    """
    failure: list[BaseException] = []
    finished = threading.Event()

    def work() -> None:
        try:
            for piece in items:
                handle(piece)
                if getattr(handle, "broken", False):
                    cancel()
        except BaseException as err:  # handed to the main thread
            failure.append(err)
        finally:
            finished.set()

    worker = threading.Thread(target=work, name="gptterm-reply", daemon=True)
    worker.start()
    interrupted = False
    # An Event, not Thread.join: a KeyboardInterrupt inside join(timeout) can
    # leave Python 3.11 believing the thread has ended while it still runs.
    while not finished.is_set():
        try:
            finished.wait(0.25)
        except KeyboardInterrupt:
            interrupted = True
            cancel()
    worker.join()
    if failure:
        raise failure[0]
    return interrupted


class StdoutWriter:
    """Writes reply text to stdout as it arrives; remembers whether a newline ended it."""

    def __init__(self) -> None:
        self.last = "\n"
        self.broken = False

    def __call__(self, text: str) -> None:
        if self.broken or not text:
            return
        try:
            sys.stdout.write(self.decorate(text))
            sys.stdout.flush()
            self.last = text[-1]
        except BrokenPipeError:
            self.reader_gone()

    def reader_gone(self) -> None:
        """The reader went away (e.g. `| head`): stop generating, finish quietly, and keep Python from
        complaining at exit."""
        self.broken = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)

    def decorate(self, text: str) -> str:
        return text

    def end_line(self) -> None:
        if self.last != "\n":
            self("\n")

    def finish(self) -> None:
        """After the last piece: write what is held back, say what was lost (see EncodedWriter)."""


class EncodedWriter(StdoutWriter):
    """Writes text to stdout in another encoding than UTF-8 (--output-encoding), through an incremental
    encoder: characters the encoding cannot hold become ? and are counted (``finish`` says how many)."""

    def __init__(self, encoder: textio.Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def __call__(self, text: str) -> None:
        if self.broken or not text:
            return
        self._write(self.encoder.encode(text))
        self.last = text[-1]

    def _write(self, data: bytes) -> None:
        try:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            self.reader_gone()

    def finish(self) -> None:
        """Flush what the encoder holds back; say once how many characters were replaced."""
        if not self.broken:
            self._write(self.encoder.encode("", final=True))
        if (line := self.encoder.note()) is not None:
            note(line)


class ProbabilityWriter(StdoutWriter):
    """Colours each streamed piece by the least likely of the tokens that made it (a piece can hold
    several tokens, or none yet, when a character spans tokens)."""

    def __init__(self, reply: Reply | None = None) -> None:
        super().__init__()
        self.follow(reply)

    def follow(self, reply: Reply | None) -> None:
        """Colour by ``reply``'s tokens from now on (``generate -n`` streams several replies)."""
        self.reply = reply
        self.seen = 0

    def decorate(self, text: str) -> str:
        import math

        from gptterm import probability

        logprobs = (self.reply.logprobs if self.reply is not None else None) or []
        new, self.seen = logprobs[self.seen:], len(logprobs)
        colour = probability.colour(min((math.exp(t.logprob) for t in new), default=1.0))
        return text if colour is None else f"\033[38;5;{colour}m{text}\033[0m"
