"""Decode rate and time to first token: gptterm against a bare llama-cpp-python loop.

Same model, prompt, thread count and greedy sampling; runs interleaved;
medians. The anchor is llama-cpp-python's own streaming API
(``create_completion(stream=True)``), the loop a user of the library writes.
The engine also runs with ``--logprobs N`` (each token's log-probability
and N alternatives read from the logits), and the last row times the real
``gptterm generate`` process from outside (first to last byte on its stdout
pipe).

With ``--llama-completion PATH`` the ceiling joins the table: llama.cpp's
own C++ ``llama-completion`` (built separately from the llama.cpp sources
vendored in the llama-cpp-python sdist; see README.md here), timed the same
way from outside, greedy, ``--ignore-eos``, same threads and context; the
ratios are then against it.

    python bench/decode.py [--model PATH] [--tokens 200] [--rounds 5] [--threads N] [--llama-completion PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gptterm.engine.local import LocalEngine, default_threads  # noqa: E402
from gptterm.models.bundled import bundled_model_path  # noqa: E402
from gptterm.settings import Params  # noqa: E402

PROMPT = "Here is a long, detailed essay about the history of the printing press, part {i}:\n\n"


def bare_loop(llm, prompt: str, n: int) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    first = last = None
    count = 0
    for _chunk in llm.create_completion(prompt, max_tokens=n, temperature=0.0, top_k=40, top_p=0.95,
                                        min_p=0.05, repeat_penalty=1.1, stream=True):
        last = time.perf_counter()
        if first is None:
            first = last
        count += 1
    return first - t0, (count - 1) / (last - first), count


def engine_loop(engine, prompt: str, n: int, logprobs: int = 0) -> tuple[float, float, int]:
    reply = engine.complete(prompt, Params().replace(temperature=0.0, max_tokens=n, logprobs=logprobs))
    reply.drain()
    return reply.stats.ttft_s, reply.stats.tokens_per_s, reply.stats.completion_tokens


def stream_times(proc: subprocess.Popen) -> tuple[float | None, float | None, str]:
    """When the first and the last bytes came out of ``proc``'s stdout pipe, and its stderr, once it ended."""
    first = last = None
    while proc.stdout.read1(65536):
        last = time.perf_counter()
        if first is None:
            first = last
    err = proc.stderr.read().decode(errors="replace")
    proc.wait()
    return first, last, err


def cli_run(model: str, prompt: str, n: int, threads: int) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gptterm", "generate", "--no-echo", "--no-log", "-v", "-m", model,
                             "--temperature", "0", "--max-tokens", str(n), "--threads", str(threads), prompt],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first, last, err = stream_times(proc)
    count = int(re.search(r"(\d+) generated", err).group(1))
    return first - t0, (count - 1) / (last - first), count


def cpp_run(binary: str, extra: list[str], model: str, prompt: str, n: int, threads: int
            ) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, *extra, "-m", model, "-p", prompt, "-n", str(n), "-t", str(threads), "-tb", str(threads),
                             "-c", "4096", "-b", "512", "--temp", "0", "--ignore-eos", "--no-display-prompt",
                             "-no-cnv", "--no-warmup"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    first, last, err = stream_times(proc)
    if proc.returncode != 0 or first is None:
        sys.exit(f"{binary} failed:\n{err[-2000:]}")
    # the tokens it decoded after the prompt, from its own performance report
    count = int(re.search(r"eval time\s*=.*?/\s*(\d+) runs", err.split("prompt eval time")[-1]).group(1)) + 1
    return first - t0, (count - 1) / (last - first), count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(bundled_model_path()))
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--logprobs", type=int, default=5, metavar="N", help="alternatives per token in the logprobs row")
    ap.add_argument("--llama-completion", metavar="PATH", help="llama.cpp's C++ llama-completion, as the anchor")
    ap.add_argument("--llama-completion-args", default="", metavar="ARGS",
                    help="more arguments for it, e.g. \"-fa off\" (its flash attention is on by default)")
    args = ap.parse_args()

    import llama_cpp

    from gptterm.engine import llama_log

    llama_log.install()
    with contextlib.redirect_stderr(io.StringIO()):
        bare = llama_cpp.Llama(args.model, n_ctx=4096, n_batch=512, n_threads=args.threads,
                               n_threads_batch=args.threads, verbose=False)
    engine = LocalEngine(args.model, ctx=4096, gpu_layers=0, threads=args.threads)

    results: dict[str, list[tuple[float, float, int]]] = {"cpp": [], "bare": [], "engine": [], "logprobs": [],
                                                          "cli": []}
    for i in range(args.rounds):
        prompt = PROMPT.format(i=i)  # a new prompt each round: no KV reuse across rounds
        if args.llama_completion:
            results["cpp"].append(cpp_run(args.llama_completion, args.llama_completion_args.split(), args.model, prompt, args.tokens, args.threads))
        results["bare"].append(bare_loop(bare, prompt, args.tokens))
        results["engine"].append(engine_loop(engine, prompt, args.tokens))
        results["logprobs"].append(engine_loop(engine, prompt + " ", args.tokens, args.logprobs))
        results["cli"].append(cli_run(args.model, prompt, args.tokens, args.threads))

    def med(name: str, k: int) -> float:
        return statistics.median(r[k] for r in results[name])

    print(f"model {os.path.basename(args.model)}, {args.threads} threads, {args.tokens} tokens greedy, "
          f"{args.rounds} interleaved rounds, medians")
    print(f"{'':34} {'decode tok/s':>12} {'ratio':>6} {'TTFT ms':>8} {'tokens':>7}")
    anchor = med("cpp" if args.llama_completion else "bare", 1)
    rows = [("bare", "llama-cpp-python stream loop"), ("engine", "gptterm engine (in process)"),
            ("logprobs", f"gptterm engine --logprobs {args.logprobs}"), ("cli", "gptterm generate (stdout pipe)")]
    if args.llama_completion:
        rows.insert(0, ("cpp", f"llama-completion (C++) {args.llama_completion_args}".rstrip()))
    for name, label in rows:
        print(f"{label:34} {med(name, 1):12.1f} {med(name, 1) / anchor:6.3f} {med(name, 0) * 1000:8.1f} "
              f"{med(name, 2):7.0f}")


if __name__ == "__main__":
    main()
