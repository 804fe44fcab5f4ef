"""The command line: one-shot prompts, pipes, the chat REPL and utility commands.

``main`` turns every ``GpttermError`` into one line on stderr and its exit
code; Ctrl+C outside a reply exits with 130. Heavy modules (llama_cpp, the
TUI) are imported only by the commands that need them.
"""

from __future__ import annotations

import sys
from typing import Sequence

from gptterm.errors import GpttermError


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except GpttermError as err:
        print(f"gptterm: error: {err}", file=sys.stderr, flush=True)
        return err.exit_code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _dispatch(args: list[str]) -> int:
    from gptterm.cli import args as cli_args

    command = args[0] if args and args[0] in cli_args.PARSERS else None
    if command is None:
        ns = cli_args.prompt_parser().parse_intermixed_args(args)
        from gptterm.cli.chat import run_default

        return run_default(ns)
    ns = cli_args.PARSERS[command]().parse_args(args[1:])
    if command == "chat":
        from gptterm.cli.chat import run_repl

        return run_repl(ns)
    if command == "generate":
        from gptterm.cli.generate import run_generate

        return run_generate(ns)
    if command == "history":
        from gptterm.cli.history import run_history

        return run_history(ns)
    if command in ("summarize", "translate"):
        from gptterm.cli import tasks

        return tasks.run_summarize(ns) if command == "summarize" else tasks.run_translate(ns)
    if command == "models":
        from gptterm.cli.models import run_models

        return run_models(ns)
    if command == "serve":
        from gptterm.cli.serve import run_serve

        return run_serve(ns)
    if command == "config":
        from gptterm.cli.config import run_config

        return run_config(ns)
    from gptterm.cli.doctor import run_doctor

    return run_doctor(ns)
