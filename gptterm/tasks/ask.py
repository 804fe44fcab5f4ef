"""Answers from the user's documents: retrieved passages become a grounded prompt, the answer cites them.

The index (``gptterm.docs``) finds the passages; this task decides whether
they can answer at all (when the best passage covers too little of what the
question asks, it says the documents do not seem to contain the answer
instead of letting the model invent one), fits as many of them as the
context allows next to the question (counted with the model's tokenizer,
with room for the reply), and asks the model to answer from them only,
citing them by number. The prompt is ``assets/prompts/ask.txt``,
overridable like the others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from gptterm.assets import load_prompt
from gptterm.tasks.context import head_tokens, overflow_error, reply_reserve

if TYPE_CHECKING:
    from gptterm.docs.embed import Embedder
    from gptterm.docs.index import DocIndex, Hit
    from gptterm.engine.base import Engine
    from gptterm.types import Message
    from gptterm.settings import Params

#: the least share of the question's weight (IDF) the best passage must hold to be worth answering from
MIN_COVERAGE = 0.3
#: the least cosine similarity of a passage's embedding to the question's, where there are embeddings
MIN_SIMILARITY = 0.3
NOT_FOUND = "The documents do not seem to contain the answer to this question."


def relevant(hits: list[Hit]) -> bool:
    """Whether the passages can answer: one covers enough of the question's words, or (with embeddings)
    one is close enough in meaning."""
    return any(h.coverage >= MIN_COVERAGE or (h.similarity or 0.0) >= MIN_SIMILARITY for h in hits)


def sources_text(hits: list[Hit]) -> str:
    """The sources as an answer lists them: ``[1] path:lines``, one a line."""
    return "\n".join(f"[{i}] {h.where()}" for i, h in enumerate(hits, start=1))


def numbered(hits: list[Hit]) -> str:
    return "\n\n".join(f"[{i}] {h.where()}\n{h.text}" for i, h in enumerate(hits, start=1))


@dataclass
class Grounding:
    """Passages from the user's documents for one turn, and how they reach the model.

    With ``compose`` (ask) they make the whole prompt: the model answers from them only, citing them;
    without it (chat --docs) ``prefix`` goes before the user's message and the chat goes on as usual.
    The conversation keeps the plain message either way; the history keeps the sources after the answer."""

    hits: list[Hit]
    #: whether the passages can answer at all (ask says "not found" without the model otherwise)
    found: bool = True
    prefix: str | None = None
    #: (system prompt, the conversation so far, the message) -> the messages sent, fitted to the context
    compose: Callable[[str, list[Message], str], list[Message]] | None = field(default=None, repr=False)
    #: retrieved passages left out because the context could not hold them (set by ``compose``)
    dropped: int = 0

    def footer(self) -> str:
        """What the history keeps after the answer: its sources."""
        return f"\n\nSources:\n{sources_text(self.hits)}" if self.hits else ""


class Asker:
    def __init__(self, engine: Engine, params: Params, index: DocIndex, file_ids: list[int], *, k: int = 4,
                 embedder: Embedder | None = None) -> None:
        self.engine, self.params, self.index, self.file_ids = engine, params, index, file_ids
        self.k, self.embedder = max(1, k), embedder
        self.prompt = load_prompt("ask")

    def retrieve(self, question: str) -> list[Hit]:
        return self.index.search(question, self.file_ids, self.k, embedder=self.embedder)

    def find(self, question: str) -> Grounding:
        """The passages for ``question``, and whether they can answer it; the prompt is made when the turn
        starts (``Grounding.compose``), from the conversation so far."""
        hits = self.retrieve(question)
        found = Grounding(hits, relevant(hits))

        def compose(_system: str, history: list[Message], text: str) -> list[Message]:
            messages, found.hits, found.dropped = self._fit(text, hits, history)
            return messages

        found.compose = compose
        return found

    def _fit(self, question: str, hits: list[Hit], history: list[Message]) -> tuple[list[Message], list[Hit], int]:
        """The most passages (best first) and turns that leave room for the reply."""
        budget = self.engine.n_ctx - reply_reserve(self.params.max_tokens, self.engine.n_ctx)
        kept = list(hits)
        turns = list(history)
        while True:
            messages = self._messages(question, kept, turns)
            if self.engine.count_chat_tokens(messages) <= budget:
                return messages, kept, len(hits) - len(kept)
            # the oldest turns first, then the weakest passages, then the last turn (a follow-up leans on it)
            if len(turns) > 2:
                turns = turns[2:]
            elif len(kept) > 1:
                kept = kept[:-1]
            elif turns:
                turns = []
            else:
                return self._shorten(question, kept[0], budget), kept, len(hits) - 1

    def _shorten(self, question: str, hit: Hit, budget: int) -> list[Message]:
        """The prompt with the best passage cut to what the context has room for; an overflow error
        when not even the instructions and the question fit."""
        fixed = self.engine.count_chat_tokens(self._messages(question, [dataclasses.replace(hit, text="")], []))
        room = budget - fixed
        while room >= 16:
            cut = dataclasses.replace(hit, text=head_tokens(self.engine, hit.text, room))
            messages = self._messages(question, [cut], [])
            if self.engine.count_chat_tokens(messages) <= budget:
                return messages
            room -= 16
        reserve = self.engine.n_ctx - budget
        raise overflow_error(fixed, self.engine.n_ctx, reserve, self.engine.info.n_ctx_train)

    def _messages(self, question: str, hits: list[Hit], history: list[Message]) -> list[Message]:
        system, *user = self.prompt.messages(text=numbered(hits), question=question)
        head = [system] if system["role"] == "system" else []
        return head + history + (user if head else [system, *user])





GROUNDING = ("Passages from the user's documents that may help (cite them as [1], [2] where you use them; "
             "ignore them if they do not help):\n\n{passages}")


def grounding(index: DocIndex, file_ids: list[int], question: str, engine: Engine, *, k: int = 3,
              embedder: Embedder | None = None) -> Grounding | None:
    """For a chat turn with documents attached: the passages that bear on ``question`` as a block to put
    before it (None when none is relevant). The block takes at most a third of the context: the weakest
    passages go first, then the best one is cut."""
    hits = index.search(question, file_ids, k, embedder=embedder)
    if not relevant(hits):
        return None
    budget = engine.n_ctx // 3
    while len(hits) > 1 and engine.count_tokens(GROUNDING.format(passages=numbered(hits))) > budget:
        hits = hits[:-1]
    block = GROUNDING.format(passages=numbered(hits))
    if engine.count_tokens(block) > budget:
        room = budget - engine.count_tokens(GROUNDING.format(passages=numbered([dataclasses.replace(hits[0], text="")])))
        hits = [dataclasses.replace(hits[0], text=head_tokens(engine, hits[0].text, max(16, room)))]
        block = GROUNDING.format(passages=numbered(hits))
    return Grounding(hits, prefix=block)
