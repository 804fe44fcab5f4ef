"""One-shot prompts (with pipes) and the chat REPL."""

from __future__ import annotations

import codecs
import dataclasses
import json
import os
import sys
import threading
from typing import Any, Callable, TYPE_CHECKING

from gptterm import paths, textio
from gptterm.cli import setup, structured, tool_calls
from gptterm.cli.io import TurnWriter, keeping_partial, note, read_stdin, run_turn, stdin_is_piped
from gptterm.cli.options import ChatOptions, PromptOptions, ReplyOptions
from gptterm.engine.state_cache import StateCache
from gptterm.errors import GpttermError, InputError, UsageError
from gptterm.session.turn import ToolUse, Turn, regenerate, turn
from gptterm.settings import PARAMS, find_param
from gptterm.tasks.ask import grounding as find_passages, sources_text
from gptterm.tasks.chat import ChatSession, compose_prompt
from gptterm.tasks.context import head_tokens
from gptterm.templates import library
from gptterm.types import Message, Reply

if TYPE_CHECKING:
    from gptterm.docs.index import DocIndex
    from gptterm.engine.base import Engine
    from gptterm.session import Session
    from gptterm.settings import Params
    from gptterm.tools.builtin import DocsScope


def run_default(opts: PromptOptions) -> int:
    prompt = textio.clean(" ".join(opts.prompt), "the prompt", note) if opts.prompt else None
    if prompt is None and not opts.template and not stdin_is_piped() and sys.stdin is not None and sys.stdin.isatty():
        if sys.stdout.isatty():
            return run_tui(opts)
        return Repl(opts.shared(ChatOptions)).run()
    session = opts.session()
    context = read_stdin(session.config.encoding) if stdin_is_piped() else None
    if opts.template:  # the template's input: stdin, else the PROMPT words
        return run_oneshot(opts, session, prompt, context)
    if prompt is None and context is None:
        raise InputError("nothing to ask: give a PROMPT or pipe text on stdin")
    if prompt is not None and not prompt.strip():
        raise InputError("the prompt is empty")
    if context is not None and not context.strip():
        if prompt is None:
            raise InputError("stdin is empty: nothing to ask (give a PROMPT or pipe some text)")
        if "{input}" in prompt:
            raise InputError("stdin is empty but the prompt uses {input}")
        context = None
    return run_oneshot(opts, session, prompt, context)


def run_tui(opts: PromptOptions) -> int:
    from gptterm.tui.app import create_app  # heavy: textual (only the app pays for it)

    # Textual sizes the screen from COLUMNS/LINES when they are set (shutil.get_terminal_size),
    # and a stale exported value would draw the app in a corner of the real terminal.
    if sys.stdout.isatty():
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)
    create_app(model=opts.model, overrides=dict(opts.params), server=opts.server, encoding=opts.encoding,
               welcome=not paths.config_file().exists(), tools=opts.tool_settings()).run()
    return 0


