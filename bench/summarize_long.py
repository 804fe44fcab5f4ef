"""Summarizing text many times the context: wall time and peak memory as the input grows.

Runs the real ``gptterm summarize`` on generated essays of 5x, 10x and 20x
the context window and reads each process's peak resident memory from
``wait4``. Memory should stay flat: the model and KV cache dominate, the
text is processed part by part.

    python bench/summarize_long.py [--ctx 1024] [--multiples 5 10 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gptterm.engine.local import LocalEngine  # noqa: E402
from gptterm.models.bundled import bundled_model_path  # noqa: E402

TOPICS = ["printing press", "steam engine", "telegraph", "railway", "electric light", "radio", "vaccine",
          "airplane", "computer", "internet", "satellite", "antibiotic", "telephone", "camera", "microscope"]


def essay(n_tokens: int, count) -> str:
    parts, i = [], 0
    while True:
        topic = TOPICS[i % len(TOPICS)]
        parts.append(f"Section {i + 1}. The {topic} changed daily life in many countries. Engineers improved it "
                     f"over decades, and by the end of the period it was cheaper, safer and more widely used. "
                     f"Historians note that the {topic} also changed how people worked, travelled and learned.\n\n")
        i += 1
        if i % 20 == 0 and count("".join(parts)) >= n_tokens:
            return "".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--multiples", type=int, nargs="+", default=[5, 10, 20])
    args = ap.parse_args()
    engine = LocalEngine(bundled_model_path(), ctx=args.ctx, gpu_layers=0, threads=1)
    tmp = tempfile.mkdtemp()
    env = {**os.environ, "GPTTERM_DATA_DIR": tmp, "GPTTERM_CONFIG_DIR": tmp}
    print(f"bundled model, --ctx {args.ctx}, --length short, greedy")
    print(f"{'input':>8} {'tokens':>8} {'parts':>6} {'rounds':>6} {'seconds':>8} {'peak RSS MB':>12}")
    for multiple in args.multiples:
        text = essay(args.ctx * multiple, engine.count_tokens)
        path = os.path.join(tmp, f"essay{multiple}.txt")
        with open(path, "w") as fh:
            fh.write(text)
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "gptterm", "summarize", "--ctx", str(args.ctx), "--length",
                                 "short", "--json", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        data = json.loads(out)
        parts = sum(1 for c in data["chunks"] if not c.get("final"))
        rounds = max(c["level"] for c in data["chunks"]) + 1
        print(f"{multiple:>7}x {engine.count_tokens(text):>8} {parts:>6} {rounds:>6} {seconds:>8.1f} "
              f"{usage.ru_maxrss / 1024:>12.0f}")


if __name__ == "__main__":
    main()
