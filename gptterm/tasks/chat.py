"""A conversation with a model: what is sent, what is kept, what is stored.

Used by the one-shot command, the REPL and the TUI alike. Each exchange is
written to the history store as it happens (the user message before the
reply starts, the reply when it ends, stopped or not), so an interrupted
process loses at most the reply in flight.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from gptterm import textio
from gptterm.types import Message, Reply, Tool, ToolResult, assistant_message
from gptterm.settings import Params
from gptterm.tasks.context import FitReport, fit_messages

if TYPE_CHECKING:
    from gptterm.tasks.ask import Grounding
    from gptterm.templates.template import Bound
    from gptterm.engine.base import Engine  # sqlite3 and the store are imported by whoever opens one (not with --no-log)
    from gptterm.engine.state_cache import StateCache
    from gptterm.history.store import Conversation, HistoryStore, StoredMessage


def compose_prompt(instruction: str | None, context: str | None) -> str:
    """Join piped text and the command-line instruction into one user message.

    ``{input}`` in the instruction places the piped text; otherwise the text
    comes first and the instruction after it, as in ``git diff | gptterm "explain"``.
    """
    if context is None:
        return instruction or ""
    if not instruction:
        return context
    if "{input}" in instruction:
        return instruction.replace("{input}", context)
    return f"{context.rstrip()}\n\n{instruction}"


class ChatSession:
    def __init__(self, engine: Engine | None, params: Params, *, store: HistoryStore | None = None,
                 kind: str = "chat", on_overflow: str = "error",
                 conversation: Conversation | None = None,
                 on_truncate: Callable[[FitReport], None] | None = None,
                 state_cache: StateCache | None = None):
        #: None until a face lends one (the TUI's chat pane before a model is loaded);
        #: whatever reaches the model goes through ``_engine()``
        self.engine = engine
        self.params = params
        self.store = store
        self.kind = kind
        self.on_overflow = on_overflow
        self.on_truncate = on_truncate
        self.conversation_id: int | None = None
        self.system = params.system
        self.messages: list[Message] = []
        self._ids: list[int | None] = []
        #: messages before this index no longer fit the context and are not sent
        self.window_start = 0
        #: saved KV states: a continued conversation
        #: starts from its saved state instead of evaluating its history again
        self.state_cache = state_cache
        #: a JSON Schema every reply must match (chat --schema); a template's applies to its message only
        self.schema: dict[str, Any] | None = None
        #: the schema the reply in flight (or the last one) was asked to match: what a face checks it against
        self.active_schema: dict[str, Any] | None = None
        #: the parameters of the reply in flight (or the last one): a template's over the session's
        self.active_params = params
        #: a template waiting for the next message, its input (use_template)
        self.next_template: Bound | None = None
        self._options: tuple[Params, dict[str, Any] | None] | None = None
        #: what the history keeps after the reply in flight (an answer's sources)
        self._footer = ""
        #: the tools the model may call in the next reply (None: none), and whether it must call one
        self.tools: Sequence[Tool] | None = None
        self.tool_choice: str | None = None
        self._restore_pending = conversation is not None and bool(conversation.messages)
        self.restored_tokens = 0
        if conversation is not None:
            self.conversation_id = conversation.id
            if not params.system:
                self.system = conversation.system
            for m in conversation.messages:
                if m.role in ("user", "assistant", "tool"):
                    self.messages.append(_as_message(m))
                    self._ids.append(m.id)

    def _engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError("ChatSession: no engine lent yet")  # a bug in the face, not a user's error
        return self.engine

    # -- what the model sees --------------------------------------------------

    def model_messages(self, extra: list[Message] | None = None) -> list[Message]:
        head: list[Message] = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.messages[self.window_start:] + (extra or [])

    def _fit(self, messages: list[Message], truncate_last: Callable[[int], Message] | None = None) -> tuple[list[Message], FitReport]:
        max_tokens = (self._options or (self.params,))[0].max_tokens  # a template's, for its message
        fitted, report = fit_messages(self._engine(), messages, max_tokens, self.on_overflow,
                                      truncate_last=truncate_last, tools=self.tools)
        self.window_start += report.dropped_messages
        if report.truncated and self.on_truncate:
            self.on_truncate(report)
        return fitted, report

    # -- actions --------------------------------------------------------------

    def use_template(self, bound: Bound | None) -> None:
        """Apply ``bound`` to the next message: its system prompt (kept for the conversation), its user prompt
        around the message, its parameters and schema (for that reply). None drops a waiting template."""
        self.next_template = bound

    def send(self, text: str, *, truncate_last: Callable[[int], Message] | None = None,
             grounding: Grounding | None = None) -> Reply:
        """Add a user message and start the reply (iterate the returned Reply).

        ``grounding``: passages from the user's documents for this turn only (the conversation keeps the
        message itself): put before the message (chat --docs), or composing the whole prompt (ask)."""
        bound, self.next_template = self.next_template, None
        self._options = None
        if bound is not None:
            if bound.system:
                self.set_system(bound.system)
            text = bound.message(text)
            self._options = (self.params.replace(**bound.params), bound.schema or self.schema)
        user: Message = {"role": "user", "content": textio.clean(text, "the message")}
        self._footer = grounding.footer() if grounding is not None else ""
        if grounding is not None and grounding.compose is not None:
            fitted = grounding.compose(self.system, self.messages[self.window_start:], user["content"])
            stored_user = user
        else:
            prefix = grounding.prefix if grounding is not None else None
            sent: Message = {"role": "user", "content": f"{prefix}\n\n{user['content']}"} if prefix else user
            fitted, report = self._fit(self.model_messages([sent]), truncate_last)
            stored_user = fitted[-1] if report.dropped_tokens else user
        self.messages.append(stored_user)
        self._ids.append(self._store(stored_user))
        try:
            return self._start(fitted)
        except BaseException:  # the reply could not start (a template, a tool choice): the message is not kept
            self._forget_from(len(self.messages) - 1)
            raise

    def answer_without_model(self, text: str, answer: str) -> None:
        """Keep an exchange whose answer needs no model (ask's "not found")."""
        user: Message = {"role": "user", "content": textio.clean(text, "the message")}
        self.messages.append(user)
        self._ids.append(self._store(user))
        reply: Message = {"role": "assistant", "content": answer}
        self.messages.append(reply)
        self._ids.append(self._store(reply))

    def add_tool_result(self, result: ToolResult) -> None:
        """Keep what a tool gave back (the model sees it at the next step)."""
        msg = result.message()
        self.messages.append(msg)
        if self.store is not None and self.conversation_id is not None:
            self._ids.append(self.store.add_message(self.conversation_id, "tool", result.content,
                                                    stats={"total_s": round(result.seconds, 4)},
                                                    tool_call_id=result.call_id, tool_name=result.name,
                                                    tool_error=result.error))
        else:
            self._ids.append(None)

    def continue_turn(self, tool_choice: str | None = None, *, with_tools: bool = True) -> Reply:
        """The model's next step in the same turn, after its tool calls got their results; ``with_tools``
        False: the last step, which must answer (the tools are not offered)."""
        offered = self.tools
        if not with_tools:
            self.tools = None
        try:
            fitted, _ = self._fit(self.model_messages())
            return self._start(fitted, tool_choice=tool_choice)
        finally:
            self.tools = offered

    def regenerate(self) -> Reply:
        """Drop the last reply and generate it again from the same user message."""
        if not self.messages:
            raise ValueError("nothing to regenerate yet")
        if self.messages[-1]["role"] == "assistant":
            self._forget_from(len(self.messages) - 1)
        fitted, _ = self._fit(self.model_messages())
        return self._start(fitted)

    def edit(self, index: int, text: str) -> Reply:
        """Resend user message ``index`` with new text; the conversation forks there.

        The stored conversation keeps its original messages; the session goes
        on in a copy holding the messages before ``index``.
        """
        if not (0 <= index < len(self.messages)) or self.messages[index]["role"] != "user":
            raise ValueError("only a user message can be edited")
        text = textio.clean(text, "the message")
        if self.store is not None and self.conversation_id is not None:
            self.conversation_id, kept = self.store.fork(self.conversation_id, self._ids[index])
            self._ids = list(kept)
        del self.messages[index:]
        del self._ids[index:]
        self.window_start = min(self.window_start, len(self.messages))
        return self.send(text)

    def set_system(self, text: str) -> None:
        text = textio.clean(text, "the system prompt")
        self.system = text
        if self.store is not None and self.conversation_id is not None:
            self.store.set_system(self.conversation_id, text)

    def clear(self) -> None:
        """Start a new conversation (the old one stays in history)."""
        self.conversation_id = None
        self._options = None
        self.messages.clear()
        self._ids.clear()
        self.window_start = 0

    # -- internals ------------------------------------------------------------

    def _start(self, messages: list[Message], *, tool_choice: str | None = None) -> Reply:
        if self._restore_pending and self.state_cache is not None and self.conversation_id is not None:
            self.restored_tokens = self.state_cache.load(self._engine(), self.conversation_id)
        self._restore_pending = False
        # a template's parameters and schema hold for its message's reply, and for regenerating it
        params, schema = self._options or (self.params, self.schema)
        self.active_schema = schema
        self.active_params = params
        extra: dict[str, Any] = {"schema": schema} if schema is not None else {}
        if self.tools:
            extra.update(tools=self.tools, tool_choice=tool_choice if tool_choice is not None else self.tool_choice)
        reply = self._engine().chat(messages, params, **extra)
        reply.on_done(self._record)
        return reply

    def _record(self, reply: Reply) -> None:
        text = reply.text  # the answer: the model sees its thinking again never (history keeps it apart)
        if not text and not reply.thinking and not reply.tool_calls and reply.finish_reason in ("cancelled", "error"):
            return  # stopped or failed before the first token: nothing to keep
        msg: Message = assistant_message(text, reply.tool_calls) if reply.tool_calls else \
            {"role": "assistant", "content": text}
        self.messages.append(msg)
        self._ids.append(self._store({**msg, "content": text + self._footer} if self._footer else msg, reply))
        if self.state_cache is not None and self.conversation_id is not None and self.kind == "chat":
            self.state_cache.save(self._engine(), self.conversation_id)

    def _store(self, msg: Message, reply: Reply | None = None) -> int | None:
        if self.store is None:
            return None
        if self.conversation_id is None:
            self.conversation_id = self.store.new_conversation(
                kind=self.kind, model=self._engine().info.name, system=self.system)
        stats = None
        params = None
        if reply is not None:
            stats = reply.summary()
            params = {**(self._options or (self.params,))[0].sampling(), "seed": reply.seed}
        return self.store.add_message(self.conversation_id, msg["role"], msg["content"],
                                      model=self._engine().info.name if msg["role"] == "assistant" else None,
                                      params=params, stats=stats, thinking=reply.thinking if reply else None,
                                      tool_calls=msg.get("tool_calls"))

    def _forget_from(self, index: int) -> None:
        ids = [i for i in self._ids[index:] if i is not None]
        if self.store is not None and self.conversation_id is not None and ids:
            self.store.delete_messages_from(self.conversation_id, ids[0])
        del self.messages[index:]
        del self._ids[index:]
        self.window_start = min(self.window_start, len(self.messages))


def _as_message(m: StoredMessage) -> Message:
    """A stored message as the model sees it again: tool calls and results with what ties them together."""
    msg: Message = {"role": m.role, "content": m.content}
    if m.tool_calls:
        msg["tool_calls"] = m.tool_calls
    if m.role == "tool":
        msg["tool_call_id"] = m.tool_call_id or ""
        msg["name"] = m.tool_name or ""
    return msg
