"""The turn loop: one user message in, the events of the model calls it takes out.

Every face that converses goes through ``turn`` — the one-shot prompt, the
REPL, ``chat --docs``, ``ask`` and the TUI's chat and Ask panes: it takes the
conversation (a ``ChatSession``, which fits the prompt to the context and
keeps the history), the passages retrieved for the turn, the template and
the schema, and yields ``Event`` values that faces only render. A turn may
make more than one model call (a tool loop answers the model's calls and asks
it again); each call ends with a ``CallEnded`` event carrying its ``Reply``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Union

from gptterm.types import ANSWER, Message, Reply

if TYPE_CHECKING:
    from gptterm.tasks.ask import Grounding
    from gptterm.tasks.chat import ChatSession
    from gptterm.templates import Bound


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer, as it streams."""

    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    """A piece of a reasoning model's thinking (its <think> block), as it streams."""

    text: str


@dataclass(frozen=True)
class CallEnded:
    """One model call ended (finished, stopped or failed): its statistics are in ``reply``."""

    reply: Reply


Event = Union[TextDelta, ThinkingDelta, CallEnded]


class Turn:
    """One user turn. Iterate ``events()`` once; ``reply`` is the model call in flight (or the last one)."""

    def __init__(self, chat: ChatSession, first: Reply | None, *, answer: str | None = None,
                 grounding: Grounding | None = None) -> None:
        """``first``: the model call the turn starts with; None with ``answer``: an answer that needed no model
        (ask's "not found")."""
        self.chat = chat
        self.grounding = grounding
        self.replies: list[Reply] = [first] if first is not None else []
        self.answer = answer

    @property
    def reply(self) -> Reply | None:
        return self.replies[-1] if self.replies else None

    @property
    def text(self) -> str:
        """The answer so far."""
        return self.answer if self.answer is not None else (self.reply.text if self.reply is not None else "")

    @property
    def found(self) -> bool:
        """False when the documents could not answer and the model was not asked."""
        return self.answer is None

    def events(self) -> Iterator[Event]:
        if self.answer is not None:
            yield TextDelta(self.answer)
            return
        reply = self.reply
        assert reply is not None
        stream = reply.pieces()
        try:
            for kind, text in stream:
                yield TextDelta(text) if kind == ANSWER else ThinkingDelta(text)
        finally:
            stream.close()  # a face that stops listening ends the call (its partial text is kept)
        yield CallEnded(reply)

    def cancel(self) -> None:
        """Stop the model call in flight (from any thread); what it said is kept."""
        engine = self.chat.engine
        if engine is not None:
            engine.cancel()


def turn(chat: ChatSession, text: str, *, grounding: Grounding | None = None, template: Bound | None = None,
         schema: dict[str, Any] | None = None, truncate_last: Callable[[int], Message] | None = None) -> Turn:
    """Send ``text`` in ``chat`` and start the model's answer (iterate ``events()``).

    ``grounding``: passages from the user's documents for this turn; when they cannot answer (ask), the
    turn answers "not found" without the model, and the exchange is kept all the same. ``template``: a
    template for this message (else the one waiting in ``chat``); ``schema``: the JSON Schema every reply
    of the conversation must match (kept by ``chat``). Errors that a user can cause (the prompt does not
    fit, a bad template) are raised here, before anything streams."""
    if template is not None:
        chat.use_template(template)
    if schema is not None:
        chat.schema = schema
    if grounding is not None and not grounding.found:
        from gptterm.tasks.ask import NOT_FOUND

        chat.answer_without_model(text, NOT_FOUND)
        return Turn(chat, None, answer=NOT_FOUND, grounding=grounding)
    return Turn(chat, chat.send(text, truncate_last=truncate_last, grounding=grounding), grounding=grounding)


def regenerate(chat: ChatSession) -> Turn:
    """Drop the last reply and answer the same message again."""
    return Turn(chat, chat.regenerate())


def edit(chat: ChatSession, index: int, text: str) -> Turn:
    """Resend user message ``index`` with ``text``: the conversation forks there."""
    return Turn(chat, chat.edit(index, text))
