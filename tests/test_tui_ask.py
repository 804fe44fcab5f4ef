"""The Ask pane through Pilot: index, answer with sources, read a source, follow up, not found."""

from __future__ import annotations

import asyncio

from gptterm.history.store import HistoryStore
from gptterm.tui.widgets.ask import AskPane, Indexed
from tests.test_docs import make_corpus
from tests.tui_helpers import make_app, running


async def open_ask(t) -> AskPane:
    await t.ready()
    await t.pilot.press("f9")
    await t.wait_for(lambda: t.app.query(AskPane), what="the ask pane")
    await t.pilot.pause()
    return t.app.query_one(AskPane)


async def ask(t, pane: AskPane, question: str) -> AskPane.Answered:
    before = len(t.of(AskPane.Answered))
    pane.query_one("#ask-question").value = question
    pane.query_one("#ask-question").focus()
    await t.pilot.press("enter")
    await t.wait_for(lambda: len(t.of(AskPane.Answered)) > before, timeout=120, what="the answer")
    await t.pilot.pause()
    return t.of(AskPane.Answered)[-1]


def test_ask_answer_sources_follow_up_and_not_found(tmp_path, tiny_model):
    make_corpus(tmp_path / "corpus")

    async def run():
        async with running(make_app(model=str(tiny_model), ctx=1024, threads=1, max_tokens=8)) as t:
            pane = await open_ask(t)
            pane.query_one("#ask-question").value = "anything"  # nowhere to look yet
            pane.query_one("#ask-question").focus()
            await t.pilot.press("enter")
            await t.pilot.pause()
            assert not t.of(AskPane.Answered)
            assert any("Say where to look" in n for n in t.notifications())
            pane.query_one("#ask-where").value = str(tmp_path / "corpus")
            answered = await ask(t, pane, "What is the access code for the north door?")
            assert answered.error is None and answered.turn.reply is not None
            assert t.events(Indexed)[-1].report.read == 4
            assert answered.grounding.hits[0].path.endswith("office.txt")
            sources = pane.query_one("#ask-sources")
            assert sources.option_count == len(answered.grounding.hits)
            sources.focus()
            sources.highlighted = 0
            await t.pilot.press("enter")
            await t.pilot.pause()
            assert "4417" in str(pane.query_one("#ask-passage").render())
            assert t.app.busy is None
            # a follow-up continues the conversation; the index is not read again
            assert [m["content"] for m in pane.history][0] == "What is the access code for the north door?"
            await ask(t, pane, "And when do the tomato seedlings go into the greenhouse?")
            assert t.events(Indexed)[-1].report.read == 0 and len(pane.history) == 4
            conv = HistoryStore().latest(kinds=("ask",))
            assert [m.role for m in conv.messages] == ["user", "assistant", "user", "assistant"]
            assert "Sources:" in conv.messages[1].content
            lost = await ask(t, pane, "What is the capital of Peru?")
            assert lost.turn.reply is None
            assert "do not seem to contain the answer" in pane.transcript
    asyncio.run(run())


def test_a_collection_that_does_not_exist_is_a_notification(tiny_model):
    async def run():
        async with running(make_app(model=str(tiny_model), ctx=1024, threads=1)) as t:
            pane = await open_ask(t)
            pane.query_one("#ask-where").value = "@nothing"
            answered = await ask(t, pane, "hello?")
            assert "no collection named 'nothing'" in answered.error
            assert t.app.busy is None
    asyncio.run(run())


def test_documents_attached_to_a_chat(tmp_path, tiny_model):
    from gptterm.tui.widgets.chat_pane import ChatPane

    make_corpus(tmp_path / "corpus")

    async def run():
        async with running(make_app(model=str(tiny_model), ctx=1024, threads=1, max_tokens=4)) as t:
            await t.ready()
            command = next(c for c in t.app.get_system_commands(t.app.screen) if c.title.startswith("Documents"))
            command.callback()
            await t.pilot.pause()
            t.app.screen.query_one("#answer").value = str(tmp_path / "corpus")
            await t.pilot.press("enter")
            await t.wait_for(lambda: t.of(ChatPane.DocumentsReady), what="the documents indexed")
            await t.pilot.pause()
            await t.reply("What is the access code for the north door?")
            assert "sources: " in t.items()[-1].info and "office.txt" in t.items()[-1].info
            assert HistoryStore().latest().messages[0].content == "What is the access code for the north door?"
    asyncio.run(run())
