"""The TUI's parts of issue 15 through Pilot: a reasoning model's thinking folded (dimmed, streamed) above its
reply and kept apart in history; advice as one notification; the first start's welcome and its download key;
the task panes' progress in the CLI's words; the catalog's new columns."""

from __future__ import annotations

import asyncio

from textual.widgets import DataTable, Label, Select

from gptterm import paths
from gptterm.history.store import HistoryStore
from gptterm.session.turn import ThinkingDelta
from gptterm.tui.app import create_app
from gptterm.tui.widgets.chat import ThinkingView
from gptterm.tui.widgets.chat_pane import ChatPane
from gptterm.tui.widgets.models import ModelsPane
from gptterm.tui.widgets.task_pane import TaskPane
from gptterm.tui.widgets.welcome import Welcome
from tests.scripted import make_thinking_gguf, never_stops, script
from tests.test_thinking import THOUGHT
from tests.tui_helpers import make_app, running


def test_thinking_is_streamed_folded_above_the_reply_and_kept_apart(tmp_path, monkeypatch):
    model = make_thinking_gguf(tmp_path / "thinker.gguf")
    script(monkeypatch, (THOUGHT, "stop"))

    async def run():
        async with running(make_app(model=str(model), ctx=512, threads=1, max_tokens=400)) as t:
            await t.ready()
            text = await t.reply("Hi!")
            assert text == "Hello there."
            assert t.events(ThinkingDelta)  # streamed apart from the reply's text
            view = t.app.query_one(ThinkingView)
            assert view.collapsed and "Thought for 8 words" in view.title
            assert "greet" not in t.items()[-1].content
            await t.pilot.click(f"#{view.id}" if view.id else "ThinkingView CollapsibleTitle")
            await t.pilot.pause()
            assert not view.collapsed
            assert "I should greet back." in str(view.query_one(".thinking-text").render())
            stored = HistoryStore().latest().messages[-1]
            assert stored.content == "Hello there." and stored.thinking == "The user greets me. I should greet back."
            # opened again from history: folded above its reply
            await t.chat.open_conversation(HistoryStore().latest().id)
            await t.pilot.pause()
            views = t.app.query(ThinkingView)
            assert len(views) == 1 and views.first().collapsed
    asyncio.run(run())


def test_translating_to_chinese_on_the_bundled_model_notifies_once(bundled_model, monkeypatch):
    script(monkeypatch, (["机器翻译。"], "stop"))

    async def run():
        async with running(make_app(ctx=1024, threads=1)) as t:
            await t.ready()
            await t.pilot.press("f4")
            await t.wait_for(lambda: t.app.query("#translate-pane"), what="the translate pane")
            await t.pilot.pause()
            pane = t.app.query_one("#translate-pane", TaskPane)
            pane.query_one("#tr-source-lang", Select).value = "en"
            pane.query_one("#tr-target-lang", Select).value = "zh"
            pane.query_one("#tr-source").load_text("Machine translation is useful.")
            for n in (1, 2):
                await pane.start()
                await t.wait_for(lambda: len(t.of(TaskPane.JobFinished)) == n, what="a translation")
            advice = [m for m in t.notifications() if "gptterm models pull" in m]
            assert len(advice) == 1 and "Chinese" in advice[0]
            label = str(pane.query_one(".progress-label", Label).render())
            assert label.startswith("done · 1 model call")
            await t.pilot.press("f2")
            await t.reply("请用中文介绍一下你自己")
            await t.reply("请再说一遍")
            advice = [m for m in t.notifications() if "gptterm models pull" in m]
            assert len(advice) == 2 and "poor reply" in advice[1]
    asyncio.run(run())


def test_the_summary_pane_says_the_summary_was_cut_at_a_sentence(tiny_model, monkeypatch):
    script(monkeypatch, never_stops())

    async def run():
        async with running(make_app(model=str(tiny_model), ctx=1024, threads=1)) as t:
            await t.ready()
            await t.pilot.press("f3")
            await t.wait_for(lambda: t.app.query("#summarize-pane"), what="the summarize pane")
            await t.pilot.pause()
            pane = t.app.query_one("#summarize-pane", TaskPane)
            pane.query_one("#sum-source").load_text("The cat sat on the mat. It was warm.")
            await pane.start()
            await t.wait_for(lambda: t.of(TaskPane.JobFinished), what="a summary")
            await t.pilot.pause()
            assert "cut at its last complete sentence" in str(pane.query_one(".progress-label", Label).render())
            assert getattr(pane, "output_text").rstrip().endswith("text.")
    asyncio.run(run())


def test_first_start_welcome_names_the_model_and_downloads_the_recommended_one(bundled_model, hub):
    app = create_app(overrides={"ctx": 1024, "threads": 1}, welcome=True)

    async def run():
        async with running(app) as t:
            await t.ready()
            welcome = t.app.query_one(Welcome)
            await t.wait_for(lambda: welcome.shown, what="the welcome")
            text = str(welcome.query_one("#welcome-text").render())
            assert "SmolLM2-135M-Instruct" in text and "English only" in text and "F10" in text
            assert welcome.entry is not None and f"gptterm models pull {welcome.entry.id}" in text.replace("\n", " ")
            assert paths.config_file().exists()  # the next start is not a first start
            await t.wait_for(lambda: t.app.query(ModelsPane), what="the models pane")
            await t.pilot.press("f10")
            await t.wait_for(lambda: t.of(ModelsPane.DownloadDone), what="the download to end", timeout=60)
            assert not welcome.shown
            assert any("in the background" in m for m in t.notifications())
    asyncio.run(run())


def test_no_welcome_once_there_is_a_config_file(tiny_model):
    async def run():
        async with running(make_app(model=str(tiny_model), ctx=256, threads=1)) as t:
            await t.ready()
            assert not t.app.query(Welcome)
    asyncio.run(run())


def test_the_models_pane_shows_what_each_model_is_good_for(tiny_model):
    async def run():
        async with running(make_app(model=str(tiny_model), ctx=256, threads=1), size=(200, 50)) as t:
            await t.ready()
            await t.pilot.press("f6")
            pane = t.app.query_one(ModelsPane)
            await t.wait_for(lambda: pane.remote_specs, what="the catalog")
            table = pane.query_one("#remote-models", DataTable)
            labels = [str(c.label) for c in table.columns.values()]
            for column in ("good for", "languages", "ctx", "licence"):
                assert column in labels, labels
            row = table.get_row_at(pane.remote_specs.index("qwen3-0.6b"))
            assert "translate" in row[labels.index("good for")] and row[labels.index("thinks")] == "yes"
    asyncio.run(run())
