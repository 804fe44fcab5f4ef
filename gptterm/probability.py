"""How a probability is shown: the same bands (and colours) in the CLI's --show-probs and the TUI."""

from __future__ import annotations

import math

#: (lowest probability, 256-colour palette index or None for "as usual"), most likely first
BANDS: tuple[tuple[float, int | None], ...] = ((0.9, None), (0.5, 229), (0.2, 214), (0.0, 196))
LEGEND = "colours: p ≥ 0.9 plain · ≥ 0.5 yellow · ≥ 0.2 orange · lower red"


def colour(p: float) -> int | None:
    """The palette colour for probability ``p`` (None: no colour, the model was sure)."""
    return next(c for low, c in BANDS if p >= low)


def shown(logprob: float | None) -> str:
    """A probability as a reader wants it: two digits, more for the very unlikely."""
    if logprob is None:
        return "?"
    p = math.exp(logprob)
    return f"{p:.2g}" if p < 0.01 else f"{p:.2f}"
