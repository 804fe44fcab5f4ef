"""Messages that worker threads post to the app; only their handlers touch widgets."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class ModelLoaded(Message):
    def __init__(self, engine: Any, seconds: float) -> None:
        super().__init__()
        self.engine = engine
        self.seconds = seconds


class ModelFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ReplyChunk(Message):
    def __init__(self, reply_id: int, text: str) -> None:
        super().__init__()
        self.reply_id = reply_id
        self.text = text


class ReplyFinished(Message):
    def __init__(self, reply_id: int, reply: Any, error: str | None = None) -> None:
        super().__init__()
        self.reply_id = reply_id
        self.reply = reply
        self.error = error


class ContextCounted(Message):
    """The tokens a conversation occupies, counted off the UI thread (a remote engine asks its server)."""

    def __init__(self, session: Any, tokens: int, error: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.tokens = tokens
        self.error = error
