"""How surprised a model is by a text: cross-entropy, perplexity, the most surprising tokens.

Computed the way llama.cpp's ``llama-perplexity`` does, so both give the same
number on the same text and context size: the text's tokens (with BOS when
the model adds one) are cut into windows of the context size, each window
starts from an empty cache with BOS in its first place (for such models), and
only the second half of each window is scored — every scored token has at
least half a window of context. The tail shorter than a window is not
scored. The mean negative log-likelihood (nats per token) is the
cross-entropy; its exponential the perplexity, with the standard error
llama-perplexity prints. A text shorter than one window is scored whole
(every token after the first), and the result says so.

The text is tokenized a slice at a time and each window is scored as soon as
it is full, so memory stays flat however long the text is.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from gptterm.errors import InputError

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.types import ScoredWindow

# Characters tokenized at a time; slices end at a paragraph (or line) break so
# that no token spans two slices.
SLICE_CHARS = 32_000
CONTEXT_TOKENS = 8  # around a surprising token, on each side


@dataclass(frozen=True)
class Surprise:
    """A token the model found unlikely: where, how unlikely, and what it expected instead."""

    position: int
    text: str
    logprob: float
    expected: str | None
    expected_logprob: float | None
    before: str
    after: str

    @property
    def probability(self) -> float:
        return math.exp(self.logprob)

    def as_dict(self) -> dict[str, object]:
        return {"position": self.position, "token": self.text, "logprob": round(self.logprob, 4),
                "probability": self.probability, "expected": self.expected,
                "expected_logprob": None if self.expected_logprob is None else round(self.expected_logprob, 4),
                "before": self.before, "after": self.after}


@dataclass
class Progress:
    windows: int
    #: share of the text read so far (0..1)
    fraction: float
    scored: int
    perplexity: float | None
    tokens_per_s: float | None


@dataclass
class Result:
    tokens: int = 0
    scored: int = 0
    windows: int = 0
    window: int = 0
    #: "windows" (llama-perplexity's method) or "whole" (a text shorter than one window)
    method: str = "windows"
    nll: float = 0.0
    nll2: float = 0.0
    scored_bytes: int = 0
    seconds: float = 0.0
    evaluated: int = 0
    stopped: bool = False
    worst: list[Surprise] = field(default_factory=list)

    @property
    def cross_entropy(self) -> float:
        """Mean negative log-likelihood of the scored tokens, in nats."""
        return self.nll / self.scored if self.scored else float("nan")

    @property
    def perplexity(self) -> float:
        return math.exp(self.cross_entropy) if self.scored else float("nan")

    @property
    def stderr(self) -> float | None:
        """The perplexity's standard error, as llama-perplexity computes it."""
        if self.scored < 2:
            return None
        mean, mean2 = self.nll / self.scored, self.nll2 / self.scored
        var = mean2 - mean * mean
        return math.sqrt(var / (self.scored - 1)) * self.perplexity if var > 0 else None

    @property
    def bits_per_byte(self) -> float | None:
        return self.nll / (math.log(2) * self.scored_bytes) if self.scored_bytes else None

    @property
    def tokens_per_s(self) -> float | None:
        return self.evaluated / self.seconds if self.seconds > 0 else None

    def as_dict(self) -> dict[str, object]:
        return {"perplexity": self.perplexity, "stderr": self.stderr, "cross_entropy_nats": self.cross_entropy,
                "bits_per_token": self.cross_entropy / math.log(2) if self.scored else None,
                "bits_per_byte": self.bits_per_byte, "tokens": self.tokens, "scored_tokens": self.scored,
                "windows": self.windows, "window": self.window, "method": self.method,
                "seconds": round(self.seconds, 3),
                "tokens_per_s": None if self.tokens_per_s is None else round(self.tokens_per_s, 1),
                "stopped": self.stopped, "worst": [s.as_dict() for s in self.worst]}


