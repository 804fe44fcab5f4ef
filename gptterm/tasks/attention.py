"""The matrix math of attention views: which layer and head, one token's row, the JSON shape.

A capture (``gptterm.engine.attention.Capture``) holds weights[layer, head, query, key]. Views reduce it to
one n × n matrix: one layer or the mean over all of them, and one head, or the mean or the maximum over
heads. The max over heads is not a distribution (its rows do not sum to 1): it shows what any head looks
at. Faces pick the view with ``Selection`` (parsed from ``--layer`` / ``--head`` or a TUI selector) and
draw the matrix, a row (``bars``) or a ``Focus`` (a token's earlier tokens shaded, the most attended ones).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence, Union

from gptterm.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from gptterm.engine.attention import Capture
    from gptterm.types import TokenInfo

Layer = Union[int, str]  # a layer index, or "all"
Head = Union[int, str]  # a head index, "mean" or "max"
HEAD_REDUCTIONS = ("mean", "max")
# dark blue -> blue -> yellow: every face shades a weight along it (the CLI at √weight, the app at a Focus's shade)
GRADIENT = ((24, 26, 48), (58, 92, 200), (250, 214, 80))


def parse_layer(text: str | None) -> Layer:
    if text is None or text.strip().lower() == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--layer takes a layer number or 'all', not {text!r}") from None


def parse_head(text: str | None) -> Head:
    if text is None or text.strip().lower() in HEAD_REDUCTIONS:
        return "mean" if text is None else text.strip().lower()
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--head takes a head number, 'mean' or 'max', not {text!r}") from None


@dataclass(frozen=True)
class Selection:
    layer: Layer = "all"
    head: Head = "mean"

    def check(self, n_layers: int, n_heads: int) -> None:
        if isinstance(self.layer, int) and not 0 <= self.layer < n_layers:
            raise UsageError(f"--layer {self.layer}: the model has layers 0 to {n_layers - 1}")
        if isinstance(self.head, int) and not 0 <= self.head < n_heads:
            raise UsageError(f"--head {self.head}: the model has heads 0 to {n_heads - 1}")

    def label(self) -> str:
        layer = "mean of all layers" if self.layer == "all" else f"layer {self.layer}"
        head = f"head {self.head}" if isinstance(self.head, int) else f"{self.head} over heads"
        return f"{layer}, {head}"


def matrix(capture: Capture, selection: Selection) -> np.ndarray:
    """The n × n matrix [query, key] the selection shows."""
    selection.check(capture.n_layers, capture.n_heads)
    w = capture.weights if not isinstance(selection.layer, int) else capture.weights[selection.layer:selection.layer + 1]
    if isinstance(selection.head, int):
        per_layer = w[:, selection.head]
    elif selection.head == "max":
        per_layer = w.max(axis=1)
    else:
        per_layer = w.mean(axis=1)
    return per_layer.mean(axis=0)


def bars(m: np.ndarray, index: int) -> list[tuple[int, float]]:
    """Token ``index``'s attention: (key, weight) for every key it can see (0..index), in order."""
    if not 0 <= index < m.shape[0]:
        raise UsageError(f"--from {index}: the text has tokens 0 to {m.shape[0] - 1}")
    return [(j, float(m[index, j])) for j in range(index + 1)]


def most_attended(m: np.ndarray, index: int, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` keys token ``index`` attends to most, most first."""
    row = bars(m, index)
    return sorted(row, key=lambda kw: -kw[1])[:k]


@dataclass
class Focus:
    """One token's view, for a face that shades the earlier tokens: ``shade[j]`` in 0..1 for keys 0..index
    (the weight over the row's largest, square-rooted so that weights far below the largest still show),
    the raw ``weights`` and the ``top`` keys."""

    index: int
    weights: list[float]
    shade: list[float]
    top: list[tuple[int, float]]


def focus(capture: Capture, index: int, selection: Selection = Selection(), k: int = 5) -> Focus:
    return focus_in(matrix(capture, selection), index, k)


def focus_in(m: np.ndarray, index: int, k: int = 5) -> Focus:
    """``focus`` on a matrix already reduced (a face moving from token to token keeps one per selection:
    reducing 30 layers × 9 heads of 512² floats takes a noticeable fraction of a second)."""
    row = [w for _, w in bars(m, index)]
    peak = max(row) or 1.0
    return Focus(index, row, [(w / peak) ** 0.5 for w in row], most_attended(m, index, k))


def rgb(level: float) -> tuple[int, int, int]:
    """The colour of ``level`` (0..1, clamped) along ``GRADIENT``."""
    v = max(0.0, min(1.0, level)) * (len(GRADIENT) - 1)
    k = min(int(v), len(GRADIENT) - 2)
    f = v - k
    a, b = GRADIENT[k], GRADIENT[k + 1]
    return (round(a[0] + (b[0] - a[0]) * f), round(a[1] + (b[1] - a[1]) * f), round(a[2] + (b[2] - a[2]) * f))


def label(text: str, chars: int) -> str:
    """A token's text as a short label: line breaks and tabs escaped, spaces shown as ·, cut to ``chars``."""
    shown = json.dumps(text, ensure_ascii=False)[1:-1].replace(" ", "·")
    return shown if len(shown) <= chars else shown[: chars - 1] + "…"


def as_json(capture: Capture, infos: Sequence[TokenInfo], *, layer: Layer | None = None,
            head: Head | None = None, digits: int = 4) -> dict[str, Any]:
    """{"tokens": [...], "layers": [{"layer", "heads": [{"head", "weights": rows}]}]}: each row i holds the
    weights of keys 0..i (the causal mask makes the rest 0). Every layer and head unless narrowed; a
    head of "mean"/"max" is that reduction, a layer of "all" (given) is the mean over layers."""
    sel = Selection(layer if layer is not None else 0, head if head is not None else "mean")
    sel.check(capture.n_layers, capture.n_heads)
    layer_ids: list[Layer] = list(range(capture.n_layers)) if layer is None else [layer]
    head_ids: list[Head] = list(range(capture.n_heads)) if head is None else [head]
    out_layers = []
    for lid in layer_ids:
        heads = []
        for hid in head_ids:
            m = matrix(capture, Selection(lid, hid)).astype("float64").round(digits)
            heads.append({"head": hid, "weights": [m[i, :i + 1].tolist() for i in range(m.shape[0])]})
        out_layers.append({"layer": lid if lid == "all" else capture.layers[int(lid)], "heads": heads})
    return {"tokens": [{"index": i, "id": t.id, "piece": t.text, "special": t.special} for i, t in enumerate(infos)],
            "n_layers": capture.n_layers, "n_heads": capture.n_heads, "layers": out_layers}
