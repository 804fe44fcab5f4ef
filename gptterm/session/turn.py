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

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Union

from gptterm.errors import UsageError
from gptterm.types import ANSWER, Message, Reply, Tool, ToolCall, ToolResult

if TYPE_CHECKING:
    from gptterm.tools.permissions import Approvals, Ask
    from gptterm.tools.registry import ToolBox
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


@dataclass(frozen=True)
class ToolStarted:
    """The model called a tool (``tool`` None: it named one that does not exist); it is approved and run next."""

    call: ToolCall
    tool: Tool | None


@dataclass(frozen=True)
class ToolEnded:
    """What the call gave back (or why it did not run: ``refused``), as the model sees it."""

    call: ToolCall
    result: ToolResult
    refused: str = ""


@dataclass(frozen=True)
class StepLimit:
    """The model still called tools after ``steps`` rounds: those calls were not run, and the turn ends."""

    steps: int


Event = Union[TextDelta, ThinkingDelta, CallEnded, ToolStarted, ToolEnded, StepLimit]


@dataclass
class ToolUse:
    """What a turn may do with tools: the ToolBox, the conversation's approvals, how the face asks."""

    box: ToolBox
    approvals: Approvals
    #: asks the user about a call (None: the face cannot ask, and such calls are refused)
    ask: Ask | None = None
    max_steps: int = 8
    timeout: float = 60.0
    #: the most characters of a result the model gets (cut with a note beyond)
    max_chars: int = 16_000
    #: set when the turn is stopped (a face's ``ask`` waiting for an answer gives up then)
    stopped: threading.Event = field(default_factory=threading.Event)


