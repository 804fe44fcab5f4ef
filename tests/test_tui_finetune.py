"""The fine-tune screen through Pilot, on a tiny model: a run from the palette with its live curve, the
model listed and loaded; wrong settings, too little memory, Esc mid-training, and the app quitting."""

from __future__ import annotations

import asyncio
import os

from gptterm.finetune import events as ev
from gptterm.models import finetuned
from gptterm.tui import palette
from gptterm.tui.messages import ModelAdded, ModelLoaded
from gptterm.tui.widgets.finetune import FinetuneScreen
from gptterm.tui.widgets.models import ModelsPane
from tests.tui_helpers import make_app, running


def app_on(model):
    return make_app(model=str(model), ctx=256, threads=1)


async def open_screen(t) -> FinetuneScreen:
    await t.ready()
    entry = next(c for c in palette.commands(t.app) if c.title == "Fine-tune…")
    entry.callback()
    await t.wait_for(lambda: isinstance(t.app.screen, FinetuneScreen), what="the fine-tune screen")
    await t.pilot.pause()
    return t.app.screen


def fill(screen: FinetuneScreen, data, name: str, epochs: str = "2", lr: str = "1e-3") -> None:
    screen.query_one("#ft-data").value = str(data)
    screen.query_one("#ft-name").value = name
    screen.query_one("#ft-epochs").value = epochs
    screen.query_one("#ft-lr").value = lr


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def events(t, kind):
    return [m.event for m in t.of(FinetuneScreen.Progress) if isinstance(m.event, kind)]


def test_a_run_from_the_palette_draws_its_curve_and_the_model_is_listed_and_loaded(tiny256, text_file):
    async def run():
        async with running(app_on(tiny256), size=(80, 24)) as t:
            screen = await open_screen(t)
            assert "Fine-tune tiny256" in str(screen.query_one("#ft-title").render())
            fill(screen, text_file, "tiny-tuned")
            await t.pilot.press("ctrl+g")
            await t.wait_for(lambda: t.of(FinetuneScreen.Ended), what="the end of the run")
            await t.pilot.pause()
            ended = t.of(FinetuneScreen.Ended)[-1]
            assert ended.error is None and not ended.stopped and ended.info["name"] == "tiny-tuned"
            steps = events(t, ev.Step)
            assert steps and steps[-1].done == steps[-1].total and events(t, ev.Done)
            # prepare()'s memory estimate, and what it means for the chat meanwhile
            memory = str(screen.query_one("#ft-memory").render())
            assert "Training needs about" in memory and "the chat stays usable meanwhile" in memory
            # the curve, drawn from the events; the summary line; the engine was never borrowed
            assert "loss (cross-entropy" in str(screen.query_one("#ft-curve").content)
            assert "fine-tuned from tiny256 on notes.txt" in str(screen.query_one("#ft-progress-label").render())
            assert t.app.busy is None
            # registered: the Models pane lists it; ctrl+l loads it
            assert [m.name for m in t.of(ModelAdded)] == ["tiny-tuned"]
            assert "tiny-tuned" in [m.name for m in t.app.query_one(ModelsPane).local]
            await t.pilot.press("ctrl+l")
            path = str(finetuned.model_file("tiny-tuned"))
            await t.wait_for(lambda: any(m.engine.info.path == path for m in t.of(ModelLoaded)), what="loaded")
            assert not isinstance(t.app.screen, FinetuneScreen)
    asyncio.run(run())


def test_wrong_settings_too_little_memory_esc_mid_training_and_quitting(tiny256, text_file, monkeypatch):
    from gptterm.models import machine

    async def run():
        async with running(app_on(tiny256), size=(80, 24)) as t:
            screen = await open_screen(t)
            await t.pilot.press("ctrl+g")  # nothing filled in
            fill(screen, text_file, "x", epochs="two")
            await t.pilot.press("ctrl+g")
            fill(screen, text_file.with_name("missing.txt"), "x")
            await t.pilot.press("ctrl+g")
            await t.wait_for(lambda: len(t.of(FinetuneScreen.Ended)) == 1, what="the missing file")
            assert t.of(FinetuneScreen.Ended)[0].error
            real = machine.this_machine
            monkeypatch.setattr(machine, "this_machine", lambda: machine.Machine(ram_total=2**30,
                                                                                   ram_available=8 * 2**20))
            fill(screen, text_file, "x")
            await t.pilot.press("ctrl+g")
            await t.wait_for(lambda: len(t.of(FinetuneScreen.Ended)) == 2, what="the memory check")
            monkeypatch.setattr(machine, "this_machine", real)
            await t.pilot.pause()
            said = t.notifications()
            assert sum("Give the data file" in n for n in said) == 1
            assert sum("epochs: a whole number of passes, not 'two'" in n for n in said) == 1
            assert sum("missing.txt" in n for n in said) == 1
            assert sum("needs about" in n and "8.4 MB of memory is available" in n for n in said) == 1
            assert not any("Traceback" in n for n in said)

            # Esc after the first step: stopped after it, nothing saved
            fill(screen, text_file, "stopped", epochs="500")
            await t.pilot.press("ctrl+g")
            await t.wait_for(lambda: events(t, ev.Step), what="a step")
            await t.pilot.press("escape")
            await t.wait_for(lambda: len(t.of(FinetuneScreen.Ended)) == 3, what="the stop")
            ended = t.of(FinetuneScreen.Ended)[-1]
            assert ended.stopped and ended.error is None and ended.info is None
            assert isinstance(t.app.screen, FinetuneScreen)  # Esc stopped it; a second one closes the screen
            assert "stopped: nothing was saved" in str(screen.query_one("#ft-progress-label").render())
            assert list(finetuned.folder().iterdir()) == []
            await t.pilot.press("escape")
            assert not isinstance(t.app.screen, FinetuneScreen)

            # back on the screen (the palette), a long run, then F2: the panes, while it trains on
            screen = await open_screen(t)
            fill(screen, text_file, "left-running", epochs="500")
            await t.pilot.press("ctrl+g")
            await t.wait_for(lambda: len(events(t, ev.Step)) > 3 and screen.job is not None and screen.job.pid,
                             what="training")
            await t.pilot.press("f2")
            assert not isinstance(t.app.screen, FinetuneScreen) and screen.job is not None
            pid = screen.job.pid
        # the app quit: the training process is gone (reaped), and so is its work folder
        for _ in range(200):
            if not alive(pid) and list(finetuned.folder().iterdir()) == []:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the training process outlived the app: {list(finetuned.folder().iterdir())}")
    asyncio.run(run())
