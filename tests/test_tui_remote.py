"""The TUI on a server: a reply over the real llama-cpp-python server, switching backends, a dropped stream."""

from __future__ import annotations

import asyncio

from gptterm.engine.local import LocalEngine
from gptterm.engine.remote import RemoteEngine
from gptterm.tui.messages import ModelLoaded
from tests.conftest import write_config

from tests.tui_helpers import make_app, running, stored_messages

PARAMS = {"temperature": 0.0, "max_tokens": 24}


def test_reply_over_the_server_is_streamed_and_stored(llama_server, isolated_dirs):
    write_config(isolated_dirs, f'[servers.box]\nurl = "{llama_server}"\nctx = 2048\n')

    async def run():
        async with running(make_app(server="box", **PARAMS)) as t:
            await t.ready()
            app = t.app
            assert isinstance(app.engine, RemoteEngine)
            assert "server box" in t.status() and "/2048" in t.status()
            reply = await t.reply("What is the capital of France?")
            assert t.items()[-1].content == reply and "Paris" in reply
            msgs = stored_messages()
            assert [m.content for m in msgs] == ["What is the capital of France?", reply]
            assert msgs[1].model == "smollm2" and msgs[1].stats["completion_tokens"] > 0
            assert "tok/s" in t.status()

            # the command palette offers the local model; switching reloads in the background
            local = next(c for c in app.backend_commands() if c.title == "Backend: local model")
            local.callback()
            await t.wait_for(lambda: isinstance(app.engine, LocalEngine), what="local model")
            await t.wait_for(lambda: "server" not in t.status(), what="status")
            assert any(c.title == "Backend: server box" for c in app.backend_commands())
    asyncio.run(run())


def test_dropped_stream_is_a_notification_and_the_partial_reply_is_kept(fake_server):
    async def run():
        async with running(make_app(server=fake_server.url("drop"), **PARAMS)) as t:
            await t.ready()
            await t.reply("tell me")
            assert any("dropped mid-reply" in n for n in t.notifications())
            item = t.items()[-1]
            assert item.content == "The first words" and "incomplete" in item.info
            msgs = stored_messages()
            assert [m.content for m in msgs] == ["tell me", "The first words"]
            assert msgs[1].stats["finish_reason"] == "error"
    asyncio.run(run())


def test_unreachable_server_is_a_notification(fake_server):
    async def run():
        async with running(make_app(server=fake_server.url("wrongurl"), **PARAMS)) as t:
            await t.wait_for(lambda: t.app.model_state == "failed", what="connection failure")
            assert any("no OpenAI-compatible API" in n for n in t.notifications())
    asyncio.run(run())


def test_loading_a_local_model_from_the_models_pane_leaves_the_server(fake_server, isolated_dirs, tiny_model):
    # The bug: the pane set the local model and reloaded, but the server stayed in use.
    write_config(isolated_dirs, f'[servers.box]\nurl = "{fake_server.url("ok")}"\n')
    from gptterm.models import store
    from tests.test_tui_models import select

    store.import_file(tiny_model, "tiny")

    async def run():
        async with running(make_app(server="box", ctx=256, **PARAMS)) as t:
            await t.ready()
            assert isinstance(t.app.engine, RemoteEngine)
            await t.pilot.press("f6")
            pane = t.app.query_one("ModelsPane")
            await t.wait_for(lambda: pane.local, what="the local models")
            await select(t.pilot, pane, "#local-models", [m.name for m in pane.local].index("tiny"))
            await t.pilot.press("l")
            await t.wait_for(lambda: len(t.of(ModelLoaded)) == 2, what="the switch")
            assert isinstance(t.app.engine, LocalEngine) and t.app.engine.info.name == "tiny"
            await t.wait_for(lambda: "server" not in t.status(), what="status")
            await t.pilot.press("f2")
            await t.reply("hello")
            assert stored_messages()[-1].model == "tiny"  # the local engine answered
    asyncio.run(run())
