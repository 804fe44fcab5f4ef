"""Log-probabilities from raw logits: the softmax and the top alternatives, cheaply.

llama.cpp hands over the logits of the positions asked for (one row per
position, one column per vocabulary entry); these functions read them in
place (numpy views, no copy) and compute in float64 only what is returned.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def log_normalizers(logits: np.ndarray) -> np.ndarray:
    """log Σ exp(row) for each row, computed stably (max subtracted first)."""
    peak = logits.max(axis=1)
    shifted = np.exp(logits - peak[:, None], dtype=np.float32)
    return np.log(shifted.sum(axis=1, dtype=np.float64)) + peak


def target_logprobs(logits: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """log P(targets[i]) under the softmax of row i (fine-tuning scores a window with it)."""
    rows = np.arange(len(targets))
    return logits[rows, np.asarray(targets)].astype(np.float64) - log_normalizers(logits)


def top_k(row: np.ndarray, k: int, normalizer: float) -> list[tuple[int, float]]:
    """The ``k`` most likely tokens of one row, best first, with their log-probabilities."""
    k = min(k, row.shape[0])
    if k <= 0:
        return []
    best = np.argpartition(row, -k)[-k:]
    best = best[np.argsort(row[best])[::-1]]
    return [(int(i), float(row[i]) - normalizer) for i in best]


def row_logprob(row: np.ndarray, token: int, k: int) -> tuple[float, list[tuple[int, float]]]:
    """log P(token) under one row's softmax, and its ``k`` best alternatives."""
    normalizer = float(log_normalizers(row[None, :])[0])
    return float(row[token]) - normalizer, top_k(row, k, normalizer)
