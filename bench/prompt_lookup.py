"""Prompt-lookup decoding against plain decoding on summarize and translate prompts.

llama-cpp-python's ``LlamaPromptLookupDecoding`` drafts tokens by finding
the last n-gram of the output earlier in the prompt; with greedy sampling
the output must be identical, so only the speed differs. Same model,
threads and prompts; interleaved rounds; medians.

    python bench/prompt_lookup.py [--rounds 3] [--draft 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gptterm.assets import load_prompt  # noqa: E402
from gptterm.engine.local import LocalEngine, default_threads  # noqa: E402
from gptterm.models.bundled import bundled_model_path  # noqa: E402
from gptterm.settings import Params  # noqa: E402

ESSAY = ("The printing press was invented by Johannes Gutenberg around 1440 in Mainz. It used movable metal type, "
         "oil-based ink and a wooden press. Before it, books were copied by hand, which made them rare and "
         "expensive. Within fifty years, printing shops had spread to more than 250 cities in Europe and had "
         "produced millions of books. Prices fell, literacy rose, and ideas travelled faster than ever before.")
CASES = {
    "summarize part": load_prompt("summarize_part").messages(text=ESSAY, focus=""),
    "summarize": load_prompt("summarize").messages(text=ESSAY, length="Use at most about 60 words.", form="",
                                                   language="", focus=""),
    "translate en→fr": load_prompt("translate").messages(text=ESSAY, source="English", target="French",
                                                         glossary="", lines=""),
    "copy (echo)": [{"role": "user", "content": "Repeat this text exactly:\n\n" + ESSAY}],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--draft", type=int, default=10)
    ap.add_argument("--tokens", type=int, default=160)
    args = ap.parse_args()
    model, threads = bundled_model_path(), default_threads()
    plain = LocalEngine(model, ctx=2048, gpu_layers=0, threads=threads)
    pld = LocalEngine(model, ctx=2048, gpu_layers=0, threads=threads, prompt_lookup=args.draft)
    params = Params().replace(temperature=0.0, repeat_penalty=1.0, max_tokens=args.tokens)
    print(f"bundled model, {threads} threads, greedy, up to {args.tokens} tokens, draft {args.draft}, "
          f"{args.rounds} interleaved rounds, medians (tokens/s over the whole reply, prompt included)")
    print(f"{'':18} {'plain tok/s':>11} {'lookup tok/s':>12} {'ratio':>6} {'tokens':>11} {'same output':>11}")
    for name, messages in CASES.items():
        rates: dict[str, list[float]] = {"plain": [], "pld": []}
        counts: dict[str, list[int]] = {"plain": [], "pld": []}
        texts = {}
        for _ in range(args.rounds):
            for key, engine in (("plain", plain), ("pld", pld)):
                engine._llm.reset()  # no KV reuse between rounds: both pay the prompt
                reply = engine.chat(messages, params)
                text = reply.drain()
                rates[key].append(reply.stats.completion_tokens / reply.stats.total_s)
                counts[key].append(reply.stats.completion_tokens)
                texts[key] = text
        p, q = statistics.median(rates["plain"]), statistics.median(rates["pld"])
        tokens = f"{statistics.median(counts['plain']):.0f}/{statistics.median(counts['pld']):.0f}"
        print(f"{name:18} {p:11.1f} {q:12.1f} {q / p:6.2f} {tokens:>11} {str(texts['plain'] == texts['pld']):>11}")


if __name__ == "__main__":
    main()
