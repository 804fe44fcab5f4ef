"""What every TUI test shares: starting the app with a message recorder, and waiting on what it posts.

Tests assert on the messages the app's workers and panes post (recorded
through ``run_test(message_hook=…)``) and on what the screen shows, not on
private attributes.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable, TypeVar

from textual.message import Message
from textual.pilot import Pilot

from gptterm.history.store import HistoryStore
from gptterm.tui.app import GpttermApp, create_app
from gptterm.tui.generation import Generation
from gptterm.tui.messages import ModelFailed, ModelLoaded
from gptterm.tui.widgets.chat import MessageItem, PromptInput
from gptterm.tui.widgets.chat_pane import ChatPane

SIZE = (120, 40)
M = TypeVar("M", bound=Message)
E = TypeVar("E")


class Recorder:
    """Every message dispatched anywhere in the app, once each (a bubbling message reaches several nodes)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._seen: set[int] = set()

    def __call__(self, message: Message) -> None:
        if id(message) not in self._seen:
            self._seen.add(id(message))
            self.messages.append(message)

    def of(self, kind: type[M]) -> list[M]:
        return [m for m in self.messages if isinstance(m, kind)]

    def events(self, kind: type[E]) -> list[E]:
        """The events of this kind that the panes' generations delivered (a turn's TextDelta, a job's
        TaskEvent, …), in order."""
        return [e for m in self.of(Generation.Batch) for e in m.events if isinstance(e, kind)]


class Run:
    """A running app under Pilot, with the messages it has posted so far."""

    def __init__(self, app: GpttermApp, pilot: Pilot, recorder: Recorder) -> None:
        self.app = app
        self.pilot = pilot
        self.recorder = recorder

    @property
    def chat(self) -> ChatPane:
        return self.app.query_one(ChatPane)

    def of(self, kind: type[M]) -> list[M]:
        return self.recorder.of(kind)

    def events(self, kind: type[E]) -> list[E]:
        return self.recorder.events(kind)

    async def wait_for(self, condition: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> None:
        await wait_for(self.pilot, condition, timeout, what)

    async def ready(self) -> None:
        """Wait for the model to load (or fail to); fails the test if it failed."""
        await self.wait_for(lambda: self.of(ModelLoaded) or self.of(ModelFailed), what="model load")
        await self.wait_for(lambda: self.app.model_state != "loading", what="model state")
        failed = self.of(ModelFailed)
        assert not failed, failed[0].error

    async def send(self, text: str) -> None:
        """Type ``text`` into the chat and press Enter (no wait)."""
        prompt = self.app.query_one(PromptInput)
        prompt.focus()
        prompt.text = text
        await self.pilot.press("enter")

    async def reply(self, text: str, timeout: float = 60.0) -> str:
        """Send ``text`` and wait for the reply; returns the reply's text."""
        started = len(self.of(ChatPane.ReplyFinished))
        await self.send(text)
        return await self.reply_done(started, timeout)

    async def reply_done(self, started: int, timeout: float = 60.0) -> str:
        """Wait until a reply after the ``started``-th has finished and the engine is free again."""
        await self.wait_for(lambda: len(self.of(ChatPane.ReplyFinished)) > started and self.app.busy is None,
                            timeout, what="reply end")
        await self.pilot.pause()
        return self.of(ChatPane.ReplyFinished)[-1].reply.text

    def notifications(self) -> list[str]:
        return [str(n.message) for n in self.app._notifications]

    def status(self) -> str:
        return str(self.app.query_one("#status").render())

    def items(self) -> list[MessageItem]:
        return list(self.app.query(MessageItem))


@asynccontextmanager
async def running(app: GpttermApp, size: tuple[int, int] = SIZE) -> AsyncIterator[Run]:
    recorder = Recorder()
    async with app.run_test(size=size, message_hook=recorder) as pilot:
        yield Run(app, pilot, recorder)


async def wait_for(pilot: Pilot, condition: Callable[[], object], timeout: float = 60.0,
                   what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def make_app(**overrides: object) -> GpttermApp:
    """The app as the CLI makes it, greedy and short-winded unless told otherwise."""
    model = overrides.pop("model", None)
    server = overrides.pop("server", None)
    params = {"temperature": 0.0, "max_tokens": 24, "ctx": 2048, **overrides}
    return create_app(model=model, server=server, overrides=params)  # type: ignore[arg-type]


def stored_messages() -> list:
    conv = HistoryStore().latest()
    return conv.messages if conv else []
