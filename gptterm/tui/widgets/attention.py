"""The Inspect pane's Attention view: what a token attends to, with layer and head selectors.

The pane captures the attention of the tokens it shows (its text, scored, or a prompt and its
continuation) through its ``Generation``: ``capture_work`` runs on the borrowed engine, in one evaluation
on a second llama.cpp context (gptterm.engine.attention), and yields one ``Captured``. This panel keeps
it and one reduced matrix per selector setting (the latest ``KEEP``), so that moving from token to token
is only a row lookup; a setting not reduced yet is reduced in a thread worker (30 layers × 9 heads of a
512-token text take about 0.1 s). ``levels`` gives the pane's token view the shade of every earlier token
for the one it has selected; the most attended ones are listed here.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Sequence

from rich.color import Color
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Select, Static

from gptterm.errors import UsageError
from gptterm.tasks import attention as views

if TYPE_CHECKING:
    import numpy as np

    from gptterm.engine.attention import Capture
    from gptterm.engine.base import Engine
    from gptterm.tui.generation import Run
    from gptterm.types import TokenInfo

#: reduced matrices kept per capture (each n² floats: 1 MB at 512 tokens)
KEEP = 16
TOP = 8  # most attended tokens listed (as many as the panel's height shows)
LABEL_CHARS = 10
BAR_CHARS = 12
SELECTED = Style.parse("bold white on #bf616a")


@dataclass(frozen=True)
class Captured:
    """The attention of ``ids`` (the tokens the pane showed when it was asked), with its first view: the mean
    over every layer and head."""

    ids: tuple[int, ...]
    capture: Capture
    first: np.ndarray


def capture_work(run: Run, ids: Sequence[int]) -> Iterator[Captured]:
    """The pane's Generation work: the size checked first (one line giving the limit), then the capture."""
    # heavy: llama_cpp and numpy, in the worker when a capture is asked for
    from gptterm.engine import attention
    from gptterm.engine.local import LocalEngine

    engine: Engine = run.lease.engine
    if not isinstance(engine, LocalEngine):
        raise UsageError(not_local(engine))
    layers, heads = attention.shape_of(engine)
    attention.check_size(len(ids), layers, heads)
    found = attention.capture(engine, ids)
    if not run.stopped.is_set():
        yield Captured(tuple(ids), found, views.matrix(found, views.Selection()))


def not_local(engine: Engine) -> str:
    where = f" ({engine.info.url})" if engine.info.url else ""
    return (f"Attention reads llama.cpp's own tensors: it needs a local model, not a server{where}; "
            "load a local model (Models, F6)")


def token_style(level: float | None, *, special: bool, selected: bool) -> Style:
    """A token of the attention view: shaded by ``level`` (0..1) when the selected token can see it,
    dim when it comes after (the causal mask hides it), the selected one marked."""
    if selected:
        return SELECTED
    if level is None:
        return Style(dim=True, bold=special)
    r, g, b = views.rgb(level)
    ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "white"
    return Style(color=ink, bgcolor=Color.from_rgb(r, g, b), bold=special)


def _layer_options(capture: Capture) -> list[tuple[str, str]]:
    return [("all layers", "all")] + [(f"layer {n}", str(i)) for i, n in enumerate(capture.layers)]


def _head_options(capture: Capture) -> list[tuple[str, str]]:
    return [("heads: mean", "mean"), ("heads: max", "max")] + [(f"head {h}", str(h)) for h in range(capture.n_heads)]


