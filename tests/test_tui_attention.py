"""The Inspect pane's Attention view through Pilot, on the bundled model: the shading is the capture's,
for the selected token and the selected layer and head; a continuation's tokens; the limits."""

from __future__ import annotations

import asyncio

from gptterm.engine import attention
from gptterm.tasks import attention as views
from gptterm.tui.widgets.attention import TOP, AttentionPanel, Captured
from gptterm.tui.widgets.inspect import InspectPane, Streamed, TokenView
from tests.test_tui_inspect import open_inspect
from tests.tui_helpers import make_app, running

TEXT = "The cat sat on the mat because it was tired"


def shaded(view: TokenView) -> list[tuple[int, int, int] | None]:
    """The background of each token's span as drawn (None: not shaded)."""
    text = view.content
    out = []
    for span in text.spans:
        bg = span.style.bgcolor if not isinstance(span.style, str) else None
        out.append(tuple(bg.get_truecolor()) if bg is not None else None)
    return out


def expected(capture, selection, index: int) -> list[tuple[int, int, int] | None]:
    focus = views.focus_in(views.matrix(capture, selection), index)
    return [views.rgb(s) for s in focus.shade] + [None] * (len(capture) - index - 1)


def test_attention_view_shades_what_the_selected_token_attends_to(bundled_model):
    async def run():
        async with running(make_app()) as t:
            pane = await open_inspect(t, TEXT)
            await t.pilot.press("ctrl+t")
            await t.wait_for(lambda: t.events(Captured) and pane.attention_on, what="the capture")
            await t.pilot.pause()
            captured = t.events(Captured)[-1]
            capture = captured.capture
            ids = [x.id for x in t.of(InspectPane.Tokenized)[-1].tokens]
            assert list(captured.ids) == ids == capture.tokens and capture.n_layers == 30 and capture.n_heads == 9
            view = pane.query_one(TokenView)
            panel = pane.query_one(AttentionPanel)
            last = len(ids) - 1
            assert view.selected == last
            # the last token's row: shaded as focus_in says, the sink (token 0) brightest, listed first
            shades = shaded(view)
            want = expected(capture, views.Selection(), last)
            assert shades[:last] == want[:last]  # the selected token itself is marked, not shaded
            top = views.focus_in(captured.first, last, TOP).top
            listed = str(panel.query_one("#attention-top").content).splitlines()
            assert top[0][0] == 0 and [int(line.split()[0]) for line in listed[1:]] == [j for j, _ in top]
            assert listed[1].endswith(f"{top[0][1]:.3f}")
            assert "attention: mean of all layers" in str(pane.query_one("#inspect-status").render())

            # ← moves the query: tokens after it are masked (not shaded)
            view.focus()
            await t.pilot.press("left", "left")
            assert view.selected == last - 2
            assert shaded(view)[:last - 2] == expected(capture, views.Selection(), last - 2)[:last - 2]
            assert shaded(view)[last - 1:] == [None, None]
            # a click on the first token selects it
            await t.pilot.click(TokenView, offset=(1, 0))
            await t.pilot.pause()
            assert view.selected == 0

            # one layer, one head: reduced in a worker, then drawn
            view.selected = last
            panel.query_one("#attention-layer").value = "5"
            await t.wait_for(lambda: panel.selection == views.Selection(5, "mean") and
                             shaded(view)[:last] == expected(capture, views.Selection(5, "mean"), last)[:last],
                             what="layer 5")
            panel.query_one("#attention-head").value = "max"
            await t.wait_for(lambda: shaded(view)[:last] == expected(capture, views.Selection(5, "max"), last)[:last],
                             what="layer 5, max over heads")
            assert "layer 5, max over heads" in str(pane.query_one("#inspect-status").render())

            # ctrl+t again: the probabilities; the same tokens come back at once (nothing captured again)
            await t.pilot.press("ctrl+t")
            assert not pane.attention_on and view.shading is None
            await t.pilot.press("ctrl+t")
            assert pane.attention_on and len(t.events(Captured)) == 1

            # a continuation: the prompt's tokens and the generated ones, captured together
            pane.query_one("#inspect-max").value = "6"
            pane.query_one("#inspect-generate").press()
            await t.wait_for(lambda: any(m.done for m in t.events(Streamed)) and t.app.busy is None, what="generation")
            assert not pane.attention_on  # other tokens now
            await t.pilot.press("ctrl+t")
            await t.wait_for(lambda: len(t.events(Captured)) == 2 and pane.attention_on, what="second capture")
            second = t.events(Captured)[-1]
            assert len(second.ids) == len(ids) + 6 and list(second.ids[:len(ids)]) == ids
            assert second.ids == tuple(x.info.id for x in pane.view.tokens)
            assert t.app.busy is None
    asyncio.run(run())


def test_a_text_over_the_limit_is_refused_in_one_notification(bundled_model):
    async def run():
        async with running(make_app()) as t:
            limit = attention.max_tokens(30, 9)
            pane = await open_inspect(t, "The cat sat on the mat. " * 130)
            n = len(t.of(InspectPane.Tokenized)[-1].tokens)
            assert n > limit
            await t.pilot.press("ctrl+t")
            await t.wait_for(lambda: t.app.busy is None and any("over the limit" in x for x in t.notifications()),
                             what="the refusal")
            await t.pilot.pause()
            refusals = [x for x in t.notifications() if "over the limit" in x]
            assert len(refusals) == 1 and f"({limit:,} tokens for this model)" in refusals[0]
            assert not pane.attention_on and not t.events(Captured)
            assert "attention not captured" in str(pane.query_one("#inspect-status").render())
    asyncio.run(run())


def test_attention_on_a_server_is_one_notification(fake_server):
    async def run():
        async with running(make_app(server=fake_server.url("drop"))) as t:
            await t.ready()
            await t.pilot.press("f8")
            await t.wait_for(lambda: t.app.query(InspectPane), what="the inspect pane")
            pane = t.app.query_one(InspectPane)
            pane.query_one("#inspect-source").focus()
            await t.pilot.press("ctrl+t")
            await t.pilot.pause()
            said = [x for x in t.notifications() if "needs a local model" in x]
            assert len(said) == 1 and not pane.attention_on and t.app.busy is None
    asyncio.run(run())
