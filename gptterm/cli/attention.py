"""``gptterm attention``: which earlier tokens each token attends to, as a heatmap, bars or JSON."""

from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING, Sequence

from gptterm.cli.options import AttentionOptions
from gptterm.tasks.attention import label, rgb
from gptterm.cli.inspect import _text_argument
from gptterm.cli.io import note
from gptterm.engine import attention
from gptterm.engine.local import LocalEngine
from gptterm.errors import InputError, UsageError
from gptterm.tasks import attention as views

if TYPE_CHECKING:
    import numpy as np

    from gptterm.types import Message, TokenInfo

LABEL_CHARS = 10
BAR_WIDTH = 40
EIGHTHS = " ▏▎▍▌▋▊▉"


def run_attention(opts: AttentionOptions) -> int:
    session = opts.session(log=False)
    text = _text_argument(list(opts.text), "a text", session.config.encoding)
    if not text:
        raise InputError("the text is empty: nothing to look at")
    selection = views.Selection(views.parse_layer(opts.layer), views.parse_head(opts.head))
    params = session.params
    engine = session.load()
    if not isinstance(engine, LocalEngine):
        raise UsageError("attention reads llama.cpp's own tensors: it needs a local model, not a server")
    if opts.chat:
        messages: list[Message] = [{"role": "system", "content": params.system}] if params.system else []
        messages.append({"role": "user", "content": text})
        tokens = engine.chat_tokens(messages)
    else:
        tokens = engine.completion_tokens(text)
    if opts.from_index is not None and not 0 <= opts.from_index < len(tokens):
        raise UsageError(f"--from {opts.from_index}: the text has tokens 0 to {len(tokens) - 1}")
    n_layers, n_heads = attention.shape_of(engine)
    selection.check(n_layers, n_heads)
    attention.check_size(len(tokens), n_layers, n_heads)
    found = attention.capture(engine, tokens)
    infos = engine.token_info(tokens)
    if opts.json:
        data = views.as_json(found, infos, layer=None if opts.layer is None else selection.layer,
                             head=None if opts.head is None else selection.head)
        if opts.from_index is not None:
            m = views.matrix(found, selection)
            data["from"] = {"index": opts.from_index, "weights": [w for _, w in views.bars(m, opts.from_index)]}
        print(json.dumps({"model": engine.info.name, "chat": opts.chat, **data}, ensure_ascii=False))
        return 0
    m = views.matrix(found, selection)
    shape = f"{found.n_layers} layers × {found.n_heads} heads · {engine.info.name}"
    tty = sys.stdout.isatty()
    if opts.from_index is not None:
        rows = views.bars(m, opts.from_index)
        if tty:
            _draw_bars(infos, rows, opts.from_index, f"{selection.label()} · {shape}")
        else:
            for j, w in rows:
                print(f"{j}\t{_quoted(infos[j])}\t{w:.4f}")
        return 0
    if tty:
        _draw_heatmap(infos, m, f"{selection.label()} · {shape}")
    else:
        for i, info in enumerate(infos):
            print(f"{i}\t{_quoted(info)}\t" + " ".join(f"{w:.4f}" for w in m[i, :i + 1]))
        note(f"{len(infos)} tokens; {selection.label()} · {shape}")
    return 0


def _quoted(info: TokenInfo) -> str:
    return json.dumps(info.text, ensure_ascii=False)


def _label(info: TokenInfo) -> str:
    """A token as a short row label."""
    return label(info.text, LABEL_CHARS)


def _shade(w: float) -> tuple[int, int, int]:
    """The colour of weight ``w``: the gradient at √w."""
    return rgb(math.sqrt(max(0.0, min(1.0, w))))


def columns(n: int, room: int) -> tuple[int, int]:
    """(cell width, keys per column) for ``n`` keys in ``room`` terminal columns: 2 or 1 character a key,
    else several keys a column (their weights summed)."""
    if 2 * n <= room:
        return 2, 1
    if n <= room:
        return 1, 1
    return 1, math.ceil(n / max(1, room))


def binned_row(row: Sequence[float], i: int, per: int) -> list[float | None]:
    """Row ``i`` in columns of ``per`` keys: each the summed weight of its keys; None past the diagonal."""
    n = len(row)
    out: list[float | None] = []
    for start in range(0, n, per):
        out.append(None if start > i else float(sum(row[start:min(start + per, i + 1)])))
    return out


def _draw_heatmap(infos: list[TokenInfo], m: np.ndarray, caption: str) -> None:
    from rich.color import Color  # heavy: rich (only the drawn views pay for it, not --json)
    from rich.console import Console
    from rich.style import Style
    from rich.text import Text

    console = Console(highlight=False)
    n = len(infos)
    label_width = len(str(n - 1)) + 1 + LABEL_CHARS + 1
    cell, per = columns(n, console.width - label_width)
    n_cols = math.ceil(n / per)
    ruler = [" "] * (n_cols * cell)
    step = 10 if n_cols * cell >= 40 else 5
    for c in range(0, n_cols, max(1, step // cell)):
        mark = str(c * per)
        if c * cell + len(mark) <= len(ruler):
            ruler[c * cell:c * cell + len(mark)] = list(mark)
    console.print(Text(" " * label_width + "".join(ruler), style="dim"))
    for i, info in enumerate(infos):
        line = Text(f"{i:>{len(str(n - 1))}} ", style="dim")
        line.append(f"{_label(info):<{LABEL_CHARS}} ", style="bold" if info.special else "")
        for w in binned_row(m[i].tolist(), i, per):
            if w is None:
                line.append(" " * cell)
            else:
                line.append(" " * cell, style=Style(bgcolor=Color.from_rgb(*_shade(w))))
        console.print(line, no_wrap=True, overflow="crop")
    legend = Text("0 ")
    for k in range(9):
        legend.append("  ", style=Style(bgcolor=Color.from_rgb(*_shade(k / 8))))
    legend.append(" 1  (shade ∝ √weight)")
    if per > 1:
        legend.append(f" · a column is {per} tokens, their weights summed")
    console.print(legend)
    console.print(Text(f"rows attend to columns (earlier tokens) · {caption}", style="dim"))


def _draw_bars(infos: list[TokenInfo], rows: list[tuple[int, float]], index: int, caption: str) -> None:
    from rich.console import Console  # heavy: rich (only the drawn views pay for it, not --json)
    from rich.text import Text

    console = Console(highlight=False)
    top = {j for j, _ in sorted(rows, key=lambda r: -r[1])[:3]}
    peak = max(w for _, w in rows) or 1.0
    console.print(Text(f"token {index} {_quoted(infos[index])} attends to:", style="bold"))
    width = len(str(index))
    for j, w in rows:
        eighths = round(w / peak * BAR_WIDTH * 8)
        bar = "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")
        line = Text(f"{j:>{width}} ", style="dim")
        line.append(f"{_label(infos[j]):<{LABEL_CHARS}} ", style="bold" if j in top else "")
        line.append(f"{bar:<{BAR_WIDTH}} ", style="yellow" if j in top else "blue")
        line.append(f"{w:.3f}", style="bold" if j in top else "")
        console.print(line, no_wrap=True, overflow="crop")
    console.print(Text(caption, style="dim"))

