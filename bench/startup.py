"""Start-up: --help and --version against a bare interpreter; a one-shot reply against the bare library.

Anchors: ``python -c pass`` for the fast paths (target <= 4x), and for
``gptterm "hi"`` a bare script that imports llama_cpp, loads the same model
with the same context and threads, and streams the same greedy reply
(target <= 1.1x). Best of N wall times (start-up noise is one-sided).

    python bench/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import compileall
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gptterm.engine.local import default_threads  # noqa: E402
from gptterm.models.bundled import bundled_model_path  # noqa: E402

BARE = """
import contextlib, io, sys
import llama_cpp
with contextlib.redirect_stderr(io.StringIO()):
    llm = llama_cpp.Llama(sys.argv[1], n_ctx=4096, n_threads={threads}, n_threads_batch={threads}, verbose=False)
for chunk in llm.create_chat_completion([{{"role": "user", "content": "hi"}}], max_tokens=16, temperature=0,
                                        stream=True):
    sys.stdout.write(chunk["choices"][0]["delta"].get("content", "") or "")
"""


def best(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    # An installed wheel is byte-compiled by pip; an editable checkout under
    # PYTHONDONTWRITEBYTECODE=1 (set on the project's VMs) would compile
    # gptterm's sources on every start (~35 ms) and measure that instead.
    compileall.compile_dir(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gptterm"),
                           quiet=1)
    tmp = tempfile.mkdtemp()
    env = {**os.environ, "GPTTERM_DATA_DIR": tmp, "GPTTERM_CONFIG_DIR": tmp}
    py, threads, model = sys.executable, default_threads(), str(bundled_model_path())
    bare_script = os.path.join(tmp, "bare.py")
    with open(bare_script, "w") as fh:
        fh.write(BARE.format(threads=threads))
    rows = []
    anchor = best([py, "-c", "pass"], args.runs, env)
    rows.append(("gptterm --help", best([py, "-m", "gptterm", "--help"], args.runs, env), "python -c pass", anchor, 4))
    rows.append(("gptterm --version", best([py, "-m", "gptterm", "--version"], args.runs, env), "python -c pass",
                 anchor, 4))
    # interleaved, one run of each at a time: the VM's speed drifts over minutes
    ones, bares = [], []
    for _ in range(args.runs):
        ones.append(best([py, "-m", "gptterm", "--no-log", "--temperature", "0", "--max-tokens", "16", "--threads",
                          str(threads), "hi"], 1, env))
        bares.append(best([py, bare_script, model], 1, env))
    one, bare = min(ones), min(bares)
    rows.append(('gptterm "hi"', one, "bare llama-cpp-python", bare, 1.1))
    print(f"best of {args.runs} wall times")
    print(f"{'':20} {'seconds':>8} {'anchor':>24} {'seconds':>8} {'ratio':>6} {'target':>7}")
    for name, t, anchor_name, a, target in rows:
        print(f"{name:20} {t:8.3f} {anchor_name:>24} {a:8.3f} {t / a:6.2f} {'<=' + str(target):>7}")


if __name__ == "__main__":
    main()
