"""The Engine contract every backend (local llama.cpp, remote server) satisfies.

A reply is a ``Reply``: iterate it for text pieces as they are generated;
once exhausted it holds the whole text, why it finished and its ``Stats``.
``Engine.cancel()`` may be called from any thread; the running reply then
ends early with ``finish_reason == "cancelled"`` and keeps its partial text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NotRequired, Protocol, Sequence, TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from gptterm.settings import Params
    from gptterm.tools.base import Tool, ToolCall


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    # -- tool calling (OpenAI's shapes) --
    #: an assistant message that called tools: [{"id", "type": "function", "function": {"name", "arguments"}}]
    tool_calls: NotRequired[list[dict[str, Any]]]
    #: a "tool" message: which call it answers, and the tool's name
    tool_call_id: NotRequired[str]
    name: NotRequired[str]


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
    extra: dict[str, Any] = field(default_factory=dict)


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
        self._splitter: Any = None
        self._on_thinking: list[Callable[[str], None]] = []
        # -- tool calling --
        #: the tools the reply called, complete once it ends (empty: a plain answer)
        self.tool_calls: list[ToolCall] = []
        self._calls: Any = None  # gptterm.tools.stream.CallSplitter: keeps call markup out of the answer

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

    def split_thinking(self, *, inside: bool = False) -> None:
        """Tell a <think> block apart from the answer (chat replies); ``inside``: the prompt opened it."""
        from gptterm.engine.thinking import ThinkSplitter

        self._splitter = ThinkSplitter(inside=inside)

    def on_thinking(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(piece)`` for each piece of thinking as it streams (iteration yields only the answer)."""
        self._on_thinking.append(callback)

    def split_calls(self, splitter: Any) -> None:
        """Keep tool calls out of the answer with ``splitter`` (a ``gptterm.tools.stream.CallSplitter``);
        its calls land in ``tool_calls`` when the reply ends."""
        self._calls = splitter

    def _answer(self, text: str) -> Iterator[str]:
        if self._calls is not None:
            text = self._calls.feed(text)
        if text:
            self.parts.append(text)
            yield text

    def _end_calls(self) -> Iterator[str]:
        splitter, self._calls = self._calls, None
        if splitter is None:
            return
        rest = splitter.flush()
        self.tool_calls.extend(splitter.calls)
        if splitter.leaked:
            self.parts = [splitter.answer]
        elif rest:
            self.parts.append(rest)
            yield rest

    def _sorted(self, pieces: list[tuple[str, str]]) -> Iterator[str]:
        for kind, text in pieces:
            if kind == "answer":
                yield from self._answer(text)
            else:
                self.thinking_parts.append(text)
                for callback in self._on_thinking:
                    callback(text)

    def on_done(self, callback: Callable[["Reply"], None]) -> None:
        """Call ``callback(reply)`` once the reply ends: finished, stopped, failed or abandoned."""
        self._on_done.append(callback)

    def __iter__(self) -> Iterator[str]:
        try:
            splitter = self._splitter
            for piece in self._run(self):
                if splitter is None:
                    yield from self._answer(piece)
                else:
                    yield from self._sorted(splitter.feed(piece))
            if splitter is not None:
                yield from self._sorted(splitter.flush())
            yield from self._end_calls()
        except BaseException:
            if self.finish_reason is None:
                self.finish_reason = "error"
            raise
        finally:
            for _ in self._end_calls():  # stopped early: the calls written so far still count
                pass
            if not self.done:
                self.done = True
                for callback in self._on_done:
                    callback(self)

    def drain(self) -> str:
        for _ in self:
            pass
        return self.text


class Engine(Protocol):
    info: ModelInfo

    @property
    def n_ctx(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    # ``tools``: count the prompt as it is with those tools given (their definitions take room too)
    def count_chat_tokens(self, messages: Sequence[Message], *, tools: Sequence[Tool] | None = None) -> int: ...

    # Token ids are the model's where the engine can reach its tokenizer, else
    # stand-ins that still count, cut and join back exactly (the remote
    # engine's estimate); only this engine's detokenize understands them.
    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, tokens: Sequence[int]) -> str: ...

    def completion_tokens(self, prompt: str) -> list[int]: ...

    # -- looking inside (tokens, probabilities) -------------------------------

    def token_info(self, tokens: Sequence[int]) -> list[TokenInfo]: ...

    def chat_tokens(self, messages: Sequence[Message], *, tools: Sequence[Tool] | None = None) -> list[int]: ...

    def score(self, tokens: Sequence[int], first: int, *, top: int = 0) -> ScoredWindow:
        """Evaluate ``tokens`` as one window from an empty context and return the log-probability of
        every token after position ``first`` (the KV cache the chat reuses is lost)."""
        ...

    @property
    def bos_token(self) -> int | None:
        """The token a window starts with when the model adds one to every text (BOS), else None."""
        ...

    # ``schema``: a JSON Schema the reply must match (gptterm.schema): the local engine decodes under its
    # grammar, a server is sent it as response_format; the face checks the finished reply.
    # ``tools``: what the model may call; the reply's ``tool_calls`` says what it did call. ``tool_choice``:
    # None or "auto" (the model decides), "required" (some call), or a tool's name (that call).
    def chat(self, messages: Sequence[Message], params: Params, *, schema: dict[str, Any] | None = None,
             tools: Sequence[Tool] | None = None, tool_choice: str | None = None) -> Reply: ...

    def complete(self, prompt: str, params: Params, *, schema: dict[str, Any] | None = None) -> Reply: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...