def result_budget(n_ctx: int) -> int:
    """Characters of one tool result the context holds: about a quarter of it (~3 characters a token)."""
    return max(1_000, min(64_000, n_ctx * 3 // 4))


class Turn:
    """One user turn. Iterate ``events()`` once; ``reply`` is the model call in flight (or the last one)."""

    def __init__(self, chat: ChatSession, first: Reply | None, *, answer: str | None = None,
                 grounding: Grounding | None = None, tools: ToolUse | None = None) -> None:
        """``first``: the model call the turn starts with; None with ``answer``: an answer that needed no model
        (ask's "not found"). ``tools``: the model's tool calls are run and answered, step by step."""
        self.chat = chat
        self.grounding = grounding
        self.replies: list[Reply] = [first] if first is not None else []
        self.answer = answer
        self.tools = tools
        #: every call of the turn and what it gave back, in order
        self.calls: list[tuple[ToolCall, ToolResult]] = []
        self._stopped = False

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
        steps = 0
        while True:
            stream = reply.pieces()
            try:
                for kind, text in stream:
                    yield TextDelta(text) if kind == ANSWER else ThinkingDelta(text)
            finally:
                stream.close()  # a face that stops listening ends the call (its partial text is kept)
            yield CallEnded(reply)
            use = self.tools
            if use is None or not reply.tool_calls:
                return
            stopped = self._stopped or use.stopped.is_set() or reply.finish_reason in ("cancelled", "error")
            if stopped or steps >= use.max_steps:
                # every call gets its answer, so that the history stays whole for the next turn
                why = "stopped" if stopped else f"not run: the limit of {use.max_steps} tool steps was reached"
                self._unanswered(reply.tool_calls, why)
                if stopped:
                    return
                yield StepLimit(steps)
                reply = self.chat.continue_turn("none", with_tools=False)  # the model answers with what it has
                self.replies.append(reply)
                use = None
                self.tools = None
                continue
            steps += 1
            for i, call in enumerate(reply.tool_calls):
                yield from self._run(use, call)
                if self._stopped or use.stopped.is_set():
                    self._unanswered(reply.tool_calls[i + 1:], "stopped")
                    return
            reply = self.chat.continue_turn("auto")  # a forced choice was for the first step only
            self.replies.append(reply)

    def _unanswered(self, calls: list[ToolCall], why: str) -> None:
        for call in calls:
            result = ToolResult(call.id, call.name, why, error=True)
            self.chat.add_tool_result(result)
            self.calls.append((call, result))

    def _run(self, use: ToolUse, call: ToolCall) -> Iterator[Event]:
        tool = use.box.get(call.name)
        yield ToolStarted(call, tool)
        verdict = use.approvals.decide(call, tool, use.ask)
        if self._stopped or use.stopped.is_set():
            result, refused = ToolResult(call.id, call.name, "the call was stopped", error=True), "stopped"
        elif not verdict.allowed:
            result, refused = ToolResult(call.id, call.name, verdict.reason, error=True), verdict.reason
        else:
            result, refused = use.box.run(call, timeout=use.timeout, max_chars=use.max_chars), ""
        self.chat.add_tool_result(result)
        self.calls.append((call, result))
        yield ToolEnded(call, result, refused)

    def cancel(self) -> None:
        """Stop the model call or the tool in flight (from any thread), and the steps after it; what was said
        is kept."""
        self._stopped = True
        if self.tools is not None:
            self.tools.stopped.set()
        engine = self.chat.engine
        if engine is not None:
            engine.cancel()
        if self.tools is not None:
            self.tools.box.cancel()


def turn(chat: ChatSession, text: str, *, grounding: Grounding | None = None, template: Bound | None = None,
         schema: dict[str, Any] | None = None, truncate_last: Callable[[int], Message] | None = None,
         tools: ToolUse | None = None) -> Turn:
    """Send ``text`` in ``chat`` and start the model's answer (iterate ``events()``).

    ``grounding``: passages from the user's documents for this turn; when they cannot answer (ask), the
    turn answers "not found" without the model, and the exchange is kept all the same. ``template``: a
    template for this message (else the one waiting in ``chat``); ``schema``: the JSON Schema every reply
    of the conversation must match (kept by ``chat``); ``tools``: what the model may call, and how calls are
    approved (each step's calls are run and answered until the model answers, or ``max_steps``). Errors that
    a user can cause (the prompt does not fit, a bad template) are raised here, before anything streams."""
    if template is not None:
        chat.use_template(template)
    if schema is not None:
        chat.schema = schema
    if grounding is not None and not grounding.found:
        # only an ask that found nothing needs it (this module is on --help's path)
        from gptterm.tasks.ask import NOT_FOUND

        chat.answer_without_model(text, NOT_FOUND)
        return Turn(chat, None, answer=NOT_FOUND, grounding=grounding)
    offer(chat, tools)
    return Turn(chat, chat.send(text, truncate_last=truncate_last, grounding=grounding), grounding=grounding,
                tools=tools)


def regenerate(chat: ChatSession, *, tools: ToolUse | None = None) -> Turn:
    """Drop the last reply and answer the same message again (the results of earlier tool steps stay: the
    new reply follows them, and a forced tool choice, which is for a message's first step, does not apply)."""
    after_tools = len(chat.messages) >= 2 and chat.messages[-1]["role"] == "assistant" \
        and chat.messages[-2]["role"] == "tool"
    offer(chat, tools, first_step=not after_tools)
    return Turn(chat, chat.regenerate(), tools=tools)


def edit(chat: ChatSession, index: int, text: str, *, tools: ToolUse | None = None) -> Turn:
    """Resend user message ``index`` with ``text``: the conversation forks there."""
    offer(chat, tools)
    return Turn(chat, chat.edit(index, text), tools=tools)


def offer(chat: ChatSession, tools: ToolUse | None, *, first_step: bool = True) -> None:
    """Give the model ``tools`` from the next reply on (and, at a message's first step, the tool_choice); none:
    take them away. A tool_choice that names no tool given is one clear error, before anything is sent."""
    chat.tools = tools.box.tools if tools is not None and tools.box.tools else None
    choice = (chat.params.tool_choice or "auto").strip()
    if choice.lower() in ("auto", "required", "none"):
        choice = choice.lower()
    if chat.tools and choice not in ("auto", "required", "none") and choice not in {t.name for t in chat.tools}:
        raise UsageError(f"tool_choice names {choice!r}, which is not among the tools given "
                         f"({', '.join(t.name for t in chat.tools)})")
    chat.tool_choice = choice if chat.tools and first_step and choice != "auto" else None
