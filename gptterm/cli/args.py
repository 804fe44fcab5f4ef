"""The command grammar: a parser for every command, parameter flags derived from PARAMS.

Kept free of heavy imports: ``gptterm --help`` and ``--version`` only load this.
Shell completion (cli/completion.py) is generated from these same parsers.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from gptterm import __version__, textio
from gptterm.errors import UsageError
from gptterm.history.export import FORMATS as EXPORT_FORMATS
from gptterm.models.tasks import TASKS
from gptterm.cli.options import BY_COMMAND, Options
from gptterm.settings import LOAD, PARAMS
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
    "ask": "answer a question from your files, folders or a collection, citing the passages used",
    "docs": "named collections of documents for 'ask': add, list, update, remove",
    "tokens": "show how the model splits a text into tokens (ids, pieces, special tokens)",
    "perplexity": "how well the model predicts a text: cross-entropy, perplexity, the most surprising tokens",
    "attention": "which earlier tokens each token attends to (self-attention weights), as a heatmap",
    "finetune": "fine-tune the local model on your chat examples (JSONL) or text, into a new local model",
    "completion": "print a shell completion script: bash, zsh or fish",
    "templates": "list, show, create, edit and import templates (email replies, news, commit messages, …)",
    "tools": "the tools a model can be given (-T): built-ins and MCP servers, their arguments, servers that fail",
}
SHELLS = ("bash", "zsh", "fish")
# Values that change between runs; completion scripts ask 'gptterm completion --values NAME' for them.
DYNAMIC = ("models", "languages", "templates")

SERVER_HELP = ("use an OpenAI-compatible server instead of a local model: its URL (http://HOST:PORT/v1), a "
               "[servers.NAME] profile of the config file, or 'local' (default: $GPTTERM_SERVER, "
               "$OPENAI_BASE_URL, 'server' in the config file, else local); the API key comes from "
               "$GPTTERM_API_KEY or $OPENAI_API_KEY, or the profile's api_key_env")
MODEL_HELP = ("a .gguf file, or the name of a local model ('gptterm models ls'); default: 'model' in the config "
              "file, else the bundled SmolLM2-135M-Instruct; with --server, the name of a model the server lists "
              "(default: its first)")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and a UsageError, not usage dumps."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No prefix matching: each new flag could silently change what an old abbreviation means
        # (adding --top-p made --to ambiguous). Subparsers are made with parser_class=Parser, so they get it too.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _completes(action: argparse.Action, values: str) -> argparse.Action:
    """Let shell completion offer the DYNAMIC ``values`` for this argument."""
    action.complete = values  # type: ignore[attr-defined]
    return action


def _add_server(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="URL|NAME", help=SERVER_HELP)


def _add_model(parser: argparse.ArgumentParser, help: str = MODEL_HELP) -> None:
    _completes(parser.add_argument("-m", "--model", metavar="MODEL", help=help), "models")


def _add_language(parser: argparse.ArgumentParser, *flags: str, **kwargs: Any) -> None:
    _completes(parser.add_argument(*flags, metavar="LANG", **kwargs), "languages")


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="do not say when the model is not suited to the task and which one is ('advice = false' "
                             "in the config file does it always)")


def _add_encoding(parser: argparse.ArgumentParser) -> None:
    """--encoding on every command that reads text input (files, stdin, the REPL's lines)."""
    parser.add_argument("--encoding", metavar="NAME", type=textio.check_encoding,
                        help="read text input (files, stdin) in this encoding instead of detecting it, e.g. gb18030, "
                             "big5, shift_jis, cp1252 (default: 'encoding' in the config file, else detected)")


def _output_encoding(value: str) -> str:
    return "same" if value.lower() == "same" else textio.check_encoding(value)


def _add_param_flags(parser: argparse.ArgumentParser, kinds: tuple[str, ...], title: str | None = None) -> None:
    group = parser.add_argument_group(title or ("generation parameters" if LOAD not in kinds else "parameters"))
    for p in PARAMS:
        if p.kind not in kinds:
            continue
        extra: dict[str, Any] = {"action": "append"} if p.is_list else {}
        group.add_argument(*p.flags, dest=p.name, default=None, metavar=p.metavar or p.type.__name__.upper(),
                           help=p.describe().replace("%", "%%") + ("; repeat the flag for more" if p.is_list else ""),
                           **extra)


def _add_schema(parser: argparse.ArgumentParser) -> None:
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--schema", metavar="FILE|JSON",
                     help="the reply is JSON matching this JSON Schema: a file, JSON text, or fields like 'name, age "
                          "int, bio: a short bio' (types str, int, float, bool); exit 14 when it does not match")
    out.add_argument("--json-object", action="store_true", help="the reply is a JSON object (any); exit 14 otherwise")


