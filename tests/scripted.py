"""A local engine whose generated text is scripted: the real model file, tokenizer and chat template, but
the pieces a reply streams are given by the test (a reasoning model's <think> block, a model that never
stops on its own). ``LocalEngine._generate`` is replaced; everything above it (Reply, thinking, tasks,
CLI, TUI) runs as it does for a real model."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from tests.fixtures.tiny_gguf import make_tiny_gguf

# A Qwen3-like template: ChatML, and an empty <think></think> block in the prompt when thinking is off.
THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)


def make_thinking_gguf(path: Path) -> Path:
    return make_tiny_gguf(path, chat_template=THINKING_TEMPLATE)


class Script:
    """What the engine says: ``replies`` are used in order (the last one again once they run out)."""

    def __init__(self, *replies: tuple[list[str], str]) -> None:
        self.replies = list(replies)
        #: every prompt the engine was given, as text
        self.prompts: list[str] = []
        self.max_tokens: list[int] = []

    def next(self) -> tuple[list[str], str]:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


def script(monkeypatch, *replies: tuple[list[str], str]) -> Script:
    """Script every reply of every LocalEngine: each ``(pieces, finish)`` streams its pieces and ends with
    ``finish`` ("stop": the model ended it; "length": it would have gone on, so it is cut at max_tokens)."""
    from gptterm.engine.local import LocalEngine

    s = Script(*replies)

    def fake(self, reply, tokens, params, seed, gbnf=None) -> Iterator[str]:
        s.prompts.append(self.detokenize(tokens))
        s.max_tokens.append(params.max_tokens)
        pieces, finish = s.next()
        n = 0
        reply.finish_reason = finish
        for piece in pieces:
            cost = max(1, self.count_tokens(piece))
            if n + cost > params.max_tokens:
                reply.finish_reason = "length"
                break
            n += cost
            reply.stats.completion_tokens = n
            yield piece
        reply.stats.total_s = 0.01

    monkeypatch.setattr(LocalEngine, "_generate", fake)
    return s


def never_stops() -> tuple[list[str], str]:
    """A model that never ends on its own: new sentences, word by word, until the token cap cuts one."""
    words = []
    for i in range(1, 400):
        words += f" Point {i} adds a new detail to the text.".split(" ")[1:]
    return ([w + " " for w in words], "length")
