"""Resident memory with the model loaded: gptterm's engine against file size + KV cache.

Target: RSS <= model file + KV cache + 150 MB (the weights are memory-mapped,
never copied). Measured in a fresh process after loading and one reply.

    python bench/memory.py [--ctx 4096]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = """
import sys, os
sys.path.insert(0, {root!r})
from gptterm.engine.local import LocalEngine
from gptterm.settings import Params
e = LocalEngine({model!r}, ctx={ctx}, gpu_layers=0, threads=None)
e.chat([{{"role": "user", "content": "Tell me about owls."}}], Params().replace(max_tokens=64, temperature=0)).drain()
meta = e.meta
layers = meta.values.get(f"{{meta.architecture}}.block_count")
heads = meta.values.get(f"{{meta.architecture}}.attention.head_count")
kv_heads = meta.values.get(f"{{meta.architecture}}.attention.head_count_kv", heads)
embd = meta.values.get(f"{{meta.architecture}}.embedding_length")
kv = 2 * layers * e.n_ctx * embd // heads * kv_heads * 2  # K and V, f16
rss = anon = 0
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        rss = int(line.split()[1]) * 1024
    if line.startswith("RssAnon:"):
        anon = int(line.split()[1]) * 1024
print(rss, anon, kv, os.path.getsize({model!r}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ctx", type=int, default=4096)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)
    from gptterm.models.bundled import bundled_model_path

    model = str(bundled_model_path())
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=root, model=model, ctx=args.ctx)],
                         capture_output=True, text=True, check=True).stdout.split()
    rss, anon, kv, size = map(int, out)
    mb = 1024 * 1024
    budget = size + kv + 150 * mb
    print(f"bundled model, ctx {args.ctx}")
    print(f"{'model file':28} {size / mb:8.0f} MB")
    print(f"{'KV cache (f16)':28} {kv / mb:8.0f} MB")
    print(f"{'resident (VmRSS)':28} {rss / mb:8.0f} MB")
    print(f"{'  of which anonymous':28} {anon / mb:8.0f} MB  (file-backed rest = mapped weights)")
    print(f"{'target: file + KV + 150 MB':28} {budget / mb:8.0f} MB  -> ratio {rss / budget:.2f}")


if __name__ == "__main__":
    main()
