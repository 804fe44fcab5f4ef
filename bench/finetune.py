"""Fine-tuning speed and memory: ``gptterm finetune``'s training against llama.cpp's own ``llama-finetune``.

Same model (the bundled SmolLM2-135M; llama-finetune gets the F32 conversion gptterm makes, since it
trains F32 tensors only), same text, context = batch = micro-batch 256, AdamW at the same learning rate,
one epoch, no validation, the same threads. Tokens/s count the training steps only (forward + backward +
AdamW, 256 tokens each): gptterm's from its step events, llama-finetune's from its progress bar (steps ×
256 / the train time it reports, to the second). Peak memory is each training process's own (ru_maxrss
from wait4: gptterm's child, llama-finetune itself). The whole run's wall time is given too: gptterm's
includes converting to F32, scoring nothing (--val-split 0), saving and writing the base's metadata back
(--keep-f32: no quantizing). llama-finetune cuts windows every 128 tokens (half a context), gptterm every
256, so it makes about twice the steps on the same text. Rounds interleave; medians.

    python bench/finetune.py [--llama-finetune PATH] [--chars 6000] [--rounds 2] [--threads N]
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

CTX = 256
LR = 1e-4

# In a process of its own, so that RUSAGE_CHILDREN is the training child's alone.
GPTTERM = r"""
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
from gptterm.finetune import events as ev
from gptterm.finetune.plan import Settings
from gptterm.finetune.runner import FineTune
job = FineTune({text!r}, "bench-{stamp}", model={model!r},
               settings=Settings(epochs=1, lr={lr}, ctx={ctx}, val_split=0, keep_f32=True, threads={threads}))
t0 = time.perf_counter()
step_s = []
for e in job.run():
    if isinstance(e, ev.Step):
        step_s.append({ctx} / e.tokens_per_s)
wall = time.perf_counter() - t0
from gptterm.models import finetuned
finetuned.remove("bench-{stamp}")
print(json.dumps({{"steps": len(step_s), "train_s": sum(step_s), "wall": wall,
                   "peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}}))
"""


def run_gptterm(model: str, text: str, threads: int, env: dict[str, str]) -> dict:
    code = GPTTERM.format(root=ROOT, text=text, model=model, lr=LR, ctx=CTX, threads=threads,
                          stamp=int(time.time() * 1000))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"gptterm failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_llama(binary: str, f32: str, text: str, threads: int, out_file: str) -> dict:
    args = [binary, "-m", f32, "-f", text, "-c", str(CTX), "-b", str(CTX), "-ub", str(CTX), "-t", str(threads),
            "-epochs", "1", "-lr", str(LR), "-opt", "adamw", "-val-split", "0", "-o", out_file]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    bars = re.findall(r"train: \[.*?\] data=(\d+)/(\d+) .*?t=(\d+):(\d+):(\d+)", output)
    if status != 0 or not bars:
        raise SystemExit(f"llama-finetune failed (status {status}):\n{output[-2000:]}")
    done, _, h, m, s = map(int, bars[-1])
    return {"steps": done, "train_s": h * 3600 + m * 60 + s, "wall": wall, "peak": usage.ru_maxrss * 1024}


def main() -> None:
    from gptterm.engine.local import default_threads
    from gptterm.finetune import gguf_files
    from gptterm.models.bundled import bundled_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-finetune", metavar="PATH", help="llama.cpp's llama-finetune (bench/README.md)")
    ap.add_argument("--chars", type=int, default=6000, help="characters of README.md to train on (default 6000)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=default_threads())
    args = ap.parse_args()
    model = str(bundled_model_path())
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "train.txt")
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh, open(text, "w", encoding="utf-8") as out:
            out.write(fh.read()[: args.chars])
        env = {**os.environ, "GPTTERM_DATA_DIR": os.path.join(tmp, "data"), "GPTTERM_CACHE_DIR": os.path.join(tmp, "cache"),
               "GPTTERM_CONFIG_DIR": os.path.join(tmp, "config")}
        f32 = os.path.join(tmp, "f32.gguf")
        if args.llama_finetune:
            from pathlib import Path

            gguf_files.convert_to_f32(Path(model), Path(f32), args.threads)
        rows: dict[str, list[dict]] = {"gptterm": [], "llama-finetune": []}
        for _ in range(args.rounds):
            rows["gptterm"].append(run_gptterm(model, text, args.threads, env))
            if args.llama_finetune:
                rows["llama-finetune"].append(run_llama(args.llama_finetune, f32, text, args.threads,
                                                        os.path.join(tmp, "out.gguf")))
    print(f"bundled SmolLM2-135M (F32 for training), {args.chars} characters of README.md, ctx = batch = ubatch {CTX}, "
          f"AdamW lr {LR}, 1 epoch, {args.threads} threads, {args.rounds} interleaved rounds, medians")
    print(f"{'':22} {'steps':>5} {'train tok/s':>11} {'ratio':>6} {'peak MB':>8} {'wall s':>7}")
    anchor = None
    for name in ("llama-finetune", "gptterm"):
        runs = rows[name]
        if not runs:
            continue
        tps = statistics.median(r["steps"] * CTX / r["train_s"] for r in runs)
        anchor = anchor or tps
        print(f"{name:22} {runs[0]['steps']:5d} {tps:11.1f} {tps / anchor:6.2f} "
              f"{statistics.median(r['peak'] for r in runs) / 1e6:8.0f} {statistics.median(r['wall'] for r in runs):7.1f}")


if __name__ == "__main__":
    main()