def run_oneshot(opts: PromptOptions, session: Session, prompt: str | None, context: str | None) -> int:
    # a template or schema that cannot be used is one line before the model loads
    schema = structured.schema(opts)
    bound = structured.template(opts, extra=prompt if context is not None and context.strip() else None)
    if bound is not None:
        # the template's input is stdin (the PROMPT words then follow its prompt), else the PROMPT words
        context, prompt = (context if context is not None and context.strip() else prompt), None
        if not (context or "").strip() and bound.needs_input():
            raise InputError(f"template {bound.template.name} needs a text: pipe it on stdin or give it as PROMPT")
        bound = dataclasses.replace(bound, schema=schema or bound.schema,
                                    system="" if "system" in opts.params else bound.system)
    engine = session.require_engine()
    params = session.params
    setup.advise(session, "chat", setup.text_languages(f"{prompt or ''}\n{context or ''}"))
    chat = ChatSession(engine, params, store=session.store, kind="oneshot", on_overflow=opts.on_overflow,
                       on_truncate=lambda r: note(r.describe()))
    used = params.replace(**bound.params) if bound is not None else params
    wanted = bound.schema if bound is not None else schema
    structured.warn_unsupported(engine, wanted)
    holds = structured.held(opts, wanted)

    def truncate_last(budget: int) -> Message:
        # Cut the piped text, never the instruction; without a pipe, cut the prompt.
        if bound is not None:
            fixed = engine.count_tokens(bound.message(""))
            return {"role": "user", "content": bound.message(head_tokens(engine, context or "", max(0, budget - fixed)))}
        if context is None:
            return {"role": "user", "content": head_tokens(engine, prompt or "", budget)}
        fixed = engine.count_tokens(compose_prompt(prompt, ""))
        return {"role": "user", "content": compose_prompt(prompt, head_tokens(engine, context, max(0, budget - fixed)))}

    stopped = threading.Event()
    try:
        tools = session.tool_use(session.approvals(), tool_calls.terminal_ask(stopped, json_output=opts.json),
                                 stopped=stopped)
        if tools is not None:
            tool_calls.say_failures(session)
            setup.advise(session, "tools")
        current = turn(chat, compose_prompt(prompt, context), template=bound, schema=schema,
                       truncate_last=truncate_last, tools=tools)
        first = current.reply
        assert first is not None
        logged = chat.store is not None
        writer = TurnWriter(setup.reply_writer(opts, first), show=opts.show_thinking, steps=tool_calls.show)
        try:
            with keeping_partial(current, writer, logged=logged):
                interrupted = run_turn(current, None if opts.json or holds else writer, steps=tool_calls.show)
            reply = current.reply or first  # the last step's: the answer
            checked = None if interrupted else structured.check(reply, chat.active_schema, used, logged=logged)
        except GpttermError as err:
            if opts.json:  # machines get what there is, and the reason, before the error exit
                print(json.dumps({**reply_json(current, engine, used, chat.conversation_id), "error": str(err)},
                                 ensure_ascii=False))
            raise
    finally:
        session.tools.close()  # MCP servers stop with the run
    if opts.json:
        print(json.dumps({**reply_json(current, engine, used, chat.conversation_id),
                          **structured.json_fields(checked)}, ensure_ascii=False))
    elif holds:
        structured.write_held(checked)  # JSON to a pipe or a file: only once it matches
    else:
        writer.end_line()
    report_end(opts, reply, used, interrupted, logged=logged)
    return 130 if interrupted else 0


def reply_json(current: Turn, engine: Engine, params: Params, conversation_id: int | None) -> dict[str, Any]:
    reply = current.reply
    assert reply is not None
    return {
        "text": reply.text,
        "thinking": reply.thinking or None,
        "model": engine.info.name,
        "finish_reason": reply.finish_reason,
        **reply.stats.as_dict(),
        "seed": reply.seed,
        "params": params.sampling(),
        "conversation_id": conversation_id,
        **({"tool_calls": tool_calls.calls_json(current), "steps": len(current.replies)} if current.tools else {}),
        **setup.logprobs_json(reply),
    }


def report_end(opts: ReplyOptions, reply: Reply, params: Params, interrupted: bool, *, logged: bool) -> None:
    if opts.verbose:
        note(setup.stats_line(reply))
    if interrupted:
        note("stopped; the partial reply is kept in history" if logged else "stopped")
    elif reply.finish_reason == "length":
        if reply.thinking and not reply.text.strip():
            note(f"the model spent all its tokens thinking ({reply.stats.completion_tokens}) and gave no answer: a "
                 "bigger --max-tokens, or --thinking off (/no_think in the REPL)")
        elif reply.stats.completion_tokens >= params.max_tokens:
            note(f"the reply stopped at --max-tokens ({params.max_tokens})")
        else:
            note(f"the reply stopped because the context ({reply.stats.prompt_tokens + reply.stats.completion_tokens}"
                 " tokens) is full; use a bigger --ctx")


# -- REPL ----------------------------------------------------------------------

