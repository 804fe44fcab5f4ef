"""Every pane that generates goes through the one Generation helper (gptterm/tui/generation.py): when the
model fails mid-stream — with an error a user can meet, or with a bug — the pane says so once and the engine
is free again for the next thing."""

from __future__ import annotations

import asyncio
from typing import Iterator

import pytest
from textual.widgets import Input, TextArea

from gptterm.errors import EngineError
from tests.tui_helpers import make_app, running


def fail_mid_stream(monkeypatch, error: BaseException) -> None:
    """Every reply streams two pieces, then ``error`` is raised inside the engine."""
    from gptterm.engine.local import LocalEngine

    def broken(self, reply, tokens, params, seed, gbnf=None) -> Iterator[str]:
        yield "The start "
        yield "of a reply "
        raise error

    monkeypatch.setattr(LocalEngine, "_generate", broken)


async def in_chat(t, tmp_path) -> None:
    await t.send("Say something long.")


async def in_summarize(t, tmp_path) -> None:
    await t.pilot.press("f3")
    await t.wait_for(lambda: t.app.query("#summarize-pane .source"), what="the summarize pane")
    t.app.query_one("#summarize-pane .source", TextArea).load_text("A text to summarize. " * 20)
    await t.pilot.press("ctrl+g")


async def in_translate(t, tmp_path) -> None:
    await t.pilot.press("f4")
    await t.wait_for(lambda: t.app.query("#tr-source"), what="the translate pane")
    t.app.query_one("#tr-source", TextArea).load_text("A sentence to translate.")
    await t.pilot.press("ctrl+g")


async def in_inspect(t, tmp_path) -> None:
    await t.pilot.press("f8")
    await t.wait_for(lambda: t.app.query("#inspect-source"), what="the inspect pane")
    t.app.query_one("#inspect-source", TextArea).load_text("Once upon a time")
    await t.pilot.press("ctrl+g")


async def in_ask(t, tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("The north door access code is 4417.\n")
    await t.pilot.press("f9")
    await t.wait_for(lambda: t.app.query("#ask-where"), what="the ask pane")
    t.app.query_one("#ask-where", Input).value = str(tmp_path / "notes.txt")
    question = t.app.query_one("#ask-question", Input)
    question.value = "What is the north door access code?"
    question.focus()
    await t.pilot.press("enter")


PANES = {"chat": in_chat, "summarize": in_summarize, "translate": in_translate, "inspect": in_inspect,
         "ask": in_ask}


@pytest.mark.parametrize("error, said", [(EngineError("generation failed: planted"), "generation failed: planted"),
                                         (RuntimeError("a planted bug"), "RuntimeError: a planted bug")],
                         ids=["user-error", "bug"])
def test_each_pane_that_fails_mid_stream_frees_the_engine(tiny_model, tmp_path, monkeypatch, error, said):
    fail_mid_stream(monkeypatch, error)

    async def run():
        async with running(make_app(model=str(tiny_model), ctx=1024, threads=1, max_tokens=16)) as t:
            await t.ready()
            for name, start in PANES.items():
                before = sum(said in n for n in t.notifications())
                await start(t, tmp_path)
                await t.wait_for(lambda: sum(said in n for n in t.notifications()) > before, timeout=60,
                                 what=f"the failure in {name}")
                await t.wait_for(lambda: t.app.busy is None, what=f"the engine back from {name}")
                assert t.app.session.busy is None and t.app.model_state == "ready", name
    asyncio.run(run())
