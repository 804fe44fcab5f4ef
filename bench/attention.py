"""Attention capture: its time and memory for a text, beside the same evaluation without it.

Both evaluate the same tokens once on a second llama.cpp context of the same loaded model (flash attention
off, the whole text in one micro-batch): "plain" with no eval callback, "capture" through
``gptterm.engine.attention.capture`` (the callback reads every layer's ``kq_soft_max`` and copies it into
one float32 array of layers × heads × n²). Each measurement runs in a fresh process, so that its peak
resident memory (ru_maxrss) is its own; the rows interleave and the table gives medians.

    python bench/attention.py [--tokens 512] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import llama_cpp
from gptterm.engine import attention
from gptterm.engine.local import LocalEngine
engine = LocalEngine({model!r}, ctx=2048, gpu_layers=0, threads={threads})
text = open({text!r}, encoding="utf-8").read()
tokens = engine.completion_tokens(text)[:{n}]
assert len(tokens) == {n}, len(tokens)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def plain():
    params = llama_cpp.llama_context_default_params()
    n_ctx = -(-len(tokens) // 256) * 256
    params.n_ctx = params.n_batch = params.n_ubatch = n_ctx
    params.n_threads = params.n_threads_batch = {threads}
    params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    params.no_perf = True
    with engine.exclusive_model() as model:
        ctx = llama_cpp.llama_init_from_model(model, params)
        batch = llama_cpp.llama_batch_init(n_ctx, 0, 1)
        batch.n_tokens = len(tokens)
        for k, t in enumerate(tokens):
            batch.token[k], batch.pos[k], batch.n_seq_id[k] = t, k, 1
            batch.seq_id[k][0] = 0
            batch.logits[k] = k == len(tokens) - 1
        assert llama_cpp.llama_decode(ctx, batch) == 0
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)

t0 = time.perf_counter()
if {variant!r} == "plain":
    plain()
    floats = 0
else:
    found = attention.capture(engine, tokens)
    floats = found.weights.size
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"seconds": seconds, "peak": peak, "before": before, "floats": floats}}))
"""


def measure(variant: str, model: str, text: str, n: int, threads: int) -> dict:
    code = CHILD.format(root=ROOT, model=model, text=text, n=n, threads=threads, variant=variant)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from gptterm.engine.local import default_threads
    from gptterm.models.bundled import bundled_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=default_threads())
    args = ap.parse_args()
    model = str(bundled_model_path())
    text = os.path.join(ROOT, "README.md")
    rows: dict[str, list[dict]] = {"plain": [], "capture": []}
    for _ in range(args.rounds):
        for variant in rows:
            rows[variant].append(measure(variant, model, text, args.tokens, args.threads))
    mb = 1e6
    print(f"bundled SmolLM2-135M Q4_1, {args.tokens} tokens, {args.threads} threads, {args.rounds} interleaved rounds, "
          "medians; memory: peak RSS of the process, and above the loaded model")
    print(f"{'':34} {'seconds':>8} {'ratio':>6} {'peak MB':>8} {'+ over load':>11} {'floats':>12}")
    base = statistics.median(r["seconds"] for r in rows["plain"])
    for variant, label in (("plain", "evaluation, no callback"), ("capture", "evaluation + attention capture")):
        runs = rows[variant]
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = statistics.median(r["peak"] for r in runs)
        extra = statistics.median(r["peak"] - r["before"] for r in runs)
        print(f"{label:34} {seconds:8.2f} {seconds / base:6.2f} {peak / mb:8.0f} {extra / mb:11.0f} "
              f"{runs[0]['floats']:12,}")
    floats = rows["capture"][0]["floats"]
    print(f"the capture's array: {floats:,} floats = {floats * 4 / mb:.0f} MB (float32)")


if __name__ == "__main__":
    main()