HELP = """commands:
  /system [TEXT]       show or set the system prompt (empty TEXT clears it)
  /set [NAME [VALUE]]  show parameters, or set one (e.g. /set temperature 0.2)
  /save                save the parameters changed here to the config file
  /template [NAME [VAR=VALUE ...]]  apply a template to the next message (no NAME: list them; /template off)
  /think, /no_think    switch a reasoning model's thinking on or off (Qwen3, SmolLM3; /set thinking auto: its default)
  /regen               generate the last reply again
  /clear               start a new conversation
  /help                this help
  /exit                leave (also Ctrl+D, or Ctrl+C at the prompt)
input:
  end a line with \\ to continue on the next line; a line with only \"\"\" starts and ends a block
  Ctrl+C during a reply stops it and keeps the partial text"""


class Repl:
    def __init__(self, opts: ChatOptions):
        self.opts = opts
        self.session = opts.session()
        store = self.session.store
        conversation = None
        if opts.cont or opts.cid:
            if store is None:
                raise UsageError("--no-log cannot be combined with continuing a conversation")
            conversation = store.get(opts.cid) if opts.cid else store.latest()
            if conversation is None:
                raise InputError("there is no conversation to continue yet")
        engine = self.session.load()
        self.chat = ChatSession(engine, self.session.params, store=store, kind="chat",
                                on_overflow=opts.on_overflow, conversation=conversation,
                                on_truncate=lambda r: note(r.describe()),
                                state_cache=StateCache() if store is not None else None)
        self.interactive = sys.stdin.isatty()
        self.prompt_stream = sys.stdout if sys.stdout.isatty() else sys.stderr
        self.continued = conversation
        self.documents = _attach_documents(list(opts.docs)) if opts.docs else None
        #: what search_docs searches (-T search_docs): the documents of --docs
        self.docs_scope: DocsScope | None = None
        if self.documents is not None:
            from gptterm.tools.builtin import DocsScope  # only --docs needs it (this module is on the app's start path)

            self.docs_scope = DocsScope(*self.documents, label=" ".join(opts.docs or ()))
        self.chat.schema = structured.schema(opts)  # chat --schema: every reply
        self.chat.use_template(structured.template(opts))  # chat -t: the first message
        self.encoding = self.session.config.encoding
        self.approvals = self.session.approvals()
        # A pipe (or a terminal whose prompt goes to stderr) is read as bytes, each line decoded by textio;
        # input() gets the terminal's line editing, and what it returns is cleaned of undecodable bytes.
        self.lines: textio.LineReader | None = None
        self.line_editing = False
        if self.prompt_stream is sys.stdout and self.interactive:
            self.line_editing = _terminal_input(self.encoding)
        else:
            self.lines = textio.LineReader(sys.stdin.buffer, "stdin", self.encoding, notify=note)

    # input -------------------------------------------------------------------

    def _input(self, prompt: str) -> str:
        if self.lines is None:
            try:
                return textio.clean(input(prompt), "the line typed", note)
            except UnicodeDecodeError as err:  # a terminal stdin we could not reconfigure
                raise InputError(f"the line typed is not {err.encoding} text; name its encoding with "
                                 "--encoding") from None
        self.prompt_stream.write(prompt)
        self.prompt_stream.flush()
        line = self.lines.readline()
        if line is None:
            raise EOFError
        return line

    def read_message(self) -> str:
        line = self._input(">>> ")
        if line.strip() == '"""':
            lines: list[str] = []
            while True:
                more = self._input("... ")
                if more.strip() == '"""':
                    return "\n".join(lines)
                lines.append(more)
        while line.endswith("\\"):
            line = line[:-1] + "\n" + self._input("... ")
        return line

    # loop --------------------------------------------------------------------

    def banner(self) -> None:
        info = self.session.require_engine().info
        where = f" on {info.url}" if info.remote else ""
        print(f"gptterm chat · {info.name}{where} · context {info.n_ctx} tokens · /help for commands, Ctrl+D to exit",
              file=sys.stderr)
        if self.continued is not None:
            c = self.continued
            print(f"continuing conversation {c.id}: {c.title or '(untitled)'} ({len(c.messages)} messages)",
                  file=sys.stderr)

    def run(self) -> int:
        if self.line_editing:
            _enable_readline()
        self.banner()
        while True:
            try:
                text = self.read_message()
            except (EOFError, KeyboardInterrupt):
                print(file=sys.stderr)
                self.session.tools.close()
                return 0
            except InputError as err:
                if not self.interactive:
                    print(file=self.prompt_stream)  # end the prompt's line: the error gets its own
                    raise  # a pipe of bytes that are not text: one line and exit 5
                note(f"error: {err}")
                continue
            if not text.strip():
                continue
            try:
                if text.startswith("/"):
                    if self.command(text) == "exit":
                        self.session.tools.close()
                        return 0
                    continue
                self.send(text)
            except GpttermError as err:
                note(f"error: {err}")

    def send(self, text: str) -> None:
        """One message; with --docs, the passages that bear on it go with it, and their sources after."""
        setup.advise(self.session, "chat", setup.text_languages(text))
        self.chat.params = self.session.params
        grounding = None
        if self.documents is not None:
            index, ids = self.documents
            grounding = find_passages(index, ids, text, self.session.require_engine())
        self.stream(lambda tools: turn(self.chat, text, grounding=grounding, tools=tools))
        if grounding is not None:
            print("Sources:\n" + sources_text(grounding.hits), file=self.prompt_stream)

    def tool_use(self) -> ToolUse | None:
        """The tools for the next message (the ``tools`` parameter may have changed with /set)."""
        stopped = threading.Event()
        use = self.session.tool_use(self.approvals, tool_calls.terminal_ask(stopped), docs=self.docs_scope,
                                    stopped=stopped)
        if use is not None:
            tool_calls.say_failures(self.session)
            setup.advise(self.session, "tools")
        return use

    def stream(self, start: Callable[[ToolUse | None], Turn]) -> None:
        try:
            tools = self.tool_use()  # the first message with MCP servers starts them
        except KeyboardInterrupt:
            print(file=sys.stderr)
            note("stopped while the tools started")
            return
        current = start(tools)
        first = current.reply
        assert first is not None
        writer = TurnWriter(setup.reply_writer(self.opts, first), show=self.opts.show_thinking,
                            steps=tool_calls.show)
        logged = self.session.store is not None
        with keeping_partial(current, writer, logged=logged):
            interrupted = run_turn(current, writer)
        writer.end_line()
        reply = current.reply or first
        used = self.chat.active_params  # a template's parameters hold for its message's reply
        report_end(self.opts, reply, used, interrupted, logged=logged)
        if not interrupted:  # a reply that does not match the schema: one line, and the chat goes on
            structured.check(reply, self.chat.active_schema, used, logged=logged)

    # commands ------------------------------------------------------------------

    def command(self, text: str) -> str | None:
        name, _, arg = text[1:].partition(" ")
        name = name.lower()
        arg = arg.strip()
        if name in ("exit", "quit", "bye", "q"):
            return "exit"
        if name in ("help", "?"):
            print(HELP, file=sys.stderr)
        elif name == "clear":
            self.chat.clear()
            self.approvals = self.session.approvals()  # "always" held for the conversation that ended
            note("new conversation started")
        elif name in ("regen", "regenerate"):
            if not self.chat.messages:
                note("nothing to regenerate yet")
            else:
                self.chat.params = self.session.params
                self.stream(lambda tools: regenerate(self.chat, tools=tools))
        elif name == "system":
            if not arg and not text.rstrip().endswith(" "):
                note(f"system prompt: {self.chat.system!r}" if self.chat.system else
                     "no system prompt (the model's default applies); /system TEXT sets one")
            else:
                self.chat.set_system(arg)
                note("system prompt set" if arg else "system prompt cleared")
        elif name in ("think", "no_think", "nothink"):
            if self.session.require_engine().info.thinks is False:
                note("this model's chat template has no thinking mode: /think and /no_think change nothing here")
            else:
                self.set_param(f"thinking {'on' if name == 'think' else 'off'}")
        elif name == "set":
            self.set_param(arg)
        elif name == "template":
            self.template(arg)
        elif name == "save":
            note(self.session.save().text)
        else:
            note(f"unknown command /{name}; /help lists them")
        return None

    def set_param(self, arg: str) -> None:
        params = self.session.params
        if not arg:
            for p in PARAMS:
                print(f"  {p.name:<15} {p.format(params.values[p.name]):<10} {p.help}", file=sys.stderr)
            return
        name, _, raw = arg.partition(" ")
        param = find_param(name)
        if not raw.strip() and param.type is not str and param.none_means is None:
            print(f"  {param.name}: {param.format(params.values[param.name])} — {param.describe()}",
                  file=sys.stderr)
            return
        effect = self.session.set(param.name, raw)
        if effect.refused:
            raise UsageError(effect.text)
        if effect.reload:
            note(f"reloading the model with {effect.text} …")
            try:
                self.chat.engine = self.session.load()
            finally:
                self.chat.engine = self.session.engine
        if effect.system is not None:
            self.chat.set_system(effect.system)
        self.chat.params = self.session.params
        note(effect.text)

    def template(self, arg: str) -> None:
        """``/template NAME [VAR=VALUE ...]``: the next message is the template's input."""
        import shlex  # only /template needs it (this module is on the app's start path)

        if not arg:
            found, problems = library.all_templates()
            for line in problems:
                note(line)
            for t in found:
                print(f"  {t.name:<16} {t.description}", file=sys.stderr)
            waiting = self.chat.next_template
            note(f"template {waiting.template.name} waits for the next message" if waiting else
                 "/template NAME [VAR=VALUE ...] applies one to the next message")
            return
        if arg.lower() in ("off", "none"):
            self.chat.use_template(None)
            note("no template for the next message")
            return
        try:
            words = shlex.split(arg)
        except ValueError as err:
            raise UsageError(f"/template: {err}") from None
        bound = library.load(words[0]).bind(structured.variables(words[1:]))
        self.chat.use_template(bound)
        values = ", ".join(f"{k}={v}" for k, v in bound.values.items())
        note(f"template {bound.template.name}" + (f" ({values})" if values else "")
             + ": your next message is its input" + (" (the reply must match its schema)" if bound.schema else ""))


