"""TUI: time to first frame, and streaming decode rate against the CLI.

The real ``gptterm`` runs in a pseudo-terminal (120x40). First frame: from
spawning the process to the first screen that shows the status line (the
model is still loading then). Streaming: a prompt is typed, Enter pressed,
and the tokens/s the app reports for the reply is read from the screen;
the anchor is the CLI (``gptterm -v``) streaming the same greedy reply
into a pseudo-terminal read the same way.
Runs are interleaved; medians.

    python bench/tui.py [--rounds 3] [--tokens 200]
"""

from __future__ import annotations

import argparse
import compileall
import codecs
import os
import pty
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

INCOMPLETE = re.compile(rb"\x1b(\[[0-9;?]*[ -/]*|[()])?$")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]")
PROMPT = "Write a long essay about the history of the printing press ({i})."


class Term:
    def __init__(self, args: list[str], env: dict[str, str]):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvpe(args[0], args, env)
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.raw = bytearray()
        self.reset()

    def reset(self) -> None:
        """Forget the output so far (the screen's text is then what comes next)."""
        self.raw.clear()
        self._text: list[str] = []
        self._unparsed = b""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def text(self) -> str:
        return "".join(self._text)

    def _take(self, chunk: bytes) -> None:
        # Only the new bytes are stripped of escapes: re-parsing the whole
        # output on every read cost this process CPU the app under test needs.
        self.raw += chunk
        data = self._unparsed + chunk
        cut = INCOMPLETE.search(data)
        end = cut.start() if cut else len(data)
        self._unparsed = data[end:]
        self._text.append(self._decoder.decode(ANSI.sub(b"", data[:end])))

    def read_until(self, predicate, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.02)
            if ready:
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except OSError:
                    return None
                self._take(chunk)
                # the latest output, with the end of the one before (a word may straddle reads)
                if predicate(self._text[-2][-200:] + self._text[-1] if len(self._text) > 1 else self.text()):
                    return time.monotonic()
        return None

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
            os.waitpid(self.pid, 0)
        except OSError:
            pass


KEY = "¤"  # a character the model does not write: its arrival on screen is the key's echo


def tui_round(env: dict[str, str], i: int, tokens: int, keys: int) -> tuple[float, float | None, list[float]]:
    start = time.monotonic()
    term = Term([sys.executable, "-m", "gptterm", "--temperature", "0", "--max-tokens", str(tokens)], env)
    try:
        first = term.read_until(lambda t: "context" in t or "loading model" in t, 20)
        first_frame = (first or float("nan")) - start
        term.read_until(lambda t: "ready" in t, 30)
        term.reset()
        term.send(PROMPT.format(i=i).encode() + b"\r")
        # keys typed into the prompt while the reply streams: time until the screen shows each
        term.read_until(lambda t: "Assistant" in t, 30)
        term.read_until(lambda t: False, 0.5)
        latencies = []
        for _ in range(keys):
            mark = len(term.raw)
            sent = time.monotonic()
            term.send(KEY.encode())
            shown = term.read_until(lambda _t, mark=mark: KEY.encode() in term.raw[mark:], 5)
            if shown is not None:
                latencies.append(shown - sent)
            term.read_until(lambda t: False, 0.2)
        term.read_until(lambda t: re.search(r"(\d+\.\d) tok/s", t) is not None, 120)
        term.read_until(lambda t: False, 0.3)  # let the final status settle
        rates = re.findall(r"(\d+\.\d) tok/s", term.text())
        return first_frame, float(rates[-1]) if rates else None, latencies
    finally:
        term.close()


def cli_round(env: dict[str, str], i: int, tokens: int) -> float:
    # The CLI streams into the same kind of pseudo-terminal, read the same
    # way: both faces pay for a terminal taking their output.
    term = Term([sys.executable, "-m", "gptterm", "-v", "--temperature", "0", "--max-tokens", str(tokens),
                 PROMPT.format(i=i)], env)
    try:
        term.read_until(lambda t: "tok/s, finish" in t, 120)
        rate = re.search(r"(\d+\.\d) tok/s, finish", term.text())
        if rate is None:
            raise SystemExit(f"the CLI printed no rate: {term.text()[-300:]!r}")
        return float(rate.group(1))
    finally:
        term.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--keys", type=int, default=5, help="keys typed while each reply streams")
    args = ap.parse_args()
    # An installed wheel is byte-compiled by pip; an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 (set on the project's VMs) would compile
    # gptterm's sources on every start (~35 ms) and measure that instead.
    compileall.compile_dir(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gptterm"),
                           quiet=1)
    tmp = tempfile.mkdtemp()
    env = {**os.environ, "TERM": "xterm-256color", "GPTTERM_DATA_DIR": tmp + "/data",
           "GPTTERM_CONFIG_DIR": tmp + "/config", "COLUMNS": "120", "LINES": "40"}
    frames, tui, cli, keys, paired = [], [], [], [], []
    for i in range(args.rounds):
        frame, rate, latencies = tui_round(env, i, args.tokens, args.keys)
        keys += latencies
        frames.append(frame)
        if rate:
            tui.append(rate)
        cli.append(cli_round(env, i, args.tokens))
        if rate:
            paired.append(rate / cli[-1])
    baseline = subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
    print(f"bundled model, {args.tokens} tokens greedy, {args.rounds} interleaved rounds, medians")
    print(f"{'':28} {'value':>8} {'anchor':>8} {'ratio':>6}")
    c, t = statistics.median(cli), statistics.median(tui) if tui else float("nan")
    print(f"{'streaming tok/s (TUI/CLI)':28} {t:8.1f} {c:8.1f} {t / c:6.3f}")
    if paired:  # the VM's speed drifts between rounds: each TUI run against the CLI run right after it
        q = statistics.quantiles(paired, n=4) if len(paired) > 1 else [paired[0]] * 3
        print(f"{'  median of per-round ratios':28} {'':8} {'':8} {statistics.median(paired):6.3f}"
              f"   (quartiles {q[0]:.3f}-{q[2]:.3f})")
    f = statistics.median(frames)
    print(f"{'first frame s (target 0.5)':28} {f:8.2f} {0.5:8.2f} {f / 0.5:6.3f}")
    if keys:
        k = statistics.median(keys)
        print(f"{'key echo ms while streaming':28} {k * 1000:8.1f} {50:8.1f} {k * 1000 / 50:6.3f}")
        print(f"{'  (worst of ' + str(len(keys)) + ')':28} {max(keys) * 1000:8.1f}")
    del baseline


if __name__ == "__main__":
    main()
