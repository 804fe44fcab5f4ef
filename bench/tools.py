"""How well a local model calls tools, and what a tool step costs, through gptterm's turn loop.

A small set of prompts, each needing one tool with known arguments (or none: a call there is wrong). Each
is asked with the tools on and tool_choice auto, as a user would: the model decides. A call is *right* when
it names the expected tool with the expected arguments, *wrong* when it names another tool, other
arguments, or calls where no tool is needed, *missed* when no call comes where one was needed. Then the
time a tool step adds: the same prompts with the call forced (tool_choice = the tool), the whole turn (call,
run, answer) beside a plain reply to the same prompt without tools (the anchor). run_shell is asked about
and refused (nothing runs); the readers read a scratch folder.

    python bench/tools.py [--model PATH ...] [--tokens 80] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gptterm.engine.local import LocalEngine, default_threads  # noqa: E402
from gptterm.models.bundled import bundled_model_path  # noqa: E402
from gptterm.session.turn import ToolUse, turn  # noqa: E402
from gptterm.settings import Params  # noqa: E402
from gptterm.tasks.chat import ChatSession  # noqa: E402
from gptterm.tools.permissions import Approvals  # noqa: E402
from gptterm.tools.registry import build_toolbox  # noqa: E402


def path_is(*names: str) -> Callable[[dict[str, Any]], bool]:
    def check(args: dict[str, Any]) -> bool:
        return str(args.get("path", "")).strip().rstrip("/").removeprefix("./") in names

    return check


def command_has(word: str) -> Callable[[dict[str, Any]], bool]:
    return lambda args: word in str(args.get("command", ""))


# (prompt, the tool it needs (None: none), the arguments' check)
CASES: list[tuple[str, str | None, Callable[[dict[str, Any]], bool]]] = [
    ("Read the file notes.txt and tell me the secret word.", "read_file", path_is("notes.txt")),
    ("What is written in README.md?", "read_file", path_is("README.md")),
    ("Open todo.txt and list what I still have to do.", "read_file", path_is("todo.txt")),
    ("Which files are in the current folder?", "list_dir", path_is(".", "")),
    ("List the files in the src folder.", "list_dir", path_is("src")),
    ("Run the date command in the shell and tell me today's date.", "run_shell", command_has("date")),
    ("How many lines does notes.txt have? Count them with wc in the shell.", "run_shell", command_has("wc")),
    ("Hello! How are you today?", None, lambda args: True),
    ("What is the capital of France?", None, lambda args: True),
]


def scratch() -> Path:
    root = Path(tempfile.mkdtemp(prefix="gptterm-bench-tools-"))
    (root / "notes.txt").write_text("The secret word is pineapple.\nIt is a fruit.\n")
    (root / "README.md").write_text("# Demo\nThis folder holds notes for the tool benchmark.\n")
    (root / "todo.txt").write_text("- buy milk\n- call Ada\n")
    (root / "src").mkdir()
    (root / "src" / "main.py").write_text("print('hello')\n")
    return root


def run_case(engine: LocalEngine, box: Any, prompt: str, params: Params, *, tools: bool,
             choice: str | None = None) -> tuple[list[Any], float]:
    """The turn's calls and its seconds (the whole turn: every step, every tool run)."""
    chat = ChatSession(engine, params.replace(tool_choice=choice or "auto"))
    use = ToolUse(box, Approvals(), ask=lambda call, tool: "no", max_steps=1) if tools else None
    t0 = time.perf_counter()
    current = turn(chat, prompt, tools=use)
    for _ in current.events():
        pass
    return [call for call, _ in current.calls], time.perf_counter() - t0


def bench(model: str, tokens: int, threads: int, folder: Path) -> dict[str, Any]:
    engine = LocalEngine(model, ctx=4096, gpu_layers=0, threads=threads)
    box = build_toolbox(["read_file", "list_dir", "run_shell"], allow=[folder])
    params = Params().replace(temperature=0.0, max_tokens=tokens)
    right = wrong = missed = none_right = 0
    plain_s: list[float] = []
    step_s: list[float] = []
    for prompt, tool, check in CASES:
        calls, _ = run_case(engine, box, prompt, params, tools=True)
        first = calls[0] if calls else None
        if tool is None:
            if first is None:
                none_right += 1
            else:
                wrong += 1
        elif first is None:
            missed += 1
        elif first.name == tool and first.error is None and check(first.arguments):
            right += 1
        else:
            wrong += 1
        if tool is not None:
            _, plain = run_case(engine, box, prompt + " ", params, tools=False)
            _, forced = run_case(engine, box, prompt + "  ", params, tools=True, choice=tool)
            plain_s.append(plain)
            step_s.append(forced)
    box.close()
    engine.close()
    return {"model": os.path.basename(model), "right": right, "wrong": wrong, "missed": missed,
            "no_tool_right": none_right, "needed": sum(1 for _, t, _ in CASES if t),
            "not_needed": sum(1 for _, t, _ in CASES if t is None),
            "plain_s": statistics.median(plain_s), "tool_s": statistics.median(step_s)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="a local GGUF (repeatable; default: the bundled model)")
    ap.add_argument("--tokens", type=int, default=80)
    ap.add_argument("--threads", type=int, default=default_threads())
    args = ap.parse_args()
    from gptterm.engine import llama_log

    llama_log.install()
    folder = scratch()
    models = args.model or [str(bundled_model_path())]
    rows = [bench(m, args.tokens, args.threads, folder) for m in models]
    print(f"{len(CASES)} prompts ({rows[0]['needed']} need a tool, {rows[0]['not_needed']} need none), tool_choice "
          f"auto, greedy, up to {args.tokens} tokens a step, {args.threads} threads; times: medians over the prompts "
          "that need a tool, the call forced")
    print(f"{'model':34} {'right':>5} {'wrong':>5} {'missed':>6} {'no-tool ok':>10} {'plain s':>8} {'with tool s':>11}"
          f" {'added s':>8}")
    for r in rows:
        print(f"{r['model']:34} {r['right']:>5} {r['wrong']:>5} {r['missed']:>6} "
              f"{r['no_tool_right']:>4}/{r['not_needed']:<5} {r['plain_s']:8.2f} {r['tool_s']:11.2f} "
              f"{r['tool_s'] - r['plain_s']:8.2f}")


if __name__ == "__main__":
    main()
