"""Resuming a long conversation in a new process: saved KV state against re-reading the history.

Builds a conversation of about --history tokens with the REPL on the
bundled model, then times the first token of ``gptterm chat -c`` in fresh
processes, alternately with the conversation's saved KV state and with it
removed (so the history is evaluated again). Medians.

    python bench/resume.py [--history 1500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

QUESTION = "Tell me, in detail, about the history of {topic}."
TOPICS = ["the printing press", "the steam engine", "the telegraph", "railways", "electric light", "radio",
          "vaccines", "aviation", "computers", "the internet", "satellites", "antibiotics"]


def gptterm(args: list[str], stdin: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gptterm", *args], input=stdin, text=True, capture_output=True,
                          env=env, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--history", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    env = {**os.environ, "GPTTERM_DATA_DIR": f"{tmp}/data", "GPTTERM_CONFIG_DIR": f"{tmp}/config",
           "GPTTERM_CACHE_DIR": f"{tmp}/cache"}
    common = ["--temperature", "0", "--max-tokens", "200", "-v"]
    tokens, i = 0, 0
    while tokens < args.history:
        extra = ["-c"] if i else []
        out = gptterm(["chat", *extra, *common], QUESTION.format(topic=TOPICS[i % len(TOPICS)]) + "\n", env)
        prompt, generated = re.search(r"(\d+) prompt tokens .*?(\d+) generated", out.stderr).groups()
        tokens = int(prompt) + int(generated)
        i += 1
    snapshot = Path(tempfile.mkdtemp())
    for name in ("data", "cache"):
        shutil.copytree(Path(tmp, name), snapshot / name)
    ttft: dict[str, list[float]] = {"saved state": [], "re-read": []}
    for _ in range(args.rounds):
        for mode in ttft:
            for name in ("data", "cache"):  # the same history and state before every run
                shutil.rmtree(Path(tmp, name))
                shutil.copytree(snapshot / name, Path(tmp, name))
            if mode == "re-read":
                shutil.rmtree(Path(tmp, "cache", "kv"))
            out = gptterm(["chat", "-c", *common, "--max-tokens", "8"], "One more question: why?\n", env)
            ttft[mode].append(float(re.search(r"first token ([\d.]+) s", out.stderr).group(1)))
    a, b = statistics.median(ttft["saved state"]), statistics.median(ttft["re-read"])
    print(f"bundled model, history of {tokens} tokens ({i} turns), {args.rounds} rounds, medians")
    print(f"{'':30} {'first token s':>14}")
    print(f"{'chat -c, history re-read':30} {b:14.3f}")
    print(f"{'chat -c, saved KV state':30} {a:14.3f}")
    print(f"{'speed-up (target >= 10x)':30} {b / a:13.1f}x")


if __name__ == "__main__":
    main()
