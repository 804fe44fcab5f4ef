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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gptterm.assets import load_prompt
from gptterm.tasks.context import reply_reserve

if TYPE_CHECKING:
    from gptterm.docs.embed import Embedder
    from gptterm.docs.index import DocIndex, Hit
    from gptterm.engine.base import Engine, Message, Reply
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
class Asked:
    """What was asked and found: the sources put in the prompt, whether they can answer, the reply."""

    question: str
    hits: list[Hit]
    found: bool
    messages: list[Message] = field(default_factory=list)
    reply: Reply | None = None
    #: retrieved passages left out because the context could not hold them
    dropped: int = 0


class Asker:
    def __init__(self, engine: Engine, params: Params, index: DocIndex, file_ids: list[int], *, k: int = 4,
                 embedder: Embedder | None = None) -> None:
        self.engine, self.params, self.index, self.file_ids = engine, params, index, file_ids
        self.k, self.embedder = max(1, k), embedder
        self.prompt = load_prompt("ask")

    def retrieve(self, question: str) -> list[Hit]:
        return self.index.search(question, self.file_ids, self.k, embedder=self.embedder)

    def ask(self, question: str, history: list[Message] | None = None) -> Asked:
        """Retrieve, check, fit and start the answer (iterate ``asked.reply``); no reply when not found."""
        hits = self.retrieve(question)
        asked = Asked(question, hits, relevant(hits))
        if not asked.found:
            return asked
        asked.messages, asked.hits, asked.dropped = self._fit(question, hits, history or [])
        asked.reply = self.engine.chat(asked.messages, self.params)
        return asked

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
        import dataclasses

        from gptterm.tasks.context import head_tokens, overflow_error

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
              embedder: Embedder | None = None) -> tuple[str | None, list[Hit]]:
    """For a chat turn with documents attached: the passages that bear on ``question`` as a block to put
    before it, and the hits (nothing when none is relevant). The block takes at most a third of the
    context: the weakest passages go first, then the best one is cut."""
    import dataclasses

    from gptterm.tasks.context import head_tokens

    hits = index.search(question, file_ids, k, embedder=embedder)
    if not relevant(hits):
        return None, []
    budget = engine.n_ctx // 3
    while len(hits) > 1 and engine.count_tokens(GROUNDING.format(passages=numbered(hits))) > budget:
        hits = hits[:-1]
    block = GROUNDING.format(passages=numbered(hits))
    if engine.count_tokens(block) > budget:
        room = budget - engine.count_tokens(GROUNDING.format(passages=numbered([dataclasses.replace(hits[0], text="")])))
        hits = [dataclasses.replace(hits[0], text=head_tokens(engine, hits[0].text, max(16, room)))]
        block = GROUNDING.format(passages=numbered(hits))
    return block, hits