def _add_template(parser: argparse.ArgumentParser) -> None:
    _completes(parser.add_argument("-t", "--template", metavar="NAME|PATH",
                                   help="use a template ('gptterm templates' lists them): its system prompt, its "
                                        "prompt around the input (stdin, else PROMPT), its parameters and schema"),
               "templates")
    parser.add_argument("-V", "--var", action="append", default=[], metavar="NAME=VALUE",
                        help="a template variable, e.g. -V tone=formal (repeatable)")


def _add_tools(parser: argparse.ArgumentParser) -> None:
    """What the model may call (-T and the other tool parameters come from PARAMS) and who approves it."""
    group = parser.add_argument_group("tools")
    group.add_argument("--mcp", action="append", metavar="COMMAND|URL",
                       help="an MCP server for this run: a command that speaks MCP on stdio (e.g. 'npx -y "
                            "@modelcontextprotocol/server-filesystem ~/notes') or a streamable HTTP URL; its tools "
                            "are offered to the model (repeatable)")
    group.add_argument("--approve", action="append", metavar="NAME",
                       help="let this tool run without asking (mcp:SERVER: every tool of that server; repeatable)")
    group.add_argument("--yes", action="store_true",
                       help="let every tool run without asking (tools that only read never ask)")
    _add_param_flags(parser, ("tools",), title="tool parameters")


