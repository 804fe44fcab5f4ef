"""The Inspect pane through Pilot: tokens, a shaded generation, a branch from an alternative, a score."""

from __future__ import annotations

import asyncio

from gptterm.tui.widgets.inspect import InspectPane, Scored, Streamed, TokenView
from tests.tui_helpers import make_app, running


async def open_inspect(t, text: str) -> InspectPane:
    await t.ready()
    await t.pilot.press("f8")
    await t.wait_for(lambda: t.app.query(InspectPane), what="the inspect pane")
    pane = t.app.query_one(InspectPane)
    before = len(t.of(InspectPane.Tokenized))
    pane.query_one("#inspect-source").load_text(text)
    await t.wait_for(lambda: len(t.of(InspectPane.Tokenized)) > before, what="the tokens")
    await t.pilot.pause()
    return pane


def generated(t) -> Streamed:
    return next(m for m in reversed(t.events(Streamed)) if m.done)


def test_tokens_generation_branch_and_score(tiny_model):
    async def run():
        async with running(make_app(model=str(tiny_model), ctx=256, threads=1)) as t:
            pane = await open_inspect(t, "the cat sat")
            tokens = t.of(InspectPane.Tokenized)[-1].tokens
            assert "".join(x.text for x in tokens) == "the cat sat"
            assert "tokens" in str(pane.query_one("#inspect-status").render())
            # chat mode: the template's special tokens appear
            pane.query_one("#inspect-mode").value = "chat"
            await t.wait_for(lambda: any(x.special for x in t.of(InspectPane.Tokenized)[-1].tokens), what="chat")
            pane.query_one("#inspect-mode").value = "text"
            await t.pilot.pause()

            pane.query_one("#inspect-max").value = "6"
            pane.query_one("#inspect-generate").press()
            await t.wait_for(lambda: any(m.done for m in t.events(Streamed)), what="the generation")
            await t.pilot.pause()
            first = generated(t).reply
            assert len(first.logprobs) == first.stats.completion_tokens == 6
            view = pane.query_one(TokenView).view
            new = [x for x in view.tokens if x.generated]
            assert len(new) == 6 and all(x.logprob is not None and x.top for x in new)
            assert view.text_before(len(view.tokens)) == "the cat sat" + first.text
            assert t.app.busy is None

            # onto the third generated token; Enter on its second alternative branches from there
            token_view = pane.query_one(TokenView)
            token_view.focus()
            index = len(view.tokens) - 6 + 2
            token_view.selected = index
            await t.pilot.pause()
            alternatives = pane.query_one("#inspect-alternatives")
            assert alternatives.option_count == 8
            alternatives.focus()
            alternatives.highlighted = 1
            await t.pilot.press("enter")
            await t.wait_for(lambda: sum(m.done for m in t.events(Streamed)) == 2, what="the branch")
            await t.pilot.pause()
            branch = pane.query_one(TokenView).view
            chosen = view.tokens[index].top[1]
            assert [x.info.id for x in branch.tokens[:index]] == [x.info.id for x in view.tokens[:index]]
            assert branch.tokens[index].info.text == chosen.text and branch.tokens[index].logprob == chosen.logprob
            assert generated(t).reply.stats.completion_tokens == 6  # the rest generated again
            assert branch.text_before(index + 1) == view.text_before(index) + chosen.text

            # score: each token of the text shaded, the perplexity shown
            await t.pilot.press("ctrl+o")
            await t.wait_for(lambda: any(m.result for m in t.events(Scored)), what="the score")
            await t.pilot.pause()
            scored = t.events(Scored)[-1]
            assert scored.result.scored == len(tokens) - 1 and scored.result.perplexity > 1
            assert scored.tokens[0].logprob is None and all(x.logprob is not None for x in scored.tokens[1:])
            assert "perplexity" in str(pane.query_one("#inspect-status").render())
            assert t.app.busy is None
    asyncio.run(run())


def test_escape_stops_a_generation_and_the_empty_text_is_refused(tiny_model):
    async def run():
        async with running(make_app(model=str(tiny_model), ctx=256, threads=1)) as t:
            pane = await open_inspect(t, "")
            pane.query_one("#inspect-generate").press()
            await t.pilot.pause()
            assert any("Type or paste a text" in n for n in t.notifications())
            pane.query_one("#inspect-source").load_text("once upon a time")
            pane.query_one("#inspect-max").value = "200000"
            pane.query_one("#inspect-generate").press()
            await t.wait_for(lambda: t.events(Streamed), what="streaming")
            await t.pilot.press("escape")
            await t.wait_for(lambda: any(m.done for m in t.events(Streamed)), what="the stop")
            assert generated(t).reply.finish_reason in ("cancelled", "length")
            assert t.app.busy is None
            pane.query_one("#inspect-max").value = "lots"
            pane.query_one("#inspect-generate").press()
            await t.pilot.pause()
            assert any("max_tokens must be an integer" in n for n in t.notifications())
    asyncio.run(run())


def test_inspect_on_a_server_shows_tokens_and_shaded_generation(llama_server, isolated_dirs):
    async def run():
        async with running(make_app(server=llama_server)) as t:
            pane = await open_inspect(t, "The sky is")
            assert [x.text for x in t.of(InspectPane.Tokenized)[-1].tokens] == ["The", " sky", " is"]
            pane.query_one("#inspect-max").value = "4"
            pane.query_one("#inspect-generate").press()
            await t.wait_for(lambda: any(m.done for m in t.events(Streamed)), timeout=120,
                             what="the generation")
            reply = generated(t).reply
            assert reply.logprobs and all(x.logprob <= 0 for x in reply.logprobs)
            await t.pilot.press("ctrl+o")
            await t.wait_for(lambda: any("cannot score a text" in n for n in t.notifications()), what="refusal")
            assert t.app.busy is None
    asyncio.run(run())
