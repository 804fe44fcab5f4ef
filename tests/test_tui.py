"""The TUI driven through Textual's Pilot, on the bundled model (and a broken one)."""

from __future__ import annotations

import asyncio
import gc
import time

from gptterm.history.store import HistoryStore
from gptterm.session import Busy
from gptterm.session.turn import TextDelta
from gptterm.tasks.job import TaskEvent
from gptterm.tui.messages import ModelFailed, ModelLoaded
from gptterm.tui.screens import ConfirmScreen, HelpScreen
from gptterm.tui.widgets.chat import ChatLog, MessageItem, PromptInput
from gptterm.tui.widgets.chat_pane import PAGE, ChatPane
from gptterm.tui.widgets.settings import SettingsPane
from gptterm.tui.widgets.sidebar import Sidebar
from gptterm.tui.widgets.task_pane import TaskPane
from tests.tui_helpers import make_app, running, stored_messages


def test_long_lived_objects_are_frozen_out_of_the_collector_once_the_model_is_up():
    # a full collection over the app's objects held the GIL 70-90 ms mid-reply
    async def run():
        gc.unfreeze()
        async with running(make_app()) as t:
            await t.ready()
            await t.pilot.pause()
            assert gc.get_freeze_count() > 10_000
        gc.unfreeze()

    asyncio.run(run())


def test_send_streams_reply_and_stores_it():
    async def run():
        async with running(make_app()) as t:
            assert t.app.query_one("#status").visual is not None  # first frame drawn
            await t.ready()
            reply = await t.reply("What is the capital of France?")
            assert [i.role for i in t.items()] == ["user", "assistant"]
            assert t.items()[-1].content == reply and "Paris" in reply
            # the reply streamed: pieces arrived before the end, and they add up to the reply
            chunks = t.events(TextDelta)
            assert chunks and "".join(c.text for c in chunks) == reply
            msgs = stored_messages()
            assert [m.content for m in msgs] == ["What is the capital of France?", reply]
            assert msgs[1].stats["completion_tokens"] > 0
            status = t.status()
            assert "tok/s" in status and "context" in status and "/2048" in status and "ready" in status
            assert t.app.query_one(PromptInput).text == ""
    asyncio.run(run())


def test_status_line_follows_the_engine_being_busy():
    async def run():
        async with running(make_app(max_tokens=400, temperature=0.8)) as t:
            await t.ready()
            await t.send("Write a long story about a lighthouse keeper.")
            await t.wait_for(lambda: t.events(TextDelta), what="streaming")
            assert "generating… (Esc stops)" in t.status()
            assert isinstance(t.app.busy, Busy) and t.app.busy.owner is t.chat.generation
            await t.pilot.press("escape")
            await t.reply_done(0)
            assert "ready" in t.status() and t.app.busy is None
    asyncio.run(run())


def test_escape_stops_reply_and_keeps_partial_text():
    async def run():
        async with running(make_app(max_tokens=1500, temperature=0.8)) as t:
            await t.ready()
            await t.send("Write a very long story about a lighthouse keeper, in twenty paragraphs.")
            await t.wait_for(lambda: len("".join(c.text for c in t.events(TextDelta))) > 40,
                             what="some streamed text")
            await t.pilot.press("escape")
            await t.reply_done(0)
            finished = t.of(ChatPane.ReplyFinished)[-1]
            assert finished.reply.finish_reason == "cancelled"
            last = stored_messages()[-1]
            assert last.stats["finish_reason"] == "cancelled"
            assert last.content == t.items()[-1].content == finished.reply.text
            assert 0 < last.stats["completion_tokens"] < 1500
            assert "stopped" in t.items()[-1].info
    asyncio.run(run())


def test_regenerate_replaces_last_reply():
    async def run():
        async with running(make_app(temperature=1.0, seed=1)) as t:
            await t.ready()
            first = await t.reply("Name a colour.")
            t.app.post_message(SettingsPane.ParamChanged("seed", 99, reload=False))
            await t.pilot.pause()
            t.chat.query_one(PromptInput).focus()
            await t.pilot.press("ctrl+r")
            again = await t.reply_done(1)
            assert again != first
            assert len(t.items()) == 2 and t.items()[-1].content == again
            assert [m.content for m in stored_messages()] == ["Name a colour.", again]
            assert stored_messages()[-1].params["seed"] == 99
    asyncio.run(run())


