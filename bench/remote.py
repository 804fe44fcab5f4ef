"""Decode rate and time to first token: the local engine against the remote one on the same machine.

The remote engine talks to ``python -m llama_cpp.server`` (started here,
on 127.0.0.1) serving the same model with the same thread count. Greedy,
same prompt and token count for both; rounds interleave the two; medians.
The gap is what the server costs: llama-cpp-python's ``create_completion``
per-token path, JSON + SSE framing, HTTP on loopback, and the client's
parsing.

    python bench/remote.py [--model PATH] [--tokens 200] [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gptterm.engine.local import LocalEngine, default_threads  # noqa: E402
from gptterm.engine.remote import RemoteEngine  # noqa: E402
from gptterm.models.bundled import bundled_model_path  # noqa: E402
from gptterm.servers import ServerProfile  # noqa: E402
from gptterm.settings import Params  # noqa: E402

PROMPT = "Here is a long, detailed essay about the history of the printing press, part {i}:\n\n"


def start_server(model: str, threads: int, ctx: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", model, "--model_alias", "bench",
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(ctx),
                             "--n_threads", str(threads), "--n_threads_batch", str(threads), "--verbose", "false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()

    def watch() -> None:
        for line in iter(proc.stderr.readline, ""):
            if "Uvicorn running on" in line:
                ready.set()
        ready.set()

    threading.Thread(target=watch, daemon=True).start()
    if not ready.wait(120) or proc.poll() is not None:
        raise SystemExit("llama_cpp.server did not start (pip install 'gptterm[server]')")
    return proc, f"http://127.0.0.1:{port}/v1"


def run(engine, prompt: str, n: int) -> tuple[float, float, int]:
    reply = engine.complete(prompt, Params().replace(temperature=0.0, max_tokens=n))
    reply.drain()
    return reply.stats.ttft_s, reply.stats.tokens_per_s, reply.stats.completion_tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(bundled_model_path()))
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=default_threads())
    args = ap.parse_args()

    server, url = start_server(args.model, args.threads, 4096)
    try:
        engines = {
            "local": LocalEngine(args.model, ctx=4096, gpu_layers=0, threads=args.threads),
            "remote": RemoteEngine(ServerProfile(name="bench", url=url), ctx=4096),
        }
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in engines}
        run(engines["remote"], "warm up", 8)
        for i in range(args.rounds):
            prompt = PROMPT.format(i=i)  # a new prompt each round: no KV reuse across rounds
            for name, engine in engines.items():
                results[name].append(run(engine, prompt, args.tokens))
        for engine in engines.values():
            engine.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    def med(name: str, k: int) -> float:
        return statistics.median(r[k] for r in results[name])

    print(f"model {os.path.basename(args.model)}, {args.threads} threads, {args.tokens} tokens greedy, "
          f"{args.rounds} interleaved rounds, medians")
    print(f"{'':40} {'decode tok/s':>12} {'ratio':>6} {'TTFT ms':>8} {'tokens':>7}")
    anchor = med("local", 1)
    for name, label in (("local", "local engine (llama.cpp in process)"),
                        ("remote", "remote engine -> llama_cpp.server")):
        print(f"{label:40} {med(name, 1):12.1f} {med(name, 1) / anchor:6.3f} {med(name, 0) * 1000:8.1f} "
              f"{med(name, 2):7.0f}")


if __name__ == "__main__":
    main()