def _terminal_input(encoding: str | None) -> bool:
    """Make input() hand back a typed line whose bytes are not in the terminal's encoding as surrogate
    escapes (which ``textio.clean`` decodes), not a UnicodeDecodeError; --encoding names the encoding.
    Whether readline's line editing may be used: it reads characters in the locale's encoding, and
    mangles those of a terminal that uses another (it holds back a Latin-1 byte as the start of a UTF-8
    character), so --encoding other than the locale's reads plain lines."""
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    locale = getattr(sys.stdin, "encoding", None) or "utf-8"
    if reconfigure is not None:
        try:
            reconfigure(errors="surrogateescape", **({"encoding": encoding} if encoding else {}))
        except (ValueError, OSError, LookupError):
            pass
    return encoding is None or codecs.lookup(encoding).name == codecs.lookup(locale).name


def _enable_readline() -> None:
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:
        pass


def _attach_documents(items: list[str]) -> tuple[DocIndex, list[int]]:
    """The index brought up to date for --docs, and the files it covers."""
    # only --docs indexes, with sqlite3 (this module is on the app's start path)
    from gptterm.cli.docs import index_roots
    from gptterm.docs.index import DocIndex

    index = DocIndex()
    roots = index.roots_for(items)
    index_roots(index, roots)
    ids = index.scope(roots)
    if not ids:
        raise InputError("--docs: none of those files holds readable text")
    note(f"answering from {len(ids)} files too (--docs)")
    return index, ids


def run_repl(opts: ChatOptions) -> int:
    return Repl(opts).run()
