"""The TUI driven through Textual's Pilot, on the bundled model (and a broken one)."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from gptterm.history.store import HistoryStore
from gptterm.tui.app import PAGE, create_app
from gptterm.tui.screens import ConfirmScreen, HelpScreen
from gptterm.tui.widgets.chat import ChatLog, MessageItem, PromptInput
from gptterm.tui.widgets.sidebar import Sidebar

SIZE = (120, 40)


async def wait_for(pilot, condition, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def ready(pilot, app):
    await wait_for(pilot, lambda: app.model_state != "loading", what="model load")
    assert app.engine is not None, app.model_error


async def send(pilot, app, text):
    prompt = app.query_one(PromptInput)
    prompt.focus()
    prompt.text = text
    app._test_reply_id = app.reply_id
    await pilot.press("enter")


async def reply_done(pilot, app, timeout=60.0):
    """Wait until a reply started after the last send/press has finished."""
    started = getattr(app, "_test_reply_id", 0)
    await wait_for(pilot, lambda: app.reply_id > started and app.reply is None, timeout, what="reply end")
    app._test_reply_id = app.reply_id
    await pilot.pause()


def stored_messages():
    conv = HistoryStore().latest()
    return conv.messages if conv else []


@pytest.fixture
def app_factory():
    def make(**overrides):
        model = overrides.pop("model", None)
        params = {"temperature": 0.0, "max_tokens": 24, "ctx": 2048, **overrides}
        return create_app(model=model, overrides=params)
    return make


def test_long_lived_objects_are_frozen_out_of_the_collector_once_the_model_is_up(app_factory):
    # a full collection over the app's objects held the GIL 70-90 ms mid-reply
    async def run():
        gc.unfreeze()
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await pilot.pause()
            assert gc.get_freeze_count() > 10_000
        gc.unfreeze()

    asyncio.run(run())


def test_send_streams_reply_and_stores_it(app_factory):
    async def run():
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            assert app.query_one("#status").visual is not None  # first frame drawn
            await ready(pilot, app)
            await send(pilot, app, "What is the capital of France?")
            await reply_done(pilot, app)
            items = app.query(MessageItem)
            assert [i.role for i in items] == ["user", "assistant"]
            reply_text = items[-1].content
            assert "Paris" in reply_text
            msgs = stored_messages()
            assert [m.content for m in msgs] == ["What is the capital of France?", reply_text]
            assert msgs[1].stats["completion_tokens"] > 0
            status = str(app.query_one("#status").render())
            assert "tok/s" in status and "context" in status and "/2048" in status
            assert app.query_one(PromptInput).text == ""
    asyncio.run(run())


def test_escape_stops_reply_and_keeps_partial_text(app_factory):
    async def run():
        app = app_factory(max_tokens=1500, temperature=0.8)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await send(pilot, app, "Write a very long story about a lighthouse keeper, in twenty paragraphs.")
            await wait_for(pilot, lambda: app.reply_item is not None and len(app.reply_item.content) > 40,
                           what="some streamed text")
            await pilot.press("escape")
            await reply_done(pilot, app)
            last = stored_messages()[-1]
            assert last.stats["finish_reason"] == "cancelled"
            assert last.content == app.query(MessageItem)[-1].content
            assert 0 < last.stats["completion_tokens"] < 1500
            assert "stopped" in app.query(MessageItem)[-1].info
    asyncio.run(run())


def test_regenerate_replaces_last_reply(app_factory):
    async def run():
        app = app_factory(temperature=1.0, seed=1)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await send(pilot, app, "Name a colour.")
            await reply_done(pilot, app)
            first = app.query(MessageItem)[-1].content
            app.params = app.session.params = app.params.replace(seed=99)
            await pilot.press("ctrl+r")
            await reply_done(pilot, app)
            items = app.query(MessageItem)
            assert len(items) == 2 and items[-1].content != first
            assert [m.content for m in stored_messages()] == ["Name a colour.", items[-1].content]
    asyncio.run(run())


def test_edit_and_resend_forks_the_conversation(app_factory):
    async def run():
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await send(pilot, app, "Say hello.")
            await reply_done(pilot, app)
            await send(pilot, app, "Say goodbye.")
            await reply_done(pilot, app)
            log = app.query_one(ChatLog)
            log.focus()
            await pilot.pause()
            for _ in range(3):
                await pilot.press("up")
            assert log.selected == 0
            await pilot.press("e")
            assert app.editing == 0 and app.query_one(PromptInput).text == "Say hello."
            app.query_one(PromptInput).text = "Say thanks."
            await pilot.press("enter")
            await reply_done(pilot, app)
            assert [m.content for m in stored_messages()][0] == "Say thanks."
            assert len(stored_messages()) == 2
            # the original conversation is kept as it was
            original = HistoryStore().list_conversations()[1]
            assert original.message_count == 4 and original.title == "Say hello."
            assert [i.role for i in app.query(MessageItem)] == ["user", "assistant"]
    asyncio.run(run())


def test_copy_message_and_code_block(app_factory):
    async def run():
        store = HistoryStore()
        cid = store.new_conversation()
        store.add_message(cid, "user", "code please")
        store.add_message(cid, "assistant", "Here:\n\n```python\nprint('hi')\n```\n\nDone.")
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await app.open_conversation(cid)
            await pilot.pause()
            app.query_one(ChatLog).focus()
            await pilot.pause()
            await pilot.press("y")
            assert app.clipboard == "print('hi')"
            await pilot.press("c")
            assert app.clipboard.startswith("Here:")
            await pilot.press("up", "c")
            assert app.clipboard == "code please"
    asyncio.run(run())


def test_switch_conversations_and_cli_conversations_appear(app_factory):
    async def run():
        store = HistoryStore()
        a = store.new_conversation()
        store.add_message(a, "user", "first topic: owls")
        store.add_message(a, "assistant", "Owls are birds.")
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            # a conversation written by another process (the CLI) shows up
            other = HistoryStore()
            b = other.new_conversation(kind="oneshot")
            other.add_message(b, "user", "second topic: cats")
            app.refresh_conversations()
            await pilot.pause()
            titles = [c.title for c in app.query_one(Sidebar).conversations]
            assert titles == ["second topic: cats", "first topic: owls"]
            view = app.query_one("#conversation-list")
            view.focus()
            view.highlighted = 1
            await pilot.press("enter")
            await pilot.pause()
            assert app.session.conversation_id == a
            assert [i.content for i in app.query(MessageItem)] == ["first topic: owls", "Owls are birds."]
            # its context use is counted off the UI thread and shown when known
            expected = app.engine.count_chat_tokens(app.session.model_messages())
            await wait_for(pilot, lambda: app.context_used == expected, what="context count")
            assert f"context {expected}/2048" in str(app.query_one("#status").render())
            await send(pilot, app, "And cats?")
            await reply_done(pilot, app)
            assert [m.role for m in store.get(a).messages] == ["user", "assistant", "user", "assistant"]
            # search narrows the list
            app.query_one("#conversation-search").value = "second topic"
            await pilot.pause()
            assert [c.id for c in app.query_one(Sidebar).conversations] == [b]
    asyncio.run(run())


def test_parameter_change_is_used_and_bad_value_refused(app_factory):
    async def run():
        app = app_factory(max_tokens=40)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await pilot.press("f5")
            field = app.query_one("#param-max_tokens")
            field.focus()
            field.value = "5"
            await pilot.pause()
            assert app.params.max_tokens == 5
            temp = app.query_one("#param-temperature")
            temp.value = "-1"
            await pilot.pause()
            help_text = app.query_one("#field-temperature .param-help")
            assert "temperature must be in 0..5, not -1" in str(help_text.render())
            assert help_text.has_class("-error")
            assert app.params.temperature == 0.0  # refused values are never applied
            await pilot.press("f2")
            await send(pilot, app, "Count to twenty.")
            await reply_done(pilot, app)
            assert stored_messages()[-1].stats["completion_tokens"] == 5
            assert stored_messages()[-1].params["max_tokens"] == 5
    asyncio.run(run())


def test_preset_and_save_settings(app_factory, isolated_dirs):
    async def run():
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            app.post_message(app.query_one("#settings-pane").PresetChosen("creative"))
            await pilot.pause()
            assert app.params.temperature == 1.0 and app.params.top_k == 100
            assert app.query_one("#param-temperature").value == "1.0"
            await pilot.press("ctrl+s")
            await pilot.pause()
        text = (isolated_dirs["config"] / "config.toml").read_text()
        assert "temperature = 1.0" in text and "top_k = 100" in text
    asyncio.run(run())


def test_load_setting_reloads_model_in_background(app_factory):
    async def run():
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            first_engine = app.engine
            await pilot.press("f5")
            field = app.query_one("#param-ctx")
            field.focus()
            field.value = "1024"
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.engine is not first_engine, what="reload")
            assert app.engine.n_ctx == 1024
    asyncio.run(run())


def test_model_that_fails_to_load_leaves_app_usable(app_factory, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)

    async def run():
        store = HistoryStore()
        cid = store.new_conversation()
        store.add_message(cid, "user", "kept in history")
        app = app_factory(model=str(bad))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.model_state == "failed", what="load failure")
            assert "cannot load model" in app.model_error
            assert any("cannot load model" in str(n.message) for n in app._notifications)
            assert "failed" in str(app.query_one("#status").render())
            # history and settings still work
            assert [c.id for c in app.query_one(Sidebar).conversations] == [cid]
            await pilot.press("f5")
            app.query_one("#param-top_k").value = "12"
            await pilot.pause()
            assert app.params.top_k == 12
            await pilot.press("f2")
            await send(pilot, app, "hello?")
            assert app.reply is None and len(app.query(MessageItem)) == 0
    asyncio.run(run())


def test_long_conversation_opens_with_latest_page(app_factory):
    async def run():
        store = HistoryStore()
        cid = store.new_conversation()
        for i in range(300):
            store.add_message(cid, "user" if i % 2 == 0 else "assistant", f"message {i}")
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            start = time.perf_counter()
            await app.open_conversation(cid)
            await pilot.pause()
            elapsed = time.perf_counter() - start
            items = app.query(MessageItem)
            assert len(items) == PAGE and items[-1].content == "message 299"
            assert elapsed < 10  # sanity only; see bench/ for timings
            await pilot.press("ctrl+o")
            await pilot.pause()
            assert len(app.query(MessageItem)) == 2 * PAGE
    asyncio.run(run())


def test_rename_delete_with_confirmation_and_export(app_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def run():
        store = HistoryStore()
        cid = store.new_conversation()
        store.add_message(cid, "user", "to be renamed")
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await app.open_conversation(cid)
            view = app.query_one("#conversation-list")
            view.focus()
            await pilot.pause()
            await pilot.press("r")
            await pilot.pause()
            app.screen.query_one("#answer").value = "Renamed"
            await pilot.press("enter")
            await pilot.pause()
            assert store.get(cid).title == "Renamed"
            view.focus()
            await pilot.press("x")
            await pilot.pause()
            await pilot.press("enter")
            await pilot.pause()
            assert (tmp_path / f"conversation-{cid}.md").read_text().startswith("# Renamed")
            view.focus()
            await pilot.press("delete")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("escape")
            await pilot.pause()
            assert store.get(cid).title == "Renamed"  # cancelled: nothing deleted
            view.focus()
            await pilot.press("d")
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert store.list_conversations() == []
            assert app.session.conversation_id is None
    asyncio.run(run())


def test_keymap_from_config_and_help_screen(app_factory, isolated_dirs):
    cfg = isolated_dirs["config"]
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text('[keymap]\nnew-conversation = "f12"\n')

    async def run():
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await send(pilot, app, "hi")
            await reply_done(pilot, app)
            assert app.session.conversation_id is not None
            await pilot.press("f12")
            await pilot.pause()
            assert app.session.conversation_id is None and len(app.query(MessageItem)) == 0
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            assert app.screen.keys["new-conversation"] == "f12"
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, HelpScreen)
    asyncio.run(run())


def test_command_palette_offers_every_app_action(app_factory):
    from gptterm.tui.actions import APP_ACTIONS

    async def run():
        app = app_factory()
        async with app.run_test(size=SIZE):
            titles = [c.title for c in app.get_system_commands(app.screen)]
            for action in APP_ACTIONS:
                assert any(t.startswith(action.label) for t in titles), action.id
    asyncio.run(run())


def test_theme_choice_is_saved(app_factory, isolated_dirs):
    async def run():
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            app.theme = "nord"
            await pilot.pause()
        assert 'theme = "nord"' in (isolated_dirs["config"] / "config.toml").read_text()
        again = app_factory()
        async with again.run_test(size=SIZE) as pilot:
            assert again.theme == "nord"
    asyncio.run(run())


ESSAY = ("The printing press was invented by Johannes Gutenberg around 1440 in Mainz. It used movable metal type "
         "and oil-based ink. Before it, books were copied by hand, which made them rare and expensive.\n\n"
         "Within fifty years, printing shops had spread to more than 250 cities in Europe. Prices fell, literacy "
         "rose, and ideas travelled faster than ever before.\n\n")


def test_summarize_pane_streams_summary_of_long_file(app_factory, tmp_path):
    doc = tmp_path / "essay.txt"
    doc.write_text(ESSAY * 4)

    async def run():
        app = app_factory(ctx=512)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await pilot.press("f3")
            pane = app.query_one("#summarize-pane")
            path = app.query_one("#sum-file")
            path.value = str(doc)
            path.focus()
            await pilot.press("enter")
            assert app.query_one("#sum-source").text.startswith("The printing press")
            app.query_one("#sum-length").value = "short"
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: pane.run_id == 1 and not pane.running, timeout=240, what="job end")
            await pilot.pause()
            assert pane.output_text.strip()
            label = str(app.query_one("#summarize-pane .progress-label").render())
            assert label.startswith("done") and "model calls" in label
            assert "Gutenberg" not in pane.output_text or len(pane.output_text) < len(ESSAY * 5) / 2
    asyncio.run(run())


def test_summarize_pane_stop_keeps_finished_parts(app_factory):
    async def run():
        app = app_factory(ctx=512)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await pilot.press("f3")
            pane = app.query_one("#summarize-pane")
            app.query_one("#sum-source").load_text(ESSAY * 8)
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: pane.job is not None and len(pane.job.chunks) >= 1, timeout=120,
                           what="first part")
            await pilot.press("escape")
            await wait_for(pilot, lambda: not pane.running, timeout=60, what="stop")
            assert str(app.query_one("#summarize-pane .progress-label").render()).startswith("stopped")
            # the app is usable again: chat works
            await pilot.press("f2")
            await send(pilot, app, "hi")
            await reply_done(pilot, app)
    asyncio.run(run())


def test_translate_pane_keeps_paragraphs_and_swaps(app_factory):
    src = "The cat sleeps.\n\n```\ncode stays\n```\n\nThe dog runs in the park.\n"

    async def run():
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await pilot.press("f4")
            pane = app.query_one("#translate-pane")
            app.query_one("#tr-source").load_text(src)
            app.query_one("#tr-target-lang").value = "fr"
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: pane.run_id == 1 and not pane.running, timeout=120, what="job end")
            await pilot.pause()
            out = app.query_one("#tr-output").text
            assert "```\ncode stays\n```" in out
            assert out.count("\n") == src.count("\n")
            assert "English" in str(app.query_one("#tr-detected").render())
            app.query_one("#tr-swap").press()
            await pilot.pause()
            assert app.query_one("#tr-source-lang").value == "fr"
            assert app.query_one("#tr-target-lang").value == "en"
            assert app.query_one("#tr-source").text == out and app.query_one("#tr-output").text == ""
    asyncio.run(run())


def test_task_panes_refuse_bad_input(app_factory, tmp_path):
    async def run():
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            await pilot.press("f3")
            await pilot.press("ctrl+g")  # no text yet
            await pilot.pause()
            assert any("Paste some text" in str(n.message) for n in app._notifications)
            path = app.query_one("#sum-file")
            path.value = "/bin/sh"
            path.focus()
            await pilot.press("enter")
            await pilot.pause()
            assert any("looks like a binary file" in str(n.message) for n in app._notifications)
            app.query_one("#sum-source").load_text("some text")
            app.query_one("#sum-words").value = "2"
            await pilot.press("ctrl+g")
            await pilot.pause()
            assert any("--length in words must be in 5..5000" in str(n.message) for n in app._notifications)
            assert not app.query_one("#summarize-pane").running
    asyncio.run(run())


def stored_conversations(n):
    store = HistoryStore()
    for i in range(n):
        store.add_message(store.new_conversation(), "user", f"topic {i}")


def test_hundreds_of_conversations_stay_one_list_widget(app_factory):
    async def run():
        stored_conversations(300)
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            sidebar = app.query_one(Sidebar)
            assert len(sidebar.conversations) == 300
            assert sidebar.conversations[0].title == "topic 299"
            # the list draws its rows itself: layout passes while a reply streams do not walk 300 widgets
            assert len(list(sidebar.walk_children())) < 10
            assert "300 conversations" in str(app.query_one("#conversation-count").render())
            # the one opened from the list is highlighted in it
            view = app.query_one("#conversation-list")
            view.focus()
            view.highlighted = 5
            await pilot.press("enter")
            await pilot.pause()
            assert app.session.conversation_id == sidebar.conversations[5].id
            assert view.highlighted == 5
    asyncio.run(run())


def test_periodic_list_refresh_leaves_the_highlight_alone(app_factory):
    async def run():
        stored_conversations(5)
        app = app_factory()
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot, app)
            view = app.query_one("#conversation-list")
            view.focus()
            view.highlighted = 0
            await pilot.press("down", "down")
            assert view.highlighted == 2
            app.refresh_conversations()  # what the 5-second timer does
            await pilot.pause()
            assert view.highlighted == 2
    asyncio.run(run())
