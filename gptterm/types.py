"""The plain data every layer passes around: messages, replies and their statistics, tokens, what a model is.

The bottom of the package: it imports nothing of gptterm, so any module may
use these types without pulling in another layer (``engine/base.py`` holds
the ``Engine`` protocol over them).

A reply is a ``Reply``: iterate it for the answer's text pieces as they are
generated (``pieces()`` gives the thinking too, in order); once exhausted it
holds the whole text, why it finished and its ``Stats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterator, Protocol, TypedDict


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass
class Stats:
    prompt_tokens: int = 0
    #: prompt tokens whose KV state was reused from the previous request
    cached_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    total_s: float = 0.0
    decode_s: float = 0.0

    @property
    def tokens_per_s(self) -> float | None:
        """Decode rate: tokens after the first, over the time after the first."""
        if self.completion_tokens < 2 or self.decode_s <= 0:
            return None
        return (self.completion_tokens - 1) / self.decode_s

    def as_dict(self) -> dict[str, Any]:
        tps = self.tokens_per_s
        return {
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "ttft_s": None if self.ttft_s is None else round(self.ttft_s, 4),
            "tokens_per_s": None if tps is None else round(tps, 2),
            "total_s": round(self.total_s, 4),
        }


@dataclass(frozen=True)
class TokenInfo:
    """One token of the model's vocabulary as it appears in a text."""

    id: int
    #: the bytes the token stands for; may be part of a UTF-8 character
    piece: bytes
    #: a control token (BOS/EOS, <|im_start|>): not text, a marker
    special: bool = False

    @property
    def text(self) -> str:
        """The piece as text; bytes that are not UTF-8 on their own become ``<0xNN>``."""
        try:
            return self.piece.decode("utf-8")
        except UnicodeDecodeError:
            return "".join(f"<0x{b:02X}>" for b in self.piece)


@dataclass(frozen=True)
class Alternative:
    """A token the model could have produced at a position, and its log-probability."""

    token: int
    text: str
    logprob: float
    #: the exact bytes (empty when the engine knows only the text)
    piece: bytes = b""


@dataclass(frozen=True)
class TokenLogprob:
    """A generated (or scored) token: its log-probability under the model (softmax of the raw
    logits, before temperature and the other samplers), and the most likely tokens at that position."""

    token: int
    text: str
    logprob: float
    top: tuple[Alternative, ...] = ()
    #: the exact bytes (``text`` shows bytes that are not UTF-8 on their own as ``<0xNN>``)
    piece: bytes = b""

    def as_openai(self) -> dict[str, Any]:
        """OpenAI's ``logprobs.content`` entry: token, logprob, bytes, top_logprobs."""
        return {"token": self.text, "logprob": self.logprob, "bytes": list(self.piece or self.text.encode()),
                "top_logprobs": [{"token": a.text, "logprob": a.logprob, "bytes": list(a.text.encode())}
                                 for a in self.top]}


@dataclass(frozen=True)
class ScoredWindow:
    """Log-probabilities of a window's tokens, each given the ones before it."""

    #: ``logprobs[k]`` is log P(tokens[first + k + 1] | tokens[: first + k + 1])
    logprobs: list[float]
    #: per scored position, the most likely tokens (when asked for)
    top: list[tuple[Alternative, ...]] | None = None


@dataclass
class ModelInfo:
    """What the loaded model is and can do: every face reads these fields, never the engine's attributes."""

    name: str
    path: str
    size_bytes: int
    architecture: str | None = None
    n_params: int | None = None
    n_ctx_train: int | None = None
    n_ctx: int | None = None
    has_chat_template: bool = False
    gpu_layers: int = 0
    threads: int | None = None
    #: the [servers.NAME] profile (or URL) of the server that runs the model; None: it runs in this process
    server: str | None = None
    #: the server's address as shown to the user (None for a local model)
    url: str | None = None
    #: how the context size was found (a server's report, the profile, --ctx); None for a local model
    ctx_source: str | None = None
    #: how tokens are counted: the model's own tokenizer ("model"), the server's, or an estimate
    token_counts: str = "model"
    #: the chat template has a thinking mode (<think> blocks, enable_thinking); None: not known (a server's model)
    thinks: bool | None = None
    #: the engine scores a text's own tokens (perplexity, Inspect's Score); a server cannot, exactly
    can_score: bool = True
    #: LoRA adapters applied, as the user wrote them (PATH or PATH:SCALE), and the files they resolved to
    lora: tuple[str, ...] = ()
    adapter_paths: tuple[str, ...] = ()
    #: the chat template renders tool descriptions and calls itself (else gptterm's fallback is used)
    tools: bool = False
    #: the other models the server lists (switching to one is a palette entry)
    served_models: tuple[str, ...] = ()

    @property
    def remote(self) -> bool:
        return self.server is not None