def _add_common(parser: argparse.ArgumentParser, *, chat: bool = True, structured: bool = False) -> None:
    """``structured``: also -t/-V (chat commands) and --schema/--json-object (every generating command)."""
    _add_model(parser)
    _add_server(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object with the text and statistics")
    parser.add_argument("--no-log", action="store_true", help="do not store this exchange in the history")
    parser.add_argument("-v", "--verbose", action="store_true", help="print token counts and speed to stderr")
    if chat:
        _add_quiet(parser)
    _add_encoding(parser)
    if chat:
        parser.add_argument("--on-overflow", choices=ON_OVERFLOW, default="error",
                            help="when the prompt does not fit the context: fail (default) or drop the oldest text")
    parser.add_argument("--show-probs", action="store_true",
                        help="colour the streamed reply by each token's probability (on a terminal; needs no --json)")
    parser.add_argument("--show-thinking", action="store_true",
                        help="also print a reasoning model's thinking (its <think> block), before the answer; it is "
                             "left out otherwise (--json has it in 'thinking')")
    if structured:
        _add_schema(parser)
        if chat:
            _add_template(parser)
    kinds = ("sampling", "load", "output", "prompt") if chat else ("sampling", "load", "output")
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
    _add_common(parser, structured=True)
    _add_tools(parser)
    return parser


def chat_parser() -> Parser:
    parser = Parser(prog="gptterm chat", description=COMMANDS["chat"])
    cont = parser.add_mutually_exclusive_group()
    cont.add_argument("-c", "--continue", dest="cont", action="store_true", help="continue the most recent conversation")
    cont.add_argument("--cid", type=int, metavar="ID", help="continue the conversation with this id")
    parser.add_argument("--docs", action="append", metavar="PATH|@NAME",
                        help="answer from these documents too: each message brings the passages that bear on it "
                             "(files, folders or a collection; repeatable)")
    _add_common(parser, structured=True)
    _add_tools(parser)
    return parser


def generate_parser() -> Parser:
    parser = Parser(prog="gptterm generate", description=COMMANDS["generate"])
    parser.add_argument("prompt", nargs="*", help="text to continue (default: stdin)")
    parser.add_argument("-n", "--samples", type=int, default=1, metavar="N", help="number of samples (default 1)")
    parser.add_argument("--no-echo", action="store_true", help="print only the continuation, not the prompt")
    _add_common(parser, chat=False, structured=True)
    return parser


def _task_common(parser: Parser) -> None:
    parser.add_argument("files", nargs="*", metavar="FILE", help="text files (default: stdin)")
    _add_model(parser)
    _add_server(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object with per-part results and stats")
    parser.add_argument("-v", "--verbose", action="store_true", help="print token counts and time to stderr")
    _add_quiet(parser)
    _add_encoding(parser)
    parser.add_argument("--output-encoding", metavar="same|NAME", type=_output_encoding,
                        help="write the result in this encoding instead of UTF-8; 'same': the input's (the first "
                             "file's); characters it cannot hold become ? (counted on stderr); not with --json")
    _add_param_flags(parser, ("sampling", "load"))
    parser.epilog = "Tasks decode greedily (temperature 0, repeat penalty 1) unless those flags are given."


def summarize_parser() -> Parser:
    parser = Parser(prog="gptterm summarize", description=COMMANDS["summarize"] + ": one pass when it fits the "
                    "context, else part by part and then combined")
    parser.add_argument("--length", default="medium", metavar="LEN",
                        help="short, medium, long, or a target number of words (default medium)")
    parser.add_argument("--form", default="paragraph", choices=("paragraph", "bullets", "tldr"),
                        help="paragraph (default), bullets or tldr (one sentence)")
    _add_language(parser, "--lang", help="write the summary in this language (code or name)")
    parser.add_argument("--focus", metavar="TEXT", help="what to stress, e.g. \"the risks\"")
    _task_common(parser)
    return parser


def translate_parser() -> Parser:
    parser = Parser(prog="gptterm translate", description=COMMANDS["translate"])
    _add_language(parser, "--to", help="target language code or name, e.g. zh, fr, German (required)")
    _add_language(parser, "--from", dest="source", help="source language (default: detected)")
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
    export.add_argument("-f", "--format", choices=EXPORT_FORMATS, default="md")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    rename = sub.add_parser("rename", help="set a conversation's title")
    rename.add_argument("id", type=int)
    rename.add_argument("title")
    _default_action(parser, "list")
    return parser


def doctor_parser() -> Parser:
    parser = Parser(prog="gptterm doctor", description=COMMANDS["doctor"])
    parser.add_argument("--json", action="store_true")
    _add_model(parser)
    _add_server(parser)
    _add_param_flags(parser, ("sampling", "load", "prompt"))
    return parser


def serve_parser() -> Parser:
    parser = Parser(prog="gptterm serve", description=COMMANDS["serve"] + " (python -m llama_cpp.server), so "
                    "that other machines can use it with 'gptterm --server URL'. Needs the server extra: "
                    "pip install 'gptterm[server]'.")
    _add_model(parser, "a .gguf file or a local model's name (default: the bundled model, or 'model' in the "
                       "config file)")
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
    _default_action(parser, "show")
    return parser


def models_parser() -> Parser:
    parser = Parser(prog="gptterm models", description=COMMANDS["models"],
                    epilog="Downloads go to the Hugging Face cache ($HF_HOME/hub, default ~/.cache/huggingface/hub); "
                           "HF_TOKEN authenticates (gated repos), HF_ENDPOINT picks another Hub.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    cat = sub.add_parser("catalog", help="curated models by size: what each is good for, and whether it fits this "
                                         "machine")
    cat.add_argument("--for", dest="task", choices=TASKS,
                     help="only the models good for this task, best first (* marks the one that suits this machine)")
    _add_language(cat, "--lang", help="only the models that know this language (code or name; several: zh,fr)")
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
    _completes(rm.add_argument("name"), "models")
    default = sub.add_parser("default", help="make NAME the model gptterm loads without -m")
    _completes(default.add_argument("name"), "models")
    imp = sub.add_parser("import", help="add an existing .gguf file under a name (the file stays where it is)")
    imp.add_argument("path")
    imp.add_argument("--name", help="the name to use (default: the file name without .gguf)")
    show = sub.add_parser("show", help="everything about a local model: files, checksum, GGUF metadata")
    _completes(show.add_argument("name"), "models")
    show.add_argument("--json", action="store_true")
    _default_action(parser, "ls")
    return parser


def completion_parser() -> Parser:
    parser = Parser(prog="gptterm completion", description=COMMANDS["completion"] + ", generated from gptterm's own "
                    "commands and options (local model names and language codes are looked up as you type)",
                    formatter_class=argparse.RawDescriptionHelpFormatter,
                    epilog="install it:\n"
                           "  bash  eval \"$(gptterm completion bash)\"    in ~/.bashrc\n"
                           "  zsh   eval \"$(gptterm completion zsh)\"     in ~/.zshrc, after compinit\n"
                           "  fish  gptterm completion fish > ~/.config/fish/completions/gptterm.fish")
    parser.add_argument("shell", nargs="?", choices=SHELLS)
    # what the scripts ask for as you type, one value a line
    parser.add_argument("--values", choices=DYNAMIC, help=argparse.SUPPRESS)
    return parser


def ask_parser() -> Parser:
    parser = Parser(prog="gptterm ask", usage="gptterm ask [PATH | @COLLECTION ...] QUESTION [options]",
                    description=COMMANDS["ask"] + ". Files and folders (recursively) are indexed in the data dir "
                    "and kept: asking again re-reads only what changed. With text piped on stdin, it is a "
                    "document too (cat manual.txt | gptterm ask \"how do I reset it?\").")
    parser.add_argument("items", nargs="+", metavar="PATH... QUESTION",
                        help="files, folders or @NAME collections to search, then the question (the last argument)")
    parser.add_argument("-k", type=int, default=4, metavar="N",
                        help="passages to answer from (default 4; fewer when the context cannot hold them)")
    parser.add_argument("--sources", action="store_true",
                        help="print the passages retrieved for the question, without asking the model")
    parser.add_argument("--embed-model", metavar="NAME|PATH",
                        help="an embedding GGUF: passages are also ranked by meaning, merged with the word ranking")
    _add_common(parser)
    return parser


def docs_parser() -> Parser:
    parser = Parser(prog="gptterm docs", description=COMMANDS["docs"])
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    ls = sub.add_parser("ls", help="the collections: files, passages, size, paths (the default)")
    ls.add_argument("--json", action="store_true")
    add = sub.add_parser("add", help="make (or extend) collection NAME from files and folders, and index them")
    add.add_argument("name")
    add.add_argument("paths", nargs="+", metavar="PATH")
    add.add_argument("--embed-model", metavar="NAME|PATH", help="also embed the passages with this model")
    update = sub.add_parser("update", help="index again what changed in collection NAME (every one: no NAME)")
    update.add_argument("name", nargs="?")
    rm = sub.add_parser("rm", help="forget collection NAME and the index of the files only it covered")
    rm.add_argument("name")
    show = sub.add_parser("show", help="the files of collection NAME and their passages")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    _default_action(parser, "ls")
    return parser


def tokens_parser() -> Parser:
    parser = Parser(prog="gptterm tokens", description=COMMANDS["tokens"] + ". On a terminal the pieces are drawn "
                    "as alternating coloured spans, then listed with their ids; otherwise one 'ID<TAB>PIECE' line each.")
    parser.add_argument("text", nargs="*", help="the text (words are joined with spaces); '-' or nothing: stdin")
    parser.add_argument("--chat", action="store_true",
                        help="the tokens of TEXT as a chat message, rendered by the model's chat template (where "
                             "the special tokens that mark roles and turns appear)")
    parser.add_argument("--json", action="store_true", help='print {"tokens": [{"id", "piece", ...}], "count": N}')
    _add_encoding(parser)
    _add_model(parser)
    _add_server(parser)
    _add_param_flags(parser, ("load", "prompt"))
    return parser


def perplexity_parser() -> Parser:
    parser = Parser(prog="gptterm perplexity", description=COMMANDS["perplexity"] + ". Computed as llama.cpp's "
                    "llama-perplexity does: the text is cut into windows of --ctx tokens and the second half of each "
                    "window is scored (a text shorter than one window is scored whole).")
    parser.add_argument("file", nargs="?", metavar="FILE", help="a text file; '-' or nothing: stdin")
    parser.add_argument("--worst", type=int, default=0, metavar="N",
                        help="also list the N most surprising tokens, with their context and what the model expected")
    parser.add_argument("--json", action="store_true", help="print one JSON object with every figure")
    _add_encoding(parser)
    _add_model(parser)
    _add_server(parser)
    _add_param_flags(parser, ("load",))
    return parser


def attention_parser() -> Parser:
    parser = Parser(prog="gptterm attention", description=COMMANDS["attention"] + ": softmax(QKᵀ/√d_k) of every "
                    "layer and head, read out of llama.cpp as it evaluates the text (local models only). Each row is "
                    "a token, each column an earlier token it can see; shading grows with the square root of the "
                    "weight. Off a terminal: one line per token, its index, piece and weights.")
    parser.add_argument("text", nargs="*", help="the text (words are joined with spaces); '-' or nothing: stdin")
    parser.add_argument("--layer", metavar="N|all", help="one layer (from 0), or 'all': the mean over layers "
                                                         "(default; --json: every layer)")
    parser.add_argument("--head", metavar="N|mean|max", help="one head (from 0), or the mean (default) or maximum "
                                                             "over heads (--json: every head)")
    parser.add_argument("--from", dest="from_index", type=int, metavar="TOKEN_INDEX",
                        help="only this token's attention, as bars over the tokens it can see")
    parser.add_argument("--chat", action="store_true",
                        help="the text as a chat message, as the model's chat template renders it")
    parser.add_argument("--json", action="store_true",
                        help='print {"tokens": [...], "layers": [{"layer", "heads": [{"head", "weights"}]}]}; '
                             "row i of weights holds keys 0..i")
    _add_encoding(parser)
    _add_model(parser)
    _add_param_flags(parser, ("load", "prompt"))
    return parser


def finetune_parser() -> Parser:
    parser = Parser(prog="gptterm finetune", formatter_class=argparse.RawDescriptionHelpFormatter,
                    description=COMMANDS["finetune"] + ".\n\n"
                    "Full fine-tuning with llama.cpp's training API (not LoRA): the model is converted to F32,\n"
                    "trained in a child process, saved and quantized back to its type. DATA is JSONL chat, one\n"
                    '{"messages": [{"role": "user", "content": "…"}, …]} a line, rendered with the model\'s chat\n'
                    "template, or plain text. Every token of a conversation is trained on, the prompts' too:\n"
                    "llama.cpp's training loop has no way to leave them out of the loss. Ctrl+C stops after the\n"
                    "current step and saves nothing.",
                    epilog="The result is listed by 'gptterm models ls' and used with -m NAME. Memory: about 16 "
                           "bytes a parameter\n(weights, gradients, AdamW state, all F32) plus the KV cache and "
                           "compute buffers; checked first.")
    parser.add_argument("data", metavar="DATA", help="a .jsonl file of chat examples, or a text file")
    parser.add_argument("--out", required=True, metavar="NAME", help="the name of the new model (required)")
    parser.add_argument("--epochs", type=int, default=2, metavar="N", help="passes over the data (default 2)")
    parser.add_argument("--lr", type=float, default=1e-4, metavar="RATE", help="AdamW learning rate (default 1e-4)")
    parser.add_argument("--ctx", type=int, default=256, metavar="N",
                        help="tokens per training window, a multiple of 256 (default 256)")
    parser.add_argument("--val-split", type=float, default=0.1, metavar="FRACTION",
                        help="share of the examples kept for validation: its loss after each epoch and its "
                             "perplexity before and after (default 0.1; 0: none)")
    parser.add_argument("--keep-f32", action="store_true",
                        help="keep the fine-tuned model in F32 (4 bytes a weight) instead of quantizing it back")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: all cores, or half on "
                                                                 "large machines)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the validation draw and the order of examples (default 0)")
    parser.add_argument("--json", action="store_true", help="print the result (losses, perplexity, the model) as JSON")
    # no --encoding: that flag means "reads stdin" (tests/test_encodings.py); DATA's encoding is detected, or
    # the config file's 'encoding'
    _add_model(parser, "the model to fine-tune: a .gguf file or a local model's name (default: 'model' in the config "
                       "file, else the bundled SmolLM2-135M-Instruct)")
    return parser


def templates_parser() -> Parser:
    parser = Parser(prog="gptterm templates", description=COMMANDS["templates"] + ". Built-in templates can be "
                    "overridden by a file of the same name in <config dir>/templates/; use one with "
                    "'gptterm -t NAME [-V VAR=VALUE]'.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    ls = sub.add_parser("ls", help="every template: name, where it is from, variables, description (the default)")
    ls.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="a template's prompts, variables, parameters and schema")
    _completes(show.add_argument("name", metavar="NAME|PATH"), "templates")
    show.add_argument("--json", action="store_true")
    new = sub.add_parser("new", help="write a commented starter template (or a copy of the built-in of that name) "
                                     "into <config dir>/templates/")
    new.add_argument("name")
    edit = sub.add_parser("edit", help="open template NAME in $EDITOR (a built-in is copied to your folder first)")
    _completes(edit.add_argument("name"), "templates")
    imp = sub.add_parser("import", help="import fabric patterns: a folder of NAME/system.md (and user.md), or one")
    imp.add_argument("folder", metavar="DIR")
    imp.add_argument("--force", action="store_true", help="replace templates of the same names")
    _default_action(parser, "ls")
    return parser


def tools_parser() -> Parser:
    parser = Parser(prog="gptterm tools", description=COMMANDS["tools"] + ". The MCP servers of the config file "
                    "([mcp.NAME]) and of --mcp are started to list their tools.")
    parser.add_argument("--mcp", action="append", metavar="COMMAND|URL", help="also this MCP server (repeatable)")
    parser.add_argument("--json", action="store_true", help="tools, servers and failures as one JSON object")
    return parser


PARSERS = {"chat": chat_parser, "config": config_parser, "generate": generate_parser, "history": history_parser,
           "summarize": summarize_parser, "translate": translate_parser, "models": models_parser,
           "doctor": doctor_parser, "serve": serve_parser, "tokens": tokens_parser, "ask": ask_parser,
           "docs": docs_parser, "templates": templates_parser,
           "perplexity": perplexity_parser, "completion": completion_parser, "tools": tools_parser,
           "attention": attention_parser, "finetune": finetune_parser}


def _default_action(parser: Parser, name: str) -> None:
    """Make ``gptterm GROUP`` alone run ``GROUP NAME``, with every attribute NAME's options would have set."""
    parser.set_defaults(**vars(subcommands(parser)[name][0].parse_args([])), action=name)


def arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options and positionals a user can give (not hidden ones, not the subcommand), in declared order."""
    return [a for a in parser._actions if a.help != argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[Parser, str]]:
    """A command group's subcommands: name -> (parser, one-line help); {} for a plain command."""
    # argparse keeps its parts private (_actions here, _option_string_actions in parse): only this module reads them.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {c.dest: (action.choices[c.dest], c.help or "") for c in action._choices_actions}
    return {}


def parse(args: list[str]) -> tuple[str | None, Options]:
    """The command that ``args`` name (None: a prompt for the chat model) and its options (cli/options.py).

    As in git and llm, the options every command shares (-m, --server, parameters, --json, -v, …) may come
    before the command's name: they are skipped, with their values, to find it, then given to the command
    (after its subcommand's name), which refuses those it does not take. A word after ``--``, or one with a
    space in it, is never a command name.
    """
    top = prompt_parser() if args[:1] and args[0].startswith("-") else None
    start, shared = _skip_shared_options(args, top) if top else (0, [])
    if start is None or start >= len(args) or args[start] not in PARSERS:
        return None, BY_COMMAND[None].from_namespace(_parse_prompt(top or prompt_parser(), args))
    command, rest = args[start], args[start + 1:]
    parser = PARSERS[command]()
    sub = subcommands(parser).get(rest[0]) if rest else None
    target, at = (sub[0], 1) if sub else (parser, 0)
    for name in shared:
        if name not in target._option_string_actions:
            target.error(f"{name} is not an option of '{target.prog}'")
    return command, BY_COMMAND[command].from_namespace(parser.parse_args(rest[:at] + args[:start] + rest[at:]))


def _parse_prompt(parser: Parser, args: list[str]) -> argparse.Namespace:
    """Options anywhere among the prompt's words; every word after ``--`` is a word of the prompt."""
    # Python 3.11's parse_intermixed_args still reads options after '--' ('gptterm -- -v' lost its -v)
    cut = args.index("--") if "--" in args else len(args)
    ns = parser.parse_intermixed_args(args[:cut])
    ns.prompt += args[cut + 1:]
    return ns


def _skip_shared_options(args: list[str], top: Parser) -> tuple[int | None, list[str]]:
    """Where the options that open ``args`` end, and the options named; None where one is not shared.

    None hands the whole line to the prompt parser, which prints --help or --version, or says which
    option it does not know.
    """
    takes_value = {opt: action.nargs != 0 for opt, action in top._option_string_actions.items()
                   if action.dest not in ("help", "version")}
    names: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-", "--"):
        word = args[i]
        i += 1
        name, eq, _ = word.partition("=")
        if name in takes_value:  # --ctx 512, --ctx=512, -ngl 0
            names.append(name)
            if takes_value[name] and not eq:
                i += 1  # its value
            continue
        if word.startswith("--"):
            return None, []
        for k in range(1, len(word)):  # -v, -vm MODEL, -mMODEL: argparse's rules for short options
            name = "-" + word[k]
            if name not in takes_value:
                return None, []
            names.append(name)
            if takes_value[name]:
                if k == len(word) - 1:
                    i += 1  # its value is the next word, not the rest of this one
                break
    return i, names
