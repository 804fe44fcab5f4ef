"""The Engine contract every backend (local llama.cpp, remote server) satisfies.

The data it speaks in (messages, replies, tokens, ``ModelInfo``) is plain
and lives in ``gptterm.types``. ``Engine.cancel()`` may be called from any
thread; the running reply then ends early with ``finish_reason ==
"cancelled"`` and keeps its partial text.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, TYPE_CHECKING

from gptterm.types import Message, ModelInfo, Reply, ScoredWindow, TokenInfo, Tool

if TYPE_CHECKING:
    from gptterm.settings import Params


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