class Splitter(Protocol):
    """Tells a reasoning model's thinking apart from its answer as pieces stream (engine/thinking.py)."""

    @property
    def in_thinking(self) -> bool: ...

    def feed(self, piece: str) -> list[tuple[str, str]]: ...

    def flush(self) -> list[tuple[str, str]]: ...


#: the kinds of piece ``Reply.pieces()`` yields
ANSWER = "answer"
THINKING = "thinking"


class Reply:
    """A streamed reply. Iterate once; afterwards read ``text``/``stats``/``finish_reason``.

    ``run(reply)`` is the backend's generator: it yields text pieces and fills
    in ``reply.stats`` and ``reply.finish_reason`` as it goes.
    """

    def __init__(self, run: Callable[["Reply"], Iterator[str]], *, prompt_tokens: int = 0, seed: int | None = None):
        self._run = run
        self.stats = Stats(prompt_tokens=prompt_tokens)
        self.seed = seed
        self.parts: list[str] = []
        #: with params.logprobs > 0: each generated token with its log-probability and alternatives
        self.logprobs: list[TokenLogprob] | None = None
        #: "stop" (end of text), "length" (max_tokens or context), "cancelled", "error"
        self.finish_reason: str | None = None
        self.done = False
        self._on_done: list[Callable[["Reply"], None]] = []
        #: the <think> block's pieces (a reasoning model's), kept apart from the answer in ``parts``
        self.thinking_parts: list[str] = []
        self._splitter: Splitter | None = None
        self._on_thinking: list[Callable[[str], None]] = []

    @property
    def text(self) -> str:
        """The answer: the reply without its thinking."""
        return "".join(self.parts)

    @property
    def thinking(self) -> str:
        """What a reasoning model wrote between <think> and </think> ("" when nothing)."""
        return "".join(self.thinking_parts).strip()

    @property
    def in_thinking(self) -> bool:
        """Whether the reply is still inside its <think> block (no answer yet)."""
        return self._splitter is not None and self._splitter.in_thinking

    def split_thinking(self, splitter: Splitter) -> None:
        """Tell a <think> block apart from the answer (chat replies) with ``splitter``."""
        self._splitter = splitter

    def on_thinking(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(piece)`` for each piece of thinking as it streams (iteration yields only the answer)."""
        self._on_thinking.append(callback)

    def on_done(self, callback: Callable[["Reply"], None]) -> None:
        """Call ``callback(reply)`` once the reply ends: finished, stopped, failed or abandoned."""
        self._on_done.append(callback)

    def summary(self) -> dict[str, Any]:
        """The statistics and why it finished, as the history stores them and ``--json`` shows them."""
        return {**self.stats.as_dict(), "finish_reason": self.finish_reason}

    def _kept(self, kind: str, text: str) -> tuple[str, str]:
        if kind == ANSWER:
            self.parts.append(text)
        else:
            self.thinking_parts.append(text)
            for callback in self._on_thinking:
                callback(text)
        return kind, text

    def pieces(self) -> Generator[tuple[str, str], None, None]:
        """Every piece as it streams, in order: ``("thinking", text)`` or ``("answer", text)``."""
        try:
            splitter = self._splitter
            for piece in self._run(self):
                if splitter is None:
                    yield self._kept(ANSWER, piece)
                else:
                    for kind, text in splitter.feed(piece):
                        yield self._kept(kind, text)
            if splitter is not None:
                for kind, text in splitter.flush():
                    yield self._kept(kind, text)
        except BaseException:
            if self.finish_reason is None:
                self.finish_reason = "error"
            raise
        finally:
            if not self.done:
                self.done = True
                for callback in self._on_done:
                    callback(self)

    def __iter__(self) -> Iterator[str]:
        """The answer's pieces (thinking reaches ``on_thinking`` callbacks)."""
        stream = self.pieces()
        try:
            for kind, text in stream:
                if kind == ANSWER:
                    yield text
        finally:
            stream.close()  # a consumer that stops early ends the reply (done callbacks run now)

    def drain(self) -> str:
        for _ in self:
            pass
        return self.text
