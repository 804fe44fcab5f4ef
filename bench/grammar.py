"""Decoding under a JSON Schema grammar against plain decoding, on the same engine and model.

Rows: gptterm's engine plain (the anchor), gptterm's engine under the schema's
grammar (its lazy grammar sampler: gptterm/engine/grammar.py), and
llama-cpp-python's own grammar path (``create_completion(grammar=LlamaGrammar)``,
which filters the whole vocabulary at every step) for comparison. Same prompt,
threads, greedy sampling; interleaved rounds; medians. The schema's essay field is one
long string, so the grammar is in force for every token of the reply.

    python bench/grammar.py [--model PATH] [--tokens 200] [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gptterm import schema as schemas  # noqa: E402
from gptterm.engine.local import LocalEngine, default_threads  # noqa: E402
from gptterm.models.bundled import bundled_model_path  # noqa: E402
from gptterm.settings import Params  # noqa: E402

# one long string: the grammar is in force for every token. (Not minItems: llama.cpp expands a repetition
# into many parser stacks, and {"type": "array", "minItems": 12} of strings made llama-cpp-python's own
# grammar path take 3.6 s a token on this model.)
SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}, "essay": {"type": "string"}},
          "required": ["title", "essay"], "additionalProperties": False}
PROMPT = "Write a long, detailed essay about the history of the printing press (part {i}), at least 500 words, as JSON: a title, and the whole essay in one string."


def engine_run(engine: LocalEngine, prompt: str, n: int, schema: dict | None) -> tuple[float, float, int]:
    reply = engine.chat([{"role": "user", "content": prompt}], Params().replace(temperature=0.0, max_tokens=n),
                        schema=schema)
    reply.drain()
    return reply.stats.ttft_s or 0.0, reply.stats.tokens_per_s or 0.0, reply.stats.completion_tokens


def stock_run(llm, prompt: str, n: int, grammar) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    first = last = None
    count = 0
    for _chunk in llm.create_chat_completion([{"role": "user", "content": prompt}], max_tokens=n, temperature=0.0,
                                             grammar=grammar, stream=True):
        last = time.perf_counter()
        if first is None:
            first = last
        count += 1
    count -= 2  # the role chunk and the final (empty) chunk carry no token
    return first - t0, (count - 1) / (last - first), count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(bundled_model_path()))
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=default_threads())
    args = ap.parse_args()

    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar

    from gptterm.engine import llama_log

    llama_log.install()
    engine = LocalEngine(args.model, ctx=4096, gpu_layers=0, threads=args.threads)
    with contextlib.redirect_stderr(io.StringIO()):
        stock = llama_cpp.Llama(args.model, n_ctx=4096, n_batch=512, n_threads=args.threads,
                                n_threads_batch=args.threads, verbose=False)
        grammar = LlamaGrammar.from_string(schemas.grammar(SCHEMA), verbose=False)

    results: dict[str, list[tuple[float, float, int]]] = {"plain": [], "schema": [], "stock": []}
    valid = 0
    for i in range(args.rounds):
        prompt = PROMPT.format(i=i)
        results["plain"].append(engine_run(engine, prompt, args.tokens, None))
        results["schema"].append(engine_run(engine, prompt + " ", args.tokens, SCHEMA))
        results["stock"].append(stock_run(stock, prompt + "  ", args.tokens, grammar))
        # a reply that fits in the budget is valid JSON of the schema
        short = schemas.load("title, summary")
        reply = engine.chat([{"role": "user", "content": f"Give a title and a one-sentence summary of tea ({i})."}],
                            Params().replace(temperature=0.0, max_tokens=400), schema=short)
        reply.drain()
        try:
            schemas.check_reply(reply, short)
            valid += 1
        except Exception:  # noqa: BLE001 (counted, not raised)
            pass

    def med(name: str, k: int) -> float:
        return statistics.median(r[k] for r in results[name])

    print(f"model {os.path.basename(args.model)}, {args.threads} threads, up to {args.tokens} tokens greedy, "
          f"{args.rounds} interleaved rounds, medians; schema {json.dumps(SCHEMA)}")
    print(f"{'':44} {'decode tok/s':>12} {'ratio':>6} {'TTFT ms':>8} {'tokens':>7}")
    anchor = med("plain", 1)
    rows = [("plain", "gptterm engine, plain"), ("schema", "gptterm engine, schema grammar (lazy)"),
            ("stock", "llama-cpp-python create_chat_completion+grammar")]
    for name, label in rows:
        print(f"{label:44} {med(name, 1):12.1f} {med(name, 1) / anchor:6.3f} {med(name, 0) * 1000:8.1f} "
              f"{med(name, 2):7.0f}")
    print(f"short replies under the schema that validated: {valid}/{args.rounds}")


if __name__ == "__main__":
    main()