def test_edit_and_resend_forks_the_conversation():
    async def run():
        async with running(make_app()) as t:
            await t.ready()
            await t.reply("Say hello.")
            await t.reply("Say goodbye.")
            log = t.app.query_one(ChatLog)
            log.focus()
            await t.pilot.pause()
            for _ in range(3):
                await t.pilot.press("up")
            assert log.selected == 0
            await t.pilot.press("e")
            assert t.chat.editing == 0 and t.app.query_one(PromptInput).text == "Say hello."
            assert "editing a message" in t.status()
            t.app.query_one(PromptInput).text = "Say thanks."
            await t.pilot.press("enter")
            await t.reply_done(2)
            assert [m.content for m in stored_messages()][0] == "Say thanks."
            assert len(stored_messages()) == 2
            # the original conversation is kept as it was
            original = HistoryStore().list_conversations()[1]
            assert original.message_count == 4 and original.title == "Say hello."
            assert [i.role for i in t.items()] == ["user", "assistant"]
    asyncio.run(run())


def test_escape_cancels_an_edit():
    async def run():
        async with running(make_app()) as t:
            await t.ready()
            await t.reply("Say hello.")
            log = t.app.query_one(ChatLog)
            log.focus()
            await t.pilot.press("up", "e")
            assert t.chat.editing == 0
            await t.pilot.press("escape")
            assert t.chat.editing is None and t.app.query_one(PromptInput).text == ""
            assert "editing" not in t.status()
    asyncio.run(run())


def test_copy_message_and_code_block():
    async def run():
        store = HistoryStore()
        cid = store.new_conversation()
        store.add_message(cid, "user", "code please")
        store.add_message(cid, "assistant", "Here:\n\n```python\nprint('hi')\n```\n\nDone.")
        async with running(make_app()) as t:
            await t.ready()
            await t.chat.open_conversation(cid)
            await t.pilot.pause()
            t.app.query_one(ChatLog).focus()
            await t.pilot.pause()
            await t.pilot.press("y")
            assert t.app.clipboard == "print('hi')"
            await t.pilot.press("c")
            assert t.app.clipboard.startswith("Here:")
            await t.pilot.press("up", "c")
            assert t.app.clipboard == "code please"
    asyncio.run(run())


def test_switch_conversations_and_cli_conversations_appear():
    async def run():
        store = HistoryStore()
        a = store.new_conversation()
        store.add_message(a, "user", "first topic: owls")
        store.add_message(a, "assistant", "Owls are birds.")
        async with running(make_app()) as t:
            await t.ready()
            # a conversation written by another process (the CLI) shows up
            other = HistoryStore()
            b = other.new_conversation(kind="oneshot")
            other.add_message(b, "user", "second topic: cats")
            sidebar = t.app.query_one(Sidebar)
            sidebar.refresh_list(sidebar.current)  # what the 5-second timer does
            await t.pilot.pause()
            assert [c.title for c in sidebar.conversations] == ["second topic: cats", "first topic: owls"]
            view = t.app.query_one("#conversation-list")
            view.focus()
            view.highlighted = 1
            await t.pilot.press("enter")
            await t.pilot.pause()
            assert any(m.conversation_id == a for m in t.of(Sidebar.Selected))
            assert [i.content for i in t.items()] == ["first topic: owls", "Owls are birds."]
            # its context use is counted off the UI thread and shown when known
            await t.wait_for(lambda: t.of(ChatPane.ContextCounted), what="context count")
            counted = t.of(ChatPane.ContextCounted)[-1].tokens
            assert counted > 0
            await t.wait_for(lambda: f"context {counted}/2048" in t.status(), what="count shown")
            await t.reply("And cats?")
            assert [m.role for m in store.get(a).messages] == ["user", "assistant", "user", "assistant"]
            # search narrows the list
            t.app.query_one("#conversation-search").value = "second topic"
            await t.pilot.pause()
            assert [c.id for c in sidebar.conversations] == [b]
    asyncio.run(run())


