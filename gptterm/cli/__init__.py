"""The command line: one-shot prompts, pipes, the chat REPL and utility commands.

``main`` turns every ``GpttermError`` into one line on stderr and its exit
code; Ctrl+C outside a reply exits with 130. Heavy modules (llama_cpp, the
TUI) are imported only by the commands that need them: ``RUNNERS`` names each
command's function by module, imported once the arguments are parsed.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

from gptterm.cli.args import parse
from gptterm.cli.io import utf8_streams
from gptterm.cli.options import PromptOptions
from gptterm.errors import GpttermError

RUNNERS = {
    None: "chat:run_default",  # no command: a prompt, stdin, the REPL or the app
    "chat": "chat:run_repl",
    "generate": "generate:run_generate",
    "summarize": "tasks:run_summarize",
    "translate": "tasks:run_translate",
    "history": "history:run_history",
    "config": "config:run_config",
    "models": "models:run_models",
    "doctor": "doctor:run_doctor",
    "serve": "serve:run_serve",
    "ask": "ask:run_ask",
    "docs": "docs:run_docs",
    "tokens": "inspect:run_tokens",
    "perplexity": "inspect:run_perplexity",
    "attention": "attention:run_attention",
    "finetune": "finetune:run_finetune",
    "completion": "completion:run_completion",
    "templates": "templates:run_templates",
    "tools": "tools:run_tools",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    utf8_streams()  # output is UTF-8 whatever the locale (--output-encoding asks for another)
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
    except SystemExit as done:  # argparse, once it has printed --help or --version: a status like any other
        if isinstance(done.code, str):
            raise
        return done.code or 0


def _dispatch(args: list[str]) -> int:
    command, opts = parse(args)
    module, _, function = RUNNERS[command].partition(":")
    # the runner's module is named by the table above; each takes its command's options (cli/options.py)
    run = getattr(importlib.import_module(f"gptterm.cli.{module}"), function)
    if command == "completion":  # runs on every Tab, and writes nothing
        return run(opts)
    from gptterm import privacy  # not on the completion path: it runs on every Tab

    privacy.tighten_on_start()  # an older install's files, made private once
    if not _app_may_start(opts):
        _show_notices()
    try:
        return run(opts)
    finally:
        _show_notices()  # the app shows them as a notification; if it did not start, here


def _app_may_start(opts: object) -> bool:
    """Whether this run may open the app (``run_default``'s test), which then shows the notices."""
    return (isinstance(opts, PromptOptions) and not opts.prompt and not opts.template and sys.stdin is not None
            and sys.stdin.isatty() and sys.stdout.isatty())


def _show_notices() -> None:
    from gptterm import privacy  # not on the completion path: it runs on every Tab

    for line in privacy.take_notices():
        print(f"gptterm: {line}", file=sys.stderr, flush=True)
