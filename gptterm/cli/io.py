"""Terminal and pipe plumbing shared by the commands.

stdout carries only results; everything else (notes, progress, statistics)
goes to stderr through ``note``.
"""

from __future__ import annotations

import codecs
import math
import os
import sys
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from gptterm import textio
from gptterm.errors import GpttermError, InputError
from gptterm.session.turn import CallEnded, Event, TextDelta, ThinkingDelta
from gptterm.types import Reply

if TYPE_CHECKING:
    from gptterm.session.turn import Turn

def note(message: str) -> None:
    """A one-line diagnostic on stderr (above the status line, while one is shown)."""
    line = f"gptterm: {message}"
    if _STATUSES:
        _STATUSES[-1].print_line(line)
    else:
        print(line, file=sys.stderr, flush=True)


def table(rows: Iterable[Iterable[Any]], header: Iterable[str]) -> None:
    """Columns padded to their widest cell, two spaces apart, the header first (None prints as empty)."""
    head = list(map(str, header))
    cells = [head] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def fields(lines: Iterable[tuple[str, Any]]) -> None:
    """'key  value' lines, the values in one column."""
    rows = list(lines)
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


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


_STATUSES: list["Status"] = []


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


class Status:
    """The progress display of every long command (summarize, translate, indexing, perplexity, downloads).

    On a terminal: one transient line on stderr drawn by rich's live display (a bar when the fraction done
    is known, then the text), redrawn each second while it is shown and erased when done. When stdout is
    the same terminal, results are written through ``output``: the line steps aside before a piece of the
    result and comes back only at the start of a line, so it never mixes into the streamed text. When
    stderr is not a terminal, only ``final`` lines are printed, one each (logs stay readable). Used as a
    context manager; ``note`` prints above it meanwhile."""

    TICK_S = 1.0

    def __init__(self) -> None:
        self.tty = _isatty(sys.stderr)
        self.shares = self.tty and _isatty(sys.stdout)
        self._text: str | Callable[[], str] = ""
        self._fraction: float | Callable[[], float | None] | None = None
        self._line_start = True
        self._live: Any = None
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> "Status":
        _STATUSES.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def show(self, text: str | Callable[[], str], *, fraction: float | Callable[[], float | None] | None = None,
             final: bool = False) -> None:
        """Show ``text`` (or what a callable gives, read again each second); ``final``: also a plain line
        off a terminal."""
        if not self.tty:
            if final:
                self.log(text() if callable(text) else text)
            return
        with self._lock:
            self._text, self._fraction = text, fraction
            if not self.shares or self._line_start:
                self._draw()
        if self._ticker is None and (callable(text) or callable(fraction)):
            self._ticker = threading.Thread(target=self._tick, name="gptterm-status", daemon=True)
            self._ticker.start()

    def output(self, write: Callable[[str], Any], text: str) -> None:
        """Write a piece of the result (stdout) with the status line out of its way."""
        if not self.shares:
            write(text)
            return
        with self._lock:
            self._hide()
            write(text)
            if text:
                self._line_start = text.endswith("\n")
            if self._line_start and self._text:
                self._draw()

    def log(self, line: str) -> None:
        """A plain progress line, printed only when stderr is not a terminal (where the live line says it)."""
        if not self.tty:
            print(f"gptterm: {line}", file=sys.stderr, flush=True)

    def print_line(self, line: str) -> None:
        """A line of its own on stderr (a note), above the status line."""
        with self._lock:
            if self._live is not None:
                self._live.console.print(line, markup=False, highlight=False, soft_wrap=True)
                return
            if self.shares and not self._line_start:
                sys.stderr.write("\n")  # after a part of the result that has no line end yet
                self._line_start = True
            print(line, file=sys.stderr, flush=True)

    def clear(self) -> None:
        with self._lock:
            self._text = ""
            self._hide()

    def close(self) -> None:
        self._closed.set()
        self.clear()
        if self in _STATUSES:
            _STATUSES.remove(self)

    def _renderable(self) -> Any:
        from rich.progress_bar import ProgressBar  # heavy: rich (only a shown status line pays for it)
        from rich.table import Table
        from rich.text import Text

        text = self._text() if callable(self._text) else self._text
        fraction = self._fraction() if callable(self._fraction) else self._fraction
        grid = Table.grid(padding=(0, 1))
        line = Text(text, no_wrap=True, overflow="ellipsis")
        if fraction is None:
            grid.add_row(line)
        else:
            grid.add_row(ProgressBar(total=1.0, completed=max(0.0, min(1.0, fraction)), width=20), line)
        return grid

    def _draw(self) -> None:
        if not self._text:
            return
        if self._live is None:
            from rich.console import Console  # heavy: rich (only a shown status line pays for it)
            from rich.live import Live

            self._live = Live(self._renderable(), console=Console(stderr=True), transient=True, auto_refresh=False,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start(refresh=True)
        else:
            self._live.update(self._renderable(), refresh=True)

    def _hide(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()

    def _tick(self) -> None:
        while not self._closed.wait(self.TICK_S):
            with self._lock:
                if self._live is not None:
                    self._draw()


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
def keeping_partial(reply: Reply | Turn | None, writer: "StdoutWriter | TurnWriter", *, logged: bool) -> Iterator[None]:
    """When a reply fails midway (e.g. a server drops the stream), end its line and say what was kept."""
    try:
        yield
    except GpttermError:
        writer.end_line()
        if reply is not None and reply.text:
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
        from gptterm import probability  # only --show-probs needs it: the fast paths (--help, completion) stay light

        logprobs = (self.reply.logprobs if self.reply is not None else None) or []
        new, self.seen = logprobs[self.seen:], len(logprobs)
        colour = probability.colour(min((math.exp(t.logprob) for t in new), default=1.0))
        return text if colour is None else f"\033[38;5;{colour}m{text}\033[0m"


class TurnWriter:
    """Writes a turn's events (gptterm.session.turn): the answer to ``writer``, a reasoning model's thinking
    before it (a <think> block).

    With ``show`` the thinking is printed before the answer: dimmed on a terminal, between ``<think>``
    and ``</think>`` lines in a pipe. Without it, a terminal shows a transient "thinking…" status on
    stderr until the answer starts, and a pipe gets the answer only.
    """

    def __init__(self, writer: StdoutWriter, *, show: bool, steps: Callable[[Event], None] | None = None) -> None:
        """``steps``: shows the other events (tool calls, on stderr)."""
        self.writer, self.show = writer, show
        self.steps = steps
        self.tty = _isatty(sys.stdout) and "NO_COLOR" not in os.environ
        self.open = False
        self.words = 0
        self.status: Status | None = None
        self.started = False

    @property
    def broken(self) -> bool:
        return self.writer.broken

    def __call__(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.text(event.text)
        elif isinstance(event, ThinkingDelta):
            self.thinking(event.text)
        elif self.steps is not None and not isinstance(event, CallEnded):
            self.writer.end_line()  # a step's text ends its line: the next step's starts a new one
            self.steps(event)

    def thinking(self, text: str) -> None:
        if self.started:
            return
        if self.show:
            if not self.open:
                self.open = True
                text = text.lstrip("\n")
                self.writer("" if self.tty else "<think>\n")
            self.writer(f"\033[2m{text}\033[0m" if self.tty and text else text)
            return
        self.words += len(text.split())
        if self.status is None:
            self.status = Status().__enter__()
        self.status.show(f"thinking… {self.words} words")

    def text(self, text: str) -> None:
        if not self.started:
            self.started = True
            if self.status is not None:
                self.status.close()
            if self.open:
                self.writer.end_line()
                self.writer("\n" if self.tty else "</think>\n\n")
        self.writer(text)

    def end_line(self) -> None:
        self.close()
        self.writer.end_line()

    def close(self) -> None:
        if self.status is not None:
            self.status.close()
        if self.open and not self.started:  # thought to the end: no answer came
            self.started = True
            self.writer.end_line()
            if not self.tty:
                self.writer("</think>\n")


def run_turn(turn: Turn, writer: TurnWriter | None, steps: Callable[[Event], None] | None = None) -> bool:
    """Stream ``turn``'s events through ``writer`` (None: no text is written, --json; ``steps`` still shows the
    tool steps); Ctrl+C stops the model, or the tool. Returns True if interrupted."""
    if writer is not None:
        return run_stream(turn.events(), turn.cancel, writer)

    def quiet(event: Event) -> None:
        if steps is not None and not isinstance(event, (TextDelta, ThinkingDelta, CallEnded)):
            steps(event)

    return run_stream(turn.events(), turn.cancel, quiet)