def slices(text: str, size: int = SLICE_CHARS) -> Iterator[str]:
    """``text`` in pieces of about ``size`` characters, each ending after a blank line or a newline."""
    start = 0
    while start < len(text):
        end = start + size
        if end < len(text):
            cut = text.rfind("\n\n", start, end)
            cut = cut + 2 if cut > start else text.rfind("\n", start, end) + 1
            end = cut if cut > start else end
        yield text[start:end]
        start = end


class Perplexity:
    """One computation; iterate ``run()`` for progress, read ``result`` when it ends; ``cancel()`` stops it
    after the window being scored (what was scored counts)."""

    def __init__(self, engine: Engine, *, window: int | None = None, worst: int = 0) -> None:
        """``window``: tokens per window (the --ctx asked for; llama.cpp rounds the context it
        allocates up to a multiple of 256); at most the engine's context."""
        self.engine = engine
        self.window = min(window or engine.n_ctx, engine.n_ctx)
        self.worst_n = max(0, worst)
        self.result = Result(window=self.window)
        self._cancel = threading.Event()
        self._heap: list[tuple[float, int, Surprise]] = []

    def cancel(self) -> None:
        self._cancel.set()
        self.engine.cancel()  # the window being evaluated stops too

    def run(self, text: str) -> Iterator[Progress]:
        if not text.strip():
            raise InputError("nothing to score: the text is empty")
        engine, result = self.engine, self.result
        window = self.window
        if window < 8:
            raise InputError(f"a context of {window} tokens is too small to score a text")
        start = time.perf_counter()
        pending = array("i")
        read = 0
        for i, piece in enumerate(slices(text)):
            tokens = engine.completion_tokens(piece) if i == 0 else engine.tokenize(piece)
            pending.extend(tokens)
            result.tokens += len(tokens)
            read += len(piece)
            while len(pending) >= window and not self._cancel.is_set():
                self._score(list(pending[:window]), result.windows * window, window // 2)
                del pending[:window]
                result.windows += 1
                result.seconds = time.perf_counter() - start
                yield Progress(result.windows, read / len(text), result.scored, result.perplexity,
                               result.tokens_per_s)
            if self._cancel.is_set():
                result.stopped = True
                break
        if result.windows == 0 and not result.stopped:
            if len(pending) < 2:
                raise InputError("the text is a single token: there is nothing to predict")
            result.method = "whole"
            self._score(list(pending), 0, 0)
        result.seconds = time.perf_counter() - start
        result.worst = [s for _, _, s in sorted(self._heap, key=lambda e: e[2].logprob)]

    def _score(self, tokens: list[int], offset: int, first: int) -> None:
        engine, result = self.engine, self.result
        bos = engine.bos_token
        if bos is not None and first > 0:
            tokens[0] = bos  # as llama-perplexity: every window starts like a document
        scored = engine.score(tokens, first, top=1 if self.worst_n else 0)
        result.evaluated += len(tokens)
        for lp in scored.logprobs:
            result.nll -= lp
            result.nll2 += lp * lp
        result.scored += len(scored.logprobs)
        result.scored_bytes += sum(len(t.piece) for t in engine.token_info(tokens[first + 1:]))
        if self.worst_n:
            self._keep_worst(tokens, offset, first, scored)

    def _keep_worst(self, tokens: list[int], offset: int, first: int, scored: ScoredWindow) -> None:
        engine = self.engine
        top = scored.top or []
        for k, lp in enumerate(scored.logprobs):
            if len(self._heap) >= self.worst_n and -lp <= self._heap[0][0]:
                continue
            i = first + k + 1
            expected = top[k][0] if k < len(top) and top[k] else None
            surprise = Surprise(
                position=offset + i, text=engine.detokenize([tokens[i]]), logprob=lp,
                expected=expected.text if expected else None,
                expected_logprob=expected.logprob if expected else None,
                before=engine.detokenize(tokens[max(0, i - CONTEXT_TOKENS):i]),
                after=engine.detokenize(tokens[i + 1:i + 1 + CONTEXT_TOKENS]))
            entry = (-lp, offset + i, surprise)
            if len(self._heap) < self.worst_n:
                heapq.heappush(self._heap, entry)
            else:
                heapq.heapreplace(self._heap, entry)
