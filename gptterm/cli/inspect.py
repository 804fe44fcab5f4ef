"""``gptterm tokens`` and ``gptterm perplexity``: what the model sees in a text, and how it predicts it."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from gptterm import textio
from gptterm.cli.options import PerplexityOptions, TokensOptions
from gptterm.cli.io import Status, note, read_stdin, run_stream
from gptterm.errors import InputError, UsageError
from gptterm.probability import shown as shown_p
from gptterm.tasks.inputs import read_text_file
from gptterm.tasks.perplexity import Perplexity, Progress
from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.types import Message, TokenInfo
    from gptterm.tasks.perplexity import Result

# Alternating span styles of the token view (background colours, as the web tokenizer views draw them).
SPAN_STYLES = ("on #3b4252", "on #434c5e", "on #4c566a", "on #2e3440")
SPECIAL_STYLE = "bold black on #ebcb8b"


def _text_argument(words: list[str], what: str, encoding: str | None) -> str:
    if words and words != ["-"]:
        return textio.clean(" ".join(words), "the text", note)
    text = read_stdin(encoding)
    if text is None:
        raise InputError(f"give {what} as arguments or pipe it on stdin")
    return text


def shown_piece(info: TokenInfo) -> str:
    """A piece quoted for a listing: escapes for line breaks and tabs, bytes as <0xNN>."""
    return json.dumps(info.text, ensure_ascii=False)


# -- tokens ------------------------------------------------------------------------


def run_tokens(opts: TokensOptions) -> int:
    session = opts.session(log=False)
    text = _text_argument(list(opts.text), "a text", session.config.encoding)
    if not text:
        raise InputError("the text is empty: nothing to tokenize")
    params = session.params
    engine = session.load()
    if opts.chat:
        messages: list[Message] = ([{"role": "system", "content": params.system}] if params.system else [])
        messages.append({"role": "user", "content": text})
        tokens = engine.chat_tokens(messages)
    else:
        tokens = engine.completion_tokens(text)
    infos = engine.token_info(tokens)
    if opts.json:
        print(json.dumps({"model": engine.info.name, "chat": opts.chat, "count": len(infos),
                          "tokens": [{"id": t.id, "piece": t.text, "bytes": list(t.piece), "special": t.special}
                                     for t in infos]}, ensure_ascii=False))
        return 0
    if sys.stdout.isatty():
        _draw_tokens(infos)
    else:
        for t in infos:
            print(f"{t.id}\t{shown_piece(t)}")
        note(f"{plural(len(infos), 'token')} ({engine.info.name})")
    return 0


def _draw_tokens(infos: list[TokenInfo]) -> None:
    from rich.console import Console  # heavy: rich (only a terminal's view pays for it)
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    spans = Text()
    for i, t in enumerate(infos):
        spans.append(t.text, style=SPECIAL_STYLE if t.special else SPAN_STYLES[i % len(SPAN_STYLES)])
    console.print(spans)
    console.print()
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("id", justify="right")
    table.add_column("piece")
    for i, t in enumerate(infos):
        table.add_row(str(i), str(t.id), Text(shown_piece(t), style="bold" if t.special else ""))
    console.print(table)
    specials = sum(t.special for t in infos)
    console.print(plural(len(infos), "token") + (f", {specials} special" if specials else ""))


# -- perplexity ----------------------------------------------------------------------


def run_perplexity(opts: PerplexityOptions) -> int:
    if opts.worst < 0:
        raise UsageError("--worst must be 0 or more")
    text: str | None
    session = opts.session(log=False)
    encoding = session.config.encoding
    if opts.file and opts.file != "-":
        text = read_text_file(opts.file, encoding=encoding, notify=note).text
    else:
        text = read_stdin(encoding)
        if text is None:
            raise InputError("give a FILE or pipe text on stdin")
    # this engine only evaluates prompts: flash attention is faster for that, on the CPU too
    session.flash_attn = True
    engine = session.load()
    job = Perplexity(engine, window=session.params.ctx, worst=opts.worst)
    with Status() as line:

        def show(p: object) -> None:
            assert isinstance(p, Progress)
            rate = f" · {p.tokens_per_s:.0f} tok/s" if p.tokens_per_s else ""
            ppl = f" · perplexity so far {p.perplexity:.3f}" if p.perplexity == p.perplexity else ""
            line.show(f"perplexity: window {p.windows} · {p.fraction:.0%} of the text{ppl}{rate}", fraction=p.fraction)

        interrupted = run_stream(job.run(text), job.cancel, show)
    result = job.result
    if opts.json:
        print(json.dumps({"model": engine.info.name, **result.as_dict()}, ensure_ascii=False))
    else:
        print_result(result, engine)
    if interrupted or result.stopped:
        note("stopped: the figures are for the windows scored so far")
        return 130
    return 0


def print_result(r: Result, engine: Engine) -> None:
    if not r.scored:
        print("nothing was scored")
        return
    err = f" ± {r.stderr:.3f}" if r.stderr is not None else ""
    bpb = f" · {r.bits_per_byte:.3f} bits/byte" if r.bits_per_byte is not None else ""
    print(f"perplexity {r.perplexity:.4f}{err} · cross-entropy {r.cross_entropy:.4f} nats/token "
          f"({r.cross_entropy / 0.6931471805599453:.3f} bits){bpb}")
    if r.method == "whole":
        how = "every token after the first (the text is shorter than one window)"
    else:
        how = f"the second half of {r.windows} window{'s' if r.windows > 1 else ''} of {r.window}"
    speed = f" · {r.tokens_per_s:.0f} tok/s" if r.tokens_per_s else ""
    print(f"scored {r.scored:,} of {r.tokens:,} tokens: {how} · {r.seconds:.1f} s{speed} · {engine.info.name}")
    if r.worst:
        print("most surprising tokens:")
        for s in r.worst:
            expected = f"  (expected {json.dumps(s.expected, ensure_ascii=False)} p={shown_p(s.expected_logprob)})" \
                if s.expected is not None else ""
            context = f"…{s.before}[{s.text}]{s.after}…".replace("\n", "⏎")
            print(f"  p={shown_p(s.logprob)}  {json.dumps(s.text, ensure_ascii=False)} at {s.position:,}: "
                  f"{context}{expected}")