def test_parameter_change_is_used_and_bad_value_refused():
    async def run():
        async with running(make_app(max_tokens=40)) as t:
            await t.ready()
            await t.pilot.press("f5")
            await t.wait_for(lambda: t.app.query("#param-max_tokens"), what="settings pane")
            field = t.app.query_one("#param-max_tokens")
            field.focus()
            field.value = "5"
            await t.pilot.pause()
            changed = t.of(SettingsPane.ParamChanged)
            assert changed and (changed[-1].name, changed[-1].value) == ("max_tokens", 5)
            temp = t.app.query_one("#param-temperature")
            temp.value = "-1"
            await t.pilot.pause()
            help_text = t.app.query_one("#field-temperature .param-help")
            assert "temperature must be in 0..5, not -1" in str(help_text.render())
            assert help_text.has_class("-error")
            assert not any(m.name == "temperature" for m in t.of(SettingsPane.ParamChanged))  # never applied
            await t.pilot.press("f2")
            await t.reply("Count to twenty.")
            assert stored_messages()[-1].stats["completion_tokens"] == 5
            assert stored_messages()[-1].params["max_tokens"] == 5
            assert stored_messages()[-1].params["temperature"] == 0.0
    asyncio.run(run())


def test_preset_and_save_settings(isolated_dirs):
    async def run():
        async with running(make_app()) as t:
            await t.ready()
            await t.pilot.press("f5")
            await t.wait_for(lambda: t.app.query(SettingsPane), what="settings pane")
            t.app.post_message(SettingsPane.PresetChosen("creative"))
            await t.pilot.pause()
            assert t.app.query_one("#param-temperature").value == "1.0"
            await t.pilot.press("ctrl+s")
            await t.pilot.pause()
        text = (isolated_dirs["config"] / "config.toml").read_text()
        assert "temperature = 1.0" in text and "top_k = 100" in text
    asyncio.run(run())


def test_load_setting_reloads_model_in_background():
    async def run():
        async with running(make_app()) as t:
            await t.ready()
            await t.pilot.press("f5")
            await t.wait_for(lambda: t.app.query("#param-ctx"), what="settings pane")
            field = t.app.query_one("#param-ctx")
            field.focus()
            field.value = "1024"
            await t.pilot.press("enter")
            await t.wait_for(lambda: len(t.of(ModelLoaded)) == 2, what="reload")
            assert t.of(ModelLoaded)[-1].engine.n_ctx == 1024
            assert t.app.engine is t.of(ModelLoaded)[-1].engine
            await t.wait_for(lambda: "/1024" in t.status(), what="status")
    asyncio.run(run())


def test_model_that_fails_to_load_leaves_app_usable(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)

    async def run():
        store = HistoryStore()
        cid = store.new_conversation()
        store.add_message(cid, "user", "kept in history")
        async with running(make_app(model=str(bad))) as t:
            await t.wait_for(lambda: t.of(ModelFailed), what="load failure")
            assert "cannot load model" in t.of(ModelFailed)[0].error
            await t.wait_for(lambda: "failed" in t.status(), what="status")
            assert any("cannot load model" in n for n in t.notifications())
            # history and settings still work
            assert [c.id for c in t.app.query_one(Sidebar).conversations] == [cid]
            await t.pilot.press("f5")
            await t.wait_for(lambda: t.app.query("#param-top_k"), what="settings pane")
            t.app.query_one("#param-top_k").value = "12"
            await t.pilot.pause()
            assert t.of(SettingsPane.ParamChanged)[-1].value == 12
            await t.pilot.press("f2")
            await t.send("hello?")
            await t.pilot.pause()
            assert not t.events(TextDelta) and len(t.items()) == 0
            assert t.notifications()[-1].startswith("cannot load model")
    asyncio.run(run())


