"""The TUI on a server: a reply over the real llama-cpp-python server, switching backends, a dropped stream."""

from __future__ import annotations

import asyncio

from gptterm.engine.local import LocalEngine
from gptterm.engine.remote import RemoteEngine
from gptterm.history.store import HistoryStore
from gptterm.tui.app import create_app
from gptterm.tui.widgets.chat import MessageItem, PromptInput
from tests.conftest import write_config

from tests.test_tui import ready, wait_for  # noqa: E402  (the Pilot helpers, shared)

SIZE = (120, 40)
PARAMS = {"temperature": 0.0, "max_tokens": 24}


async def send(pilot, app, text):
    prompt = app.query_one(PromptInput)
    prompt.focus()
    prompt.text = text
    started = app.reply_id
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.reply_id > started and app.reply is None, what="reply end")
    await pilot.pause()


def stored_messages():
    conv = HistoryStore().latest()
    return conv.messages if conv else []


def status(app) -> str:
    return str(app.query_one("#status").render())


def test_reply_over_the_server_is_streamed_and_stored(llama_server, isolated_dirs):
    write_config(isolated_dirs, f'[servers.box]\nurl = "{llama_server}"\nctx = 2048\n')

    async def run():
        app = create_app(server="box", overrides=PARAMS)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            assert isinstance(app.engine, RemoteEngine)
            assert "server box" in status(app) and "/2048" in status(app)
            await send(pilot, app, "What is the capital of France?")
            reply = app.query(MessageItem)[-1].content
            assert "Paris" in reply
            msgs = stored_messages()
            assert [m.content for m in msgs] == ["What is the capital of France?", reply]
            assert msgs[1].model == "smollm2" and msgs[1].stats["completion_tokens"] > 0
            assert "tok/s" in status(app)

            # the command palette offers the local model; switching reloads in the background
            titles = [c.title for c in app.backend_commands()]
            assert "Backend: local model" in titles
            app.use_backend(None)
            await wait_for(pilot, lambda: isinstance(app.engine, LocalEngine), what="local model")
            assert "server" not in status(app)
            assert any(c.title == "Backend: server box" for c in app.backend_commands())
    asyncio.run(run())


def test_dropped_stream_is_a_notification_and_the_partial_reply_is_kept(fake_server):
    async def run():
        app = create_app(server=fake_server.url("drop"), overrides=PARAMS)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await send(pilot, app, "tell me")
            assert any("dropped mid-reply" in str(n.message) for n in app._notifications)
            item = app.query(MessageItem)[-1]
            assert item.content == "The first words" and "incomplete" in item.info
            msgs = stored_messages()
            assert [m.content for m in msgs] == ["tell me", "The first words"]
            assert msgs[1].stats["finish_reason"] == "error"
    asyncio.run(run())


def test_unreachable_server_is_a_notification(fake_server):
    async def run():
        app = create_app(server=fake_server.url("wrongurl"), overrides=PARAMS)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.model_state == "failed", what="connection failure")
            assert any("no OpenAI-compatible API" in str(n.message) for n in app._notifications)
    asyncio.run(run())
