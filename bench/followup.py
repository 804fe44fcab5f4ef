"""Follow-up turns cost only their new tokens: time to first token by turn.

A 20-turn chat on the bundled model with same-size user messages, through
gptterm's ChatSession (what the REPL and the TUI use). llama.cpp keeps the
KV cache of the prefix shared with the previous turn, so turn 20 should cost
about what turn 1 costs although its prompt is many times longer. The last
column re-evaluates turn 20's prompt from scratch for comparison.

    python bench/followup.py [--turns 20] [--reply 60]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gptterm.engine.local import LocalEngine, default_threads  # noqa: E402
from gptterm.models.bundled import bundled_model_path  # noqa: E402
from gptterm.settings import Params  # noqa: E402
from gptterm.tasks.chat import ChatSession  # noqa: E402

TOPICS = ["owls", "rivers", "volcanoes", "bread", "glass", "tides", "bees", "clocks", "maps", "salt"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--reply", type=int, default=60)
    args = ap.parse_args()
    engine = LocalEngine(bundled_model_path(), ctx=8192, gpu_layers=0, threads=default_threads())
    session = ChatSession(engine, Params().replace(temperature=0.0, max_tokens=args.reply))
    rows = []
    for turn in range(1, args.turns + 1):
        reply = session.send(f"Question {turn:02d}: tell me one fact about {TOPICS[turn % len(TOPICS)]}.")
        reply.drain()
        rows.append((turn, reply.stats.prompt_tokens, reply.stats.cached_tokens, reply.stats.ttft_s))
    engine._llm.reset()  # forget the KV cache: the same prompt evaluated from scratch
    cold = engine.chat(session.model_messages()[:-1], Params().replace(temperature=0.0, max_tokens=1))
    cold.drain()
    print(f"bundled model, {engine.info.threads} threads, {args.turns} turns, replies up to {args.reply} tokens")
    print(f"{'turn':>4} {'prompt':>7} {'cached':>7} {'TTFT ms':>8}")
    for turn, prompt, cached, ttft in rows:
        if turn in (1, 2, 5, 10, 15, 20) or turn == args.turns:
            print(f"{turn:>4} {prompt:>7} {cached:>7} {ttft * 1000:>8.0f}")
    first, last = rows[0][3], rows[-1][3]
    print(f"turn {args.turns} / turn 1 TTFT: {last / first:.2f} (target <= 1.3); "
          f"turn {args.turns}'s prompt re-evaluated cold: {cold.stats.ttft_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
