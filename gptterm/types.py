"""The plain data every layer passes around: messages, replies and their statistics, tokens, what a model is.

The bottom of the package: it imports nothing of gptterm, so any module may
use these types without pulling in another layer (``engine/base.py`` holds
the ``Engine`` protocol over them).

A reply is a ``Reply``: iterate it for the answer's text pieces as they are
generated (``pieces()`` gives the thinking too, in order); once exhausted it
holds the whole text, why it finished and its ``Stats``.
"""

from __future__ import annotations

import json
import os
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, Iterator, NotRequired, Protocol, TypedDict


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    # -- tool calling (OpenAI's shapes) --
    #: an assistant message that called tools: [{"id", "type": "function", "function": {"name", "arguments"}}]
    tool_calls: NotRequired[list[dict[str, Any]]]
    #: a "tool" message: which call it answers, and the tool's name
    tool_call_id: NotRequired[str]
    name: NotRequired[str]


#: where a built-in tool comes from (MCP tools say ``mcp:NAME``)
BUILT_IN = "built-in"

_ID_CHARS = string.ascii_letters + string.digits


def new_call_id() -> str:
    """A call id of 9 letters and digits: Mistral's templates refuse any other shape, the others take anything."""
    return "".join(_ID_CHARS[b % len(_ID_CHARS)] for b in os.urandom(9))


@dataclass(frozen=True)
class Tool:
    """A function the model may call (gptterm.tools: built-ins and MCP servers)."""

    name: str
    description: str
    #: JSON Schema of the arguments (an object schema)
    parameters: dict[str, Any]
    #: only reads (runs without asking): built-in readers, MCP tools annotated readOnlyHint
    read_only: bool = False
    #: "built-in" or "mcp:NAME"
    source: str = BUILT_IN
    #: asks before every call, even after "always" (run_shell: each command is shown and approved)
    confirm_each: bool = False

    def openai(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry (also what chat templates are given)."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass
class ToolCall:
    """A call the model made."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    #: the call as the model wrote it
    raw: str = ""
    #: why the call could not be read (malformed JSON, not an object...): sent back to the model as the result
    error: str | None = None

    def openai(self) -> dict[str, Any]:
        """The OpenAI ``tool_calls`` entry of an assistant message (arguments as JSON text)."""
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)}}


@dataclass(frozen=True)
class ToolResult:
    """What a call gave back (or why it failed: ``error``)."""

    call_id: str
    name: str
    content: str
    error: bool = False
    seconds: float = 0.0
    #: the content was cut to the size limit (the content says so too)
    truncated: bool = False

    def message(self) -> Message:
        """The ``role: "tool"`` message that carries this result back to the model."""
        return {"role": "tool", "tool_call_id": self.call_id, "name": self.name, "content": self.content}


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


def assistant_message(content: str, calls: list[ToolCall]) -> Message:
    """The assistant message of a reply that called tools (OpenAI's shape, as the history stores it)."""
    return {"role": "assistant", "content": content, "tool_calls": [c.openai() for c in calls]}


def calls_of(message: dict[str, Any]) -> list[ToolCall]:
    """The calls of an OpenAI-shaped assistant message (arguments that are not a JSON object come back as
    ``{}`` with ``error`` set)."""
    out: list[ToolCall] = []
    for entry in message.get("tool_calls") or ():
        function = entry.get("function") or {}
        raw = function.get("arguments")
        call = ToolCall(str(entry.get("id") or new_call_id()), str(function.get("name") or ""),
                        raw=raw if isinstance(raw, str) else json.dumps(raw))
        if isinstance(raw, dict):
            call.arguments = raw
        else:
            try:
                value = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
            except ValueError as err:
                call.error = f"the arguments are not valid JSON ({err})"
            else:
                if isinstance(value, dict):
                    call.arguments = value
                else:
                    call.error = f"the arguments must be a JSON object, not {type(value).__name__}"
        out.append(call)
    return out


class CallSplitter(Protocol):
    """Keeps a tool call's markup out of the streamed answer (gptterm/tools/stream.py)."""

    calls: list[ToolCall]

    @property
    def leaked(self) -> bool:
        """The call could not be held back while it streamed (Gemma's bare form): ``answer`` is the text
        without it."""
        ...

    answer: str | None

    def feed(self, text: str) -> str: ...

    def flush(self) -> str: ...


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
        #: the tools the reply called, complete once it ends (empty: a plain answer)
        self.tool_calls: list[ToolCall] = []
        self._calls: CallSplitter | None = None

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

    def split_calls(self, splitter: CallSplitter) -> None:
        """Keep tool calls out of the answer with ``splitter``; its calls land in ``tool_calls`` when the
        reply ends."""
        self._calls = splitter

    def on_done(self, callback: Callable[["Reply"], None]) -> None:
        """Call ``callback(reply)`` once the reply ends: finished, stopped, failed or abandoned."""
        self._on_done.append(callback)

    def summary(self) -> dict[str, Any]:
        """The statistics and why it finished, as the history stores them and ``--json`` shows them."""
        return {**self.stats.as_dict(), "finish_reason": self.finish_reason}

    def _kept(self, kind: str, text: str) -> Iterator[tuple[str, str]]:
        if kind == ANSWER:
            if self._calls is not None:
                text = self._calls.feed(text)
            if text:
                self.parts.append(text)
                yield kind, text
            return
        self.thinking_parts.append(text)
        for callback in self._on_thinking:
            callback(text)
        yield kind, text

    def _end_calls(self) -> Iterator[tuple[str, str]]:
        splitter, self._calls = self._calls, None
        if splitter is None:
            return
        rest = splitter.flush()
        self.tool_calls.extend(splitter.calls)
        if splitter.leaked:
            self.parts = [splitter.answer or ""]
        elif rest:
            self.parts.append(rest)
            yield ANSWER, rest

    def pieces(self) -> Generator[tuple[str, str], None, None]:
        """Every piece as it streams, in order: ``("thinking", text)`` or ``("answer", text)``."""
        try:
            splitter = self._splitter
            for piece in self._run(self):
                if splitter is None:
                    yield from self._kept(ANSWER, piece)
                else:
                    for kind, text in splitter.feed(piece):
                        yield from self._kept(kind, text)
            if splitter is not None:
                for kind, text in splitter.flush():
                    yield from self._kept(kind, text)
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