class AttentionPanel(Vertical):
    """The selectors and the most attended tokens; the capture and its reduced matrices."""

    DEFAULT_CSS = """
    AttentionPanel { height: 1fr; }
    AttentionPanel #attention-body { height: 1fr; }
    AttentionPanel #attention-controls { width: 1fr; }
    AttentionPanel #attention-selectors { height: 3; }
    AttentionPanel #attention-selectors Select { width: 1fr; }
    AttentionPanel #attention-top { width: 1fr; padding: 0 1; }
    """

    @dataclass
    class Changed(Message):
        """The shading changed (a new capture, another layer or head): the token view draws again."""

    @dataclass
    class Reduced(Message):
        capture: Capture
        selection: views.Selection
        matrix: np.ndarray

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.captured: Captured | None = None
        self.selection = views.Selection()
        self._matrices: OrderedDict[views.Selection, np.ndarray] = OrderedDict()
        self._infos: list[TokenInfo] = []
        self._index = -1

    def compose(self) -> ComposeResult:
        with Horizontal(id="attention-body"):
            with Vertical(id="attention-controls"):
                with Horizontal(id="attention-selectors"):
                    yield Select([("all layers", "all")], value="all", allow_blank=False, id="attention-layer",
                                 tooltip="one layer, or the mean over all of them")
                    yield Select([("heads: mean", "mean")], value="mean", allow_blank=False, id="attention-head",
                                 tooltip="one head, or the mean or the maximum over the layer's heads")
                yield Button("Probabilities (ctrl+t)", id="inspect-attention-off")
            yield Static("", id="attention-top")

    # -- the capture -----------------------------------------------------------------------

    def load(self, captured: Captured, infos: list[TokenInfo]) -> None:
        """Show ``captured`` (of the tokens ``infos``), from the mean over every layer and head."""
        self.captured = captured
        self._infos = infos
        self.selection = views.Selection()
        self._matrices = OrderedDict({self.selection: captured.first})
        with self.prevent(Select.Changed):
            layer = self.query_one("#attention-layer", Select)
            layer.set_options(_layer_options(captured.capture))
            layer.value = "all"
            head = self.query_one("#attention-head", Select)
            head.set_options(_head_options(captured.capture))
            head.value = "mean"
        self.post_message(self.Changed())

    def clear(self) -> None:
        """Let go of the capture (up to 512 MB): the tokens it was made of are no longer shown."""
        self.captured = None
        self._matrices.clear()
        self._infos = []
        self.query_one("#attention-top", Static).update("")

    def holds(self, ids: Sequence[int]) -> bool:
        return self.captured is not None and self.captured.ids == tuple(ids)

    def caption(self) -> str:
        if self.captured is None:
            return ""
        c = self.captured.capture
        return (f"attention: {self.selection.label()} · ←/→ or a click picks a token · shade ∝ "
                f"√(weight / the largest) · {c.n_layers} layers × {c.n_heads} heads, {len(c)} tokens")

    # -- another layer or head ---------------------------------------------------------------

    @on(Select.Changed)
    def _selector_changed(self, event: Select.Changed) -> None:
        event.stop()
        if self.captured is None:
            return
        layer = self.query_one("#attention-layer", Select).value
        head = self.query_one("#attention-head", Select).value
        selection = views.Selection(views.parse_layer(str(layer)), views.parse_head(str(head)))
        if selection == self.selection:
            return
        self.selection = selection
        if selection in self._matrices:
            self._matrices.move_to_end(selection)
            self.post_message(self.Changed())
        else:
            self._reduce(self.captured.capture, selection)

    @work(thread=True, exclusive=True, group="attention-reduce", exit_on_error=False)
    def _reduce(self, capture: Capture, selection: views.Selection) -> None:
        self.post_message(self.Reduced(capture, selection, views.matrix(capture, selection)))

    def on_attention_panel_reduced(self, message: Reduced) -> None:
        message.stop()
        if self.captured is None or message.capture is not self.captured.capture:
            return  # a capture since replaced
        self._matrices[message.selection] = message.matrix
        while len(self._matrices) > KEEP:
            self._matrices.popitem(last=False)
        if message.selection == self.selection:
            self.post_message(self.Changed())

    # -- one token ---------------------------------------------------------------------------

    def _focus(self, index: int) -> views.Focus | None:
        m = self._matrices.get(self.selection)
        if m is None or not 0 <= index < m.shape[0]:
            return None
        return views.focus_in(m, index, TOP)

    def levels(self, index: int) -> list[float] | None:
        """The shade (0..1) of tokens 0..``index`` as token ``index`` attends to them; None while the
        selected layer and head are being reduced."""
        found = self._focus(index)
        return found.shade if found is not None else None

    def show_token(self, index: int) -> None:
        """List what token ``index`` attends to most."""
        self._index = index
        found = self._focus(index)
        top = self.query_one("#attention-top", Static)
        if found is None:
            top.update(Text("reducing…" if self.captured is not None else "", style="dim"))
            return
        text = Text()
        text.append(f"token {index} ", style="bold")
        text.append(views.label(self._infos[index].text, LABEL_CHARS * 2), style=SELECTED)
        text.append(" attends most to:", style="bold")
        peak = max((w for _, w in found.top), default=0.0) or 1.0
        width = len(str(index))
        for j, w in found.top:
            text.append(f"\n{j:>{width}} ", style="dim")
            text.append(f"{views.label(self._infos[j].text, LABEL_CHARS):<{LABEL_CHARS}} ",
                        style="bold" if self._infos[j].special else "")
            bar = Style(color=Color.from_rgb(*views.rgb(max(0.4, (w / peak) ** 0.5))))
            text.append("█" * max(1, round(BAR_CHARS * w / peak)), style=bar)
            text.append(f" {w:.3f}")
        top.update(text)
