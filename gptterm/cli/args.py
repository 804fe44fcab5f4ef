"""Argument parsers for every command, with parameter flags derived from PARAMS.

Kept free of heavy imports: ``gptterm --help`` and ``--version`` only load this.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from gptterm import __version__
from gptterm.errors import UsageError
from gptterm.settings import LOAD, PARAMS, Params, find_param
from gptterm.tasks.context import ON_OVERFLOW

COMMANDS = {
    "chat": "interactive chat in the terminal (REPL)",
    "generate": "continue a text with no chat template (raw completion)",
    "summarize": "summarize files or stdin of any length",
    "translate": "translate files or stdin of any length, keeping paragraphs, Markdown and code",
    "history": "list, show, search, delete and export stored conversations",
    "config": "show or change the settings in the config file",
    "models": "find, download, list, remove and choose models (catalog, Hugging Face Hub)",
        "doctor": "versions, hardware support, the model or server that would be used, settings and paths",
    "serve": "share a local model: run llama-cpp-python's OpenAI-compatible server on it",
}

SERVER_HELP = ("use an OpenAI-compatible server instead of a local model: its URL (http://HOST:PORT/v1), a "
               "[servers.NAME] profile of the config file, or 'local' (default: $GPTTERM_SERVER, "
               "$OPENAI_BASE_URL, 'server' in the config file, else local); the API key comes from "
               "$GPTTERM_API_KEY or $OPENAI_API_KEY, or the profile's api_key_env")
MODEL_HELP = ("a .gguf file, or the name of a local model ('gptterm models ls'); default: 'model' in the config "
              "file, else the bundled SmolLM2-135M-Instruct; with --server, the name of a model the server lists "
              "(default: its first)")


def _add_server(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="URL|NAME", help=SERVER_HELP)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and a UsageError, not usage dumps."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _add_param_flags(parser: argparse.ArgumentParser, kinds: tuple[str, ...]) -> None:
    group = parser.add_argument_group("generation parameters" if LOAD not in kinds else "parameters")
    for p in PARAMS:
        if p.kind not in kinds:
            continue
        group.add_argument(*p.flags, dest=p.name, default=None, metavar=p.metavar or p.type.__name__.upper(),
                           help=p.describe().replace("%", "%%"))


def _add_common(parser: argparse.ArgumentParser, *, chat: bool = True) -> None:
    parser.add_argument("-m", "--model", metavar="MODEL", help=MODEL_HELP)
    _add_server(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object with the text and statistics")
    parser.add_argument("--no-log", action="store_true", help="do not store this exchange in the history")
    parser.add_argument("-v", "--verbose", action="store_true", help="print token counts and speed to stderr")
    if chat:
        parser.add_argument("--on-overflow", choices=ON_OVERFLOW, default="error",
                            help="when the prompt does not fit the context: fail (default) or drop the oldest text")
    kinds = ("sampling", "load", "prompt") if chat else ("sampling", "load")
    _add_param_flags(parser, kinds)


def prompt_parser() -> Parser:
    commands = "\n".join(f"  {name:<10} {text}" for name, text in COMMANDS.items())
    parser = Parser(
        prog="gptterm",
        usage="gptterm [options] [PROMPT ...]\n       gptterm COMMAND [options] ...",
        description="Chat with, and pipe text through, a local GGUF language model (or one on an OpenAI-compatible server).",
        epilog=(
            f"commands:\n{commands}\n\n"
            "With text piped on stdin, stdin is the context and PROMPT the instruction\n"
            "(git diff | gptterm \"explain this change\"); {input} in PROMPT places stdin.\n"
            "With no PROMPT and a terminal, 'gptterm' starts the chat REPL.\n"
            "Run 'gptterm COMMAND --help' for a command's options."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gptterm {__version__}")
    parser.add_argument("prompt", nargs="*", help="the prompt (words are joined with spaces)")
    _add_common(parser)
    return parser


def chat_parser() -> Parser:
    parser = Parser(prog="gptterm chat", description=COMMANDS["chat"])
    cont = parser.add_mutually_exclusive_group()
    cont.add_argument("-c", "--continue", dest="cont", action="store_true", help="continue the most recent conversation")
    cont.add_argument("--cid", type=int, metavar="ID", help="continue the conversation with this id")
    _add_common(parser)
    return parser


def generate_parser() -> Parser:
    parser = Parser(prog="gptterm generate", description=COMMANDS["generate"])
    parser.add_argument("prompt", nargs="*", help="text to continue (default: stdin)")
    parser.add_argument("-n", "--samples", type=int, default=1, metavar="N", help="number of samples (default 1)")
    parser.add_argument("--no-echo", action="store_true", help="print only the continuation, not the prompt")
    _add_common(parser, chat=False)
    return parser


def _task_common(parser: Parser) -> None:
    parser.add_argument("files", nargs="*", metavar="FILE", help="text files (default: stdin)")
    parser.add_argument("-m", "--model", metavar="MODEL", help=MODEL_HELP)
    _add_server(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object with per-part results and stats")
    parser.add_argument("-v", "--verbose", action="store_true", help="print token counts and time to stderr")
    _add_param_flags(parser, ("sampling", "load"))
    parser.epilog = "Tasks decode greedily (temperature 0, repeat penalty 1) unless those flags are given."


def summarize_parser() -> Parser:
    parser = Parser(prog="gptterm summarize", description=COMMANDS["summarize"] + ": one pass when it fits the "
                    "context, else part by part and then combined")
    parser.add_argument("--length", default="medium", metavar="LEN",
                        help="short, medium, long, or a target number of words (default medium)")
    parser.add_argument("--form", default="paragraph", choices=("paragraph", "bullets", "tldr"),
                        help="paragraph (default), bullets or tldr (one sentence)")
    parser.add_argument("--lang", metavar="LANG", help="write the summary in this language (code or name)")
    parser.add_argument("--focus", metavar="TEXT", help="what to stress, e.g. \"the risks\"")
    _task_common(parser)
    return parser


def translate_parser() -> Parser:
    parser = Parser(prog="gptterm translate", description=COMMANDS["translate"])
    parser.add_argument("--to", metavar="LANG", help="target language code or name, e.g. zh, fr, German (required)")
    parser.add_argument("--from", dest="source", metavar="LANG", help="source language (default: detected)")
    parser.add_argument("--glossary", metavar="FILE",
                        help="required term translations: 'term<TAB>translation' or 'term = translation' lines, "
                             "or a JSON object")
    _task_common(parser)
    return parser


def history_parser() -> Parser:
    parser = Parser(prog="gptterm history", description=COMMANDS["history"])
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    ls = sub.add_parser("list", help="recent conversations (the default)")
    ls.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20; 0 for all)")
    ls.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="print a conversation")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    search = sub.add_parser("search", help="conversations whose title or messages contain TEXT")
    search.add_argument("text")
    search.add_argument("-n", "--limit", type=int, default=50)
    search.add_argument("--json", action="store_true")
    delete = sub.add_parser("delete", help="delete conversations")
    delete.add_argument("ids", type=int, nargs="+", metavar="ID")
    export = sub.add_parser("export", help="write a conversation as Markdown or JSON")
    export.add_argument("id", type=int)
    export.add_argument("-f", "--format", choices=("md", "json"), default="md")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    rename = sub.add_parser("rename", help="set a conversation's title")
    rename.add_argument("id", type=int)
    rename.add_argument("title")
    return parser


def doctor_parser() -> Parser:
    parser = Parser(prog="gptterm doctor", description=COMMANDS["doctor"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-m", "--model", metavar="MODEL", help=MODEL_HELP)
    _add_server(parser)
    _add_param_flags(parser, ("sampling", "load", "prompt"))
    return parser


def serve_parser() -> Parser:
    parser = Parser(prog="gptterm serve", description=COMMANDS["serve"] + " (python -m llama_cpp.server), so "
                    "that other machines can use it with 'gptterm --server URL'. Needs the server extra: "
                    "pip install 'gptterm[server]'.")
    parser.add_argument("-m", "--model", metavar="MODEL",
                        help="path of a .gguf model file (default: the bundled model, or 'model' in the config file)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--name", metavar="NAME", help="model name clients see in /v1/models (default: the file's name)")
    parser.add_argument("--api-key-env", metavar="VAR",
                        help="require clients to send the API key held in environment variable VAR")
    _add_param_flags(parser, ("load",))
    return parser


def config_parser() -> Parser:
    parser = Parser(prog="gptterm config", description=COMMANDS["config"])
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    sub.add_parser("show", help="every setting, its value and where it comes from (the default)")
    setp = sub.add_parser("set", help="set NAME to VALUE in the config file (validated)")
    setp.add_argument("name")
    setp.add_argument("value")
    unset = sub.add_parser("unset", help="remove NAME from the config file (back to the default)")
    unset.add_argument("name")
    sub.add_parser("path", help="print the config file's path")
    return parser


def models_parser() -> Parser:
    parser = Parser(prog="gptterm models", description=COMMANDS["models"],
                    epilog="Downloads go to the Hugging Face cache ($HF_HOME/hub, default ~/.cache/huggingface/hub); "
                           "HF_TOKEN authenticates (gated repos), HF_ENDPOINT picks another Hub.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    cat = sub.add_parser("catalog", help="curated chat models by size, and whether they fit this machine")
    cat.add_argument("--json", action="store_true")
    search = sub.add_parser("search", help="GGUF repos on the Hub matching QUERY; for OWNER/NAME, that repo's files")
    search.add_argument("query")
    search.add_argument("-n", "--limit", type=int, default=20, help="how many repos (default 20)")
    search.add_argument("--json", action="store_true")
    pull = sub.add_parser("pull", help="download a model (resumable, sha256-verified)",
                          description="Download a model: a catalog id (see 'gptterm models catalog'), "
                                      "OWNER/NAME[:QUANT] (default quantization Q4_K_M, else the closest) "
                                      "or OWNER/NAME/FILE.gguf. An interrupted pull resumes where it stopped.")
    pull.add_argument("spec", metavar="MODEL")
    pull.add_argument("--dry-run", action="store_true", help="say what would be downloaded and whether it fits")
    pull.add_argument("--json", action="store_true", help="the plan (with --dry-run) or the result as JSON")
    ls = sub.add_parser("ls", help="local models (the default)")
    ls.add_argument("--json", action="store_true")
    rm = sub.add_parser("rm", help="delete a downloaded model (or forget an imported one)")
    rm.add_argument("name")
    default = sub.add_parser("default", help="make NAME the model gptterm loads without -m")
    default.add_argument("name")
    imp = sub.add_parser("import", help="add an existing .gguf file under a name (the file stays where it is)")
    imp.add_argument("path")
    imp.add_argument("--name", help="the name to use (default: the file name without .gguf)")
    show = sub.add_parser("show", help="everything about a local model: files, checksum, GGUF metadata")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    return parser


PARSERS = {"chat": chat_parser, "config": config_parser, "generate": generate_parser, "history": history_parser,
           "summarize": summarize_parser, "translate": translate_parser, "models": models_parser,
           "doctor": doctor_parser, "serve": serve_parser}


def param_overrides(ns: argparse.Namespace) -> dict[str, Any]:
    """The parameter values given as flags, parsed and validated."""
    out: dict[str, Any] = {}
    for p in PARAMS:
        raw = getattr(ns, p.name, None)
        if raw is not None:
            out[p.name] = find_param(p.name).parse(raw)
    return out


def effective_params(ns: argparse.Namespace, base: Params) -> Params:
    return base.replace(**param_overrides(ns))