def test_long_conversation_opens_with_latest_page():
    async def run():
        store = HistoryStore()
        cid = store.new_conversation()
        for i in range(300):
            store.add_message(cid, "user" if i % 2 == 0 else "assistant", f"message {i}")
        async with running(make_app()) as t:
            start = time.perf_counter()
            await t.chat.open_conversation(cid)
            await t.pilot.pause()
            elapsed = time.perf_counter() - start
            items = t.items()
            assert len(items) == PAGE and items[-1].content == "message 299"
            assert elapsed < 10  # sanity only; see bench/ for timings
            await t.pilot.press("ctrl+o")
            await t.pilot.pause()
            assert len(t.items()) == 2 * PAGE
    asyncio.run(run())


def test_rename_delete_with_confirmation_and_export(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def run():
        store = HistoryStore()
        cid = store.new_conversation()
        store.add_message(cid, "user", "to be renamed")
        async with running(make_app()) as t:
            await t.ready()
            await t.chat.open_conversation(cid)
            view = t.app.query_one("#conversation-list")
            view.focus()
            await t.pilot.pause()
            await t.pilot.press("r")
            await t.pilot.pause()
            t.app.screen.query_one("#answer").value = "Renamed"
            await t.pilot.press("enter")
            await t.pilot.pause()
            assert store.get(cid).title == "Renamed"
            view.focus()
            await t.pilot.press("x")
            await t.pilot.pause()
            await t.pilot.press("enter")
            await t.pilot.pause()
            assert (tmp_path / f"conversation-{cid}.md").read_text().startswith("# Renamed")
            view.focus()
            await t.pilot.press("delete")
            await t.pilot.pause()
            assert isinstance(t.app.screen, ConfirmScreen)
            await t.pilot.press("escape")
            await t.pilot.pause()
            assert store.get(cid).title == "Renamed"  # cancelled: nothing deleted
            assert not t.of(Sidebar.Deleted)
            view.focus()
            await t.pilot.press("d")
            await t.pilot.pause()
            await t.pilot.press("y")
            await t.pilot.pause()
            assert store.list_conversations() == []
            assert [m.conversation_id for m in t.of(Sidebar.Deleted)] == [cid]
            assert t.chat.session.conversation_id is None and not t.items()
    asyncio.run(run())


def test_export_to_an_unwritable_place_is_a_notification(tmp_path):
    async def run():
        store = HistoryStore()
        cid = store.new_conversation()
        store.add_message(cid, "user", "exported")
        async with running(make_app()) as t:
            await t.chat.open_conversation(cid)
            await t.app.run_conversation_action("export_conversation")  # as the palette does
            await t.pilot.pause()
            t.app.screen.query_one("#path").value = str(tmp_path / "no-such-dir" / "x.md")
            t.app.screen.query_one("#path").focus()
            await t.pilot.press("enter")
            await t.pilot.pause()
            assert any(n.startswith("cannot write") for n in t.notifications())
    asyncio.run(run())


def test_keymap_from_config_and_help_screen(isolated_dirs):
    cfg = isolated_dirs["config"]
    cfg.mkdir(parents=True)
    (cfg / "config.toml").write_text('[keymap]\nnew-conversation = "f12"\n')

    async def run():
        async with running(make_app()) as t:
            await t.ready()
            await t.reply("hi")
            assert t.chat.session.conversation_id is not None
            await t.pilot.press("f12")
            await t.pilot.pause()
            assert t.chat.session.conversation_id is None and len(t.items()) == 0
            await t.pilot.press("f1")
            await t.pilot.pause()
            assert isinstance(t.app.screen, HelpScreen)
            assert t.app.screen.keys["new-conversation"] == "f12"
            await t.pilot.press("escape")
            await t.pilot.pause()
            assert not isinstance(t.app.screen, HelpScreen)
    asyncio.run(run())


def test_command_palette_offers_every_action_and_runs_chat_actions_from_any_pane():
    from gptterm.tui.actions import APP_ACTIONS, CHAT_ACTIONS, CONVERSATION_ACTIONS

    async def run():
        async with running(make_app()) as t:
            await t.ready()
            await t.reply("hi")
            titles = [c.title for c in t.app.get_system_commands(t.app.screen)]
            for action in APP_ACTIONS + CONVERSATION_ACTIONS + CHAT_ACTIONS:
                if action.id != "cancel-edit":
                    assert any(title.startswith(action.label) for title in titles), action.id
            await t.pilot.press("f3")
            new = next(c for c in t.app.get_system_commands(t.app.screen) if c.title.startswith("New "))
            await new.callback()
            await t.pilot.pause()
            assert t.app.query_one("#tabs").active == "chat"
            assert t.chat.session.conversation_id is None and not t.items()
    asyncio.run(run())


def test_theme_choice_is_saved(isolated_dirs):
    async def run():
        async with running(make_app()) as t:
            t.app.theme = "nord"
            await t.pilot.pause()
        assert 'theme = "nord"' in (isolated_dirs["config"] / "config.toml").read_text()
        again = make_app()
        async with running(again):
            assert again.theme == "nord"
    asyncio.run(run())


ESSAY = ("The printing press was invented by Johannes Gutenberg around 1440 in Mainz. It used movable metal type "
         "and oil-based ink. Before it, books were copied by hand, which made them rare and expensive.\n\n"
         "Within fifty years, printing shops had spread to more than 250 cities in Europe. Prices fell, literacy "
         "rose, and ideas travelled faster than ever before.\n\n")


async def open_task_pane(t, key: str, pane_id: str) -> TaskPane:
    await t.pilot.press(key)
    await t.wait_for(lambda: t.app.query(pane_id), what=pane_id)
    return t.app.query_one(pane_id, TaskPane)


def test_summarize_pane_streams_summary_of_long_file(tmp_path, tiny_model):
    doc = tmp_path / "essay.txt"
    doc.write_text(ESSAY * 4)

    async def run():
        # the tiny model: these test the pane (parts, progress, stop), not what a summary says
        async with running(make_app(model=str(tiny_model), ctx=512, threads=1, max_tokens=64)) as t:
            await t.ready()
            pane = await open_task_pane(t, "f3", "#summarize-pane")
            path = t.app.query_one("#sum-file")
            path.value = str(doc)
            path.focus()
            await t.pilot.press("enter")
            assert t.app.query_one("#sum-source").text.startswith("The printing press")
            t.app.query_one("#sum-length").value = "short"
            await t.pilot.press("ctrl+g")
            await t.wait_for(lambda: t.of(TaskPane.JobFinished), timeout=240, what="job end")
            await t.pilot.pause()
            finished = t.of(TaskPane.JobFinished)[-1]
            assert finished.error is None and finished.job.text.strip()
            assert len(finished.job.chunks) > 1  # the text did not fit one pass
            assert pane.output_text == finished.job.text
            label = str(t.app.query_one("#summarize-pane .progress-label").render())
            assert label.startswith("done") and "model calls" in label
            assert t.app.busy is None
    asyncio.run(run())


def test_summarize_pane_stop_keeps_finished_parts():
    async def run():
        async with running(make_app(ctx=512)) as t:
            await t.ready()
            await open_task_pane(t, "f3", "#summarize-pane")
            t.app.query_one("#sum-source").load_text(ESSAY * 40)  # parts enough to outlast the Esc on a fast machine
            await t.pilot.press("ctrl+g")
            await t.wait_for(lambda: any(e.kind == "chunk" for e in t.events(TaskEvent)),
                             timeout=120, what="first part")
            assert "summarizing… (Esc stops)" in t.status()
            # the engine is lent to the summary: the chat must wait
            await t.pilot.press("f2")
            await t.send("hi")
            await t.pilot.pause()
            assert not t.events(TextDelta)
            assert any("Summarizing… in progress" in n for n in t.notifications())
            await t.pilot.press("escape")
            await t.wait_for(lambda: t.of(TaskPane.JobFinished), timeout=60, what="stop")
            assert t.of(TaskPane.JobFinished)[-1].job.cancelled
            assert str(t.app.query_one("#summarize-pane .progress-label").render()).startswith("stopped")
            # the app is usable again: chat works
            await t.reply("hi")
    asyncio.run(run())


def test_translate_pane_keeps_paragraphs_and_swaps():
    src = "The cat sleeps.\n\n```\ncode stays\n```\n\nThe dog runs in the park.\n"

    async def run():
        async with running(make_app()) as t:
            await t.ready()
            await open_task_pane(t, "f4", "#translate-pane")
            t.app.query_one("#tr-source").load_text(src)
            t.app.query_one("#tr-target-lang").value = "fr"
            await t.pilot.press("ctrl+g")
            await t.wait_for(lambda: t.of(TaskPane.JobFinished), timeout=120, what="job end")
            await t.pilot.pause()
            out = t.app.query_one("#tr-output").text
            assert "```\ncode stays\n```" in out
            assert out.count("\n") == src.count("\n")
            assert "English" in str(t.app.query_one("#tr-detected").render())
            t.app.query_one("#tr-swap").press()
            await t.pilot.pause()
            assert t.app.query_one("#tr-source-lang").value == "fr"
            assert t.app.query_one("#tr-target-lang").value == "en"
            assert t.app.query_one("#tr-source").text == out and t.app.query_one("#tr-output").text == ""
    asyncio.run(run())


def test_task_panes_refuse_bad_input():
    async def run():
        async with running(make_app()) as t:
            await t.ready()
            await open_task_pane(t, "f3", "#summarize-pane")
            await t.pilot.press("ctrl+g")  # no text yet
            await t.pilot.pause()
            assert any("Paste some text" in n for n in t.notifications())
            path = t.app.query_one("#sum-file")
            path.value = "/bin/sh"
            path.focus()
            await t.pilot.press("enter")
            await t.pilot.pause()
            assert any("looks like a binary file" in n for n in t.notifications())
            t.app.query_one("#sum-source").load_text("some text")
            t.app.query_one("#sum-words").value = "2"
            await t.pilot.press("ctrl+g")
            await t.pilot.pause()
            assert any("--length in words must be in 5..5000" in n for n in t.notifications())
            assert not t.events(TaskEvent) and t.app.busy is None  # nothing ran, the engine is free
    asyncio.run(run())


def stored_conversations(n):
    store = HistoryStore()
    for i in range(n):
        store.add_message(store.new_conversation(), "user", f"topic {i}")


def test_hundreds_of_conversations_stay_one_list_widget():
    async def run():
        stored_conversations(300)
        async with running(make_app()) as t:
            await t.ready()
            sidebar = t.app.query_one(Sidebar)
            assert len(sidebar.conversations) == 300
            assert sidebar.conversations[0].title == "topic 299"
            # the list draws its rows itself: layout passes while a reply streams do not walk 300 widgets
            assert len(list(sidebar.walk_children())) < 10
            assert "300 conversations" in str(t.app.query_one("#conversation-count").render())
            # the one opened from the list is highlighted in it
            view = t.app.query_one("#conversation-list")
            view.focus()
            view.highlighted = 5
            await t.pilot.press("enter")
            await t.pilot.pause()
            assert t.chat.session.conversation_id == sidebar.conversations[5].id
            assert view.highlighted == 5
    asyncio.run(run())


def test_one_conversation_and_one_message_read_in_the_singular():
    async def run():
        stored_conversations(1)
        async with running(make_app()) as t:
            sidebar = t.app.query_one(Sidebar)
            await t.wait_for(lambda: sidebar.conversations, what="list")
            assert str(t.app.query_one("#conversation-count").render()) == "1 conversation"
            view = t.app.query_one("#conversation-list")
            assert "1 message ·" in str(view.get_option_at_index(0).prompt.renderables[1])
    asyncio.run(run())


def test_periodic_list_refresh_leaves_the_highlight_alone():
    async def run():
        stored_conversations(5)
        async with running(make_app()) as t:
            await t.ready()
            view = t.app.query_one("#conversation-list")
            view.focus()
            view.highlighted = 0
            await t.pilot.press("down", "down")
            assert view.highlighted == 2
            sidebar = t.app.query_one(Sidebar)
            sidebar.refresh_list(sidebar.current)  # what the 5-second timer does
            await t.pilot.pause()
            assert view.highlighted == 2
    asyncio.run(run())
