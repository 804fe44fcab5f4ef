"""Make a prompt fit the context window, or say exactly why it cannot.

Prompt tokens are counted with the model's own tokenizer before anything is
generated; a reply is guaranteed ``reply_reserve`` tokens of room.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence, TYPE_CHECKING

from gptterm.types import Message, Tool
from gptterm.errors import ContextOverflowError

if TYPE_CHECKING:
    from gptterm.engine.base import Engine

ON_OVERFLOW = ("error", "truncate")


def reply_reserve(max_tokens: int, n_ctx: int) -> int:
    """Room kept for the reply: ``max_tokens``, but never more than half the context."""
    return max(1, min(max_tokens, n_ctx // 2))


@dataclass
class FitReport:
    prompt_tokens: int
    kept_tokens: int = 0
    dropped_tokens: int = 0
    dropped_messages: int = 0

    @property
    def truncated(self) -> bool:
        return bool(self.dropped_tokens or self.dropped_messages)

    def describe(self) -> str:
        parts = []
        if self.dropped_messages:
            parts.append(f"dropped the {self.dropped_messages} oldest messages")
        if self.dropped_tokens:
            parts.append(f"kept {self.kept_tokens} input tokens and dropped {self.dropped_tokens}")
        return "input truncated to fit the context: " + ", ".join(parts)


def overflow_error(prompt_tokens: int, n_ctx: int, reserve: int, n_ctx_train: int | None) -> ContextOverflowError:
    bigger = ""
    if n_ctx_train and n_ctx_train > n_ctx:
        bigger = f" (this model allows up to {n_ctx_train})"
    return ContextOverflowError(
        f"the prompt is {prompt_tokens} tokens and the reply needs {reserve} more, "
        f"but the context holds {n_ctx}: use a bigger --ctx{bigger}, a smaller --max-tokens, "
        f"'gptterm summarize' for long text, or --on-overflow truncate",
        prompt_tokens=prompt_tokens, n_ctx=n_ctx, reply_tokens=reserve,
    )


def fit_messages(engine: Engine, messages: Sequence[Message], max_tokens: int, on_overflow: str,
                 *, truncate_last: Callable[[int], Message] | None = None,
                 tools: Sequence[Tool] | None = None) -> tuple[list[Message], FitReport]:
    """Return messages that leave room for the reply.

    With ``on_overflow="truncate"`` the oldest non-system messages are dropped
    first (keeping the last user message) until the prompt is down to three
    quarters of its budget, so that the next turns extend the same prefix
    (and reuse its KV cache) instead of cutting again every turn; if that is
    not enough the last message is cut with ``truncate_last(token_budget)``.
    """
    msgs = list(messages)
    n_ctx = engine.n_ctx
    reserve = reply_reserve(max_tokens, n_ctx)
    budget = n_ctx - reserve
    extra: dict[str, Any] = {"tools": tools} if tools else {}  # their definitions take room too
    count = engine.count_chat_tokens(msgs, **extra)
    report = FitReport(prompt_tokens=count)
    if count <= budget:
        return msgs, report
    if on_overflow != "truncate":
        raise overflow_error(count, n_ctx, reserve, engine.info.n_ctx_train)
    system = [m for m in msgs[:1] if m["role"] == "system"]
    body = msgs[len(system):]
    low_water = budget - budget // 4
    while count > low_water and len(body) > 1:
        body.pop(0)
        report.dropped_messages += 1
        count = engine.count_chat_tokens(system + body, **extra)
    if count > budget and truncate_last is not None:
        overhead = count - engine.count_tokens(body[-1]["content"])
        before = engine.count_tokens(body[-1]["content"])
        body[-1] = truncate_last(max(0, budget - overhead))
        after = engine.count_tokens(body[-1]["content"])
        report.kept_tokens, report.dropped_tokens = after, before - after
        count = engine.count_chat_tokens(system + body, **extra)
    if count > budget:
        raise overflow_error(count, n_ctx, reserve, engine.info.n_ctx_train)
    report.prompt_tokens = count
    return system + body, report


def head_tokens(engine: Engine, text: str, n_tokens: int) -> str:
    """The beginning of ``text`` that is at most ``n_tokens`` tokens long."""
    tokens = engine.tokenize(text)
    if len(tokens) <= n_tokens:
        return text
    # Detokenizing may merge a split multi-byte character; re-check the count.
    kept = engine.detokenize(tokens[:n_tokens]).rstrip("\ufffd")
    while n_tokens > 0 and engine.count_tokens(kept) > n_tokens:
        n_tokens -= 1
        kept = engine.detokenize(tokens[:n_tokens]).rstrip("\ufffd")
    return kept
