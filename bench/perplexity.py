"""Perplexity: ``gptterm perplexity`` against llama.cpp's own ``llama-perplexity``.

Same model, text, context (window) and threads; interleaved rounds; the
value each prints and its tokens/s (scored windows × window / wall time of
the whole process, start-up included for both). llama-perplexity runs with
its defaults (batch 2048, i.e. four 512-token windows a batch; flash
attention "auto", on here), gptterm with its own.

    python bench/perplexity.py --llama-perplexity PATH [--text FILE] [--ctx 512] [--rounds 3] [--threads N]

The default text is this repository's README.md followed by the seed
document (~8,800 tokens on the bundled model); llama-perplexity needs at
least two windows of tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gptterm.engine.local import default_threads  # noqa: E402
from gptterm.models.bundled import bundled_model_path  # noqa: E402


def default_text() -> str:
    seed_dir = os.path.join(ROOT, "..", "shared", "seed")
    parts = [open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()]
    if os.path.isdir(seed_dir):
        parts += [open(os.path.join(seed_dir, f), encoding="utf-8").read() for f in sorted(os.listdir(seed_dir))]
    return "".join(parts)


def run_cpp(binary: str, model: str, path: str, ctx: int, threads: int) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    out = subprocess.run([binary, "-m", model, "-f", path, "-c", str(ctx), "-t", str(threads), "-tb", str(threads)],
                         capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    final = re.search(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)", out.stderr + out.stdout)
    chunks = re.search(r"calculating perplexity over (\d+) chunks", out.stderr + out.stdout)
    if out.returncode != 0 or not final or not chunks:
        sys.exit(f"{binary} failed:\n{(out.stderr + out.stdout)[-2000:]}")
    return float(final.group(1)), int(chunks.group(1)) * ctx / seconds, int(chunks.group(1))


def run_gptterm(model: str, path: str, ctx: int, threads: int, env: dict[str, str]) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "gptterm", "perplexity", path, "-m", model, "--ctx", str(ctx),
                          "--threads", str(threads), "--json"], capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"gptterm perplexity failed:\n{out.stderr[-2000:]}")
    data = json.loads(out.stdout)
    return data["perplexity"], data["windows"] * ctx / seconds, data["windows"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-perplexity", required=True, metavar="PATH")
    ap.add_argument("--model", default=str(bundled_model_path()))
    ap.add_argument("--text", metavar="FILE")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=default_threads())
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    path = args.text or os.path.join(tmp, "text.txt")
    if not args.text:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(default_text())
    env = {**os.environ, "GPTTERM_DATA_DIR": tmp, "GPTTERM_CONFIG_DIR": tmp, "GPTTERM_CACHE_DIR": tmp}
    cpp, ours = [], []
    for _ in range(args.rounds):
        cpp.append(run_cpp(args.llama_perplexity, args.model, path, args.ctx, args.threads))
        ours.append(run_gptterm(args.model, path, args.ctx, args.threads, env))
    print(f"model {os.path.basename(args.model)}, window {args.ctx}, {args.threads} threads, {cpp[0][2]} windows, "
          f"{args.rounds} interleaved rounds, medians")
    print(f"{'':28} {'perplexity':>11} {'tok/s':>7} {'ratio':>6}")
    anchor = statistics.median(r[1] for r in cpp)
    for label, rows in (("llama-perplexity (C++)", cpp), ("gptterm perplexity", ours)):
        rate = statistics.median(r[1] for r in rows)
        print(f"{label:28} {statistics.median(r[0] for r in rows):11.4f} {rate:7.1f} {rate / anchor:6.3f}")
    print(f"value difference: {abs(ours[0][0] - cpp[0][0]) / cpp[0][0]:.3%}")


if __name__ == "__main__":
    main()
