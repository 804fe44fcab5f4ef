"""What tools cost when the model does not call one, and what an MCP server costs.

Decode rows (same engine, model, threads, greedy; interleaved rounds; medians):

- *plain*: the chat without tools (the anchor);
- *same prompt, no watcher*: the prompt rendered with the tools' definitions, decoded plainly — what
  the longer prompt alone costs;
- *tools given, no call*: ``chat(tools=...)`` — the call watcher (ToolGrammarSampler) and the
  answer's call splitter running, no call made;
- *a forced call*: ``tool_choice="required"``, decoded under the call grammar.

MCP rows: the fixture server (tests/fixtures/mcp_server.py, the official SDK) started and listed by
gptterm's McpHub against the bare SDK doing the same in ``asyncio.run`` (the anchor); one ``add``
call each way.

    python bench/tool_overhead.py [--model PATH] [--tokens 120] [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gptterm.engine.local import LocalEngine, default_threads  # noqa: E402
from gptterm.models.bundled import bundled_model_path  # noqa: E402
from gptterm.settings import Params  # noqa: E402
from gptterm.types import Tool  # noqa: E402
from gptterm.tools.mcp_client import McpHub, McpServerSpec  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures",
                       "mcp_server.py")
TOOLS = [Tool("read_file", "Read a text file", {"type": "object", "properties": {"path": {"type": "string"}},
                                                "required": ["path"]}, read_only=True),
         Tool("list_dir", "List a folder", {"type": "object", "properties": {"path": {"type": "string"}}},
              read_only=True)]
PROMPT = "Write a long story about a lighthouse keeper and a storm (take {i})."


def decode_rows(engine: LocalEngine, tokens: int, rounds: int) -> list[tuple[str, list[float], list[float]]]:
    params = Params().replace(temperature=0.0, max_tokens=tokens)
    kinds = ["plain", "same prompt, no watcher", "tools given, no call", "a forced call"]
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    ttfts: dict[str, list[float]] = {k: [] for k in kinds}
    for i in range(rounds):
        messages = [{"role": "user", "content": PROMPT.format(i=i)}]
        for kind in kinds:
            if kind == "plain":
                reply = engine.chat(messages, params)
            elif kind == "same prompt, no watcher":
                reply = engine._reply(engine._rendered_tokens(engine.render_chat(messages, tools=TOOLS)), params)
            elif kind == "tools given, no call":
                reply = engine.chat(messages, params, tools=TOOLS)
            else:
                reply = engine.chat(messages, params, tools=TOOLS, tool_choice="required")
            reply.drain()
            if kind == "tools given, no call" and reply.tool_calls:
                print(f"note: round {i} called a tool; its rate still counts", file=sys.stderr)
            rates[kind].append(reply.stats.tokens_per_s or 0.0)
            ttfts[kind].append(reply.stats.ttft_s or 0.0)
    return [(k, rates[k], ttfts[k]) for k in kinds]


async def sdk_anchor() -> tuple[float, float]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    t0 = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        async with Client(stdio_client(StdioServerParameters(command=sys.executable, args=[FIXTURE]),
                                       errlog=quiet)) as client:
            await client.list_tools()
            started = time.perf_counter() - t0
            t1 = time.perf_counter()
            await client.call_tool("add", {"a": 1, "b": 2})
            return started, time.perf_counter() - t1


def mcp_rows(rounds: int) -> list[tuple[str, list[float], list[float]]]:
    import mcp  # noqa: F401  (imported once, before either is timed)

    ours_start, ours_call, sdk_start, sdk_call = [], [], [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        hub = McpHub([McpServerSpec("fx", sys.executable, (FIXTURE,))])
        hub.start()
        ours_start.append(time.perf_counter() - t0)
        entry = next(t for t in hub.tools if t.remote_name == "add")
        t1 = time.perf_counter()
        hub.call(entry, {"a": 1, "b": 2}, timeout=10)
        ours_call.append(time.perf_counter() - t1)
        hub.close()
        s, c = asyncio.run(sdk_anchor())
        sdk_start.append(s)
        sdk_call.append(c)
    return [("bare SDK, asyncio.run (anchor)", sdk_start, sdk_call), ("gptterm McpHub", ours_start, ours_call)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--tokens", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=default_threads())
    args = ap.parse_args()
    model = args.model or str(bundled_model_path())
    engine = LocalEngine(model, ctx=2048, gpu_layers=0, threads=args.threads)
    engine.chat([{"role": "user", "content": "hi"}], Params().replace(max_tokens=4)).drain()  # warm up
    print(f"model {os.path.basename(model)}, {args.threads} threads, {args.tokens} tokens, {args.rounds} rounds")
    print(f"{'decoding':<28} {'tokens/s':>9} {'× plain':>8} {'TTFT s':>8}")
    rows = decode_rows(engine, args.tokens, args.rounds)
    base = statistics.median(rows[0][1])
    for kind, rates, ttfts in rows:
        rate = statistics.median(rates)
        print(f"{kind:<28} {rate:>9.1f} {rate / base:>8.2f} {statistics.median(ttfts):>8.3f}")
    engine.close()
    print()
    print(f"{'MCP (tests/fixtures/mcp_server.py)':<34} {'start+list s':>12} {'call s':>8}")
    for kind, starts, calls in mcp_rows(args.rounds):
        print(f"{kind:<34} {statistics.median(starts):>12.3f} {statistics.median(calls):>8.4f}")


if __name__ == "__main__":
    main()
