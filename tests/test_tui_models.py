"""The TUI's models pane through Pilot, against the local Hub server, on tiny models."""

from __future__ import annotations

import asyncio
import time

from textual.widgets import DataTable, Input, ProgressBar

from gptterm.models import store
from gptterm.settings import load_config
from gptterm.tui.app import create_app
from gptterm.tui.screens import ConfirmScreen
from gptterm.tui.widgets.chat import ChatLog
from gptterm.tui.widgets.chat_pane import ChatPane
from gptterm.tui.widgets.models import ModelsPane
from tests.conftest import run_cli
from tests.test_cli import ok
from gptterm.tui.messages import ModelLoaded, SwitchBackend
from tests.tui_helpers import SIZE, Recorder, wait_for

CHAT = "test/Tiny-Chat-GGUF"


def make_app(model: str):
    # one thread: the tiny model needs no more, and other tests may share the cores
    return create_app(model=model, overrides={"temperature": 0.0, "max_tokens": 8, "ctx": 256, "threads": 1})


async def open_pane(pilot, app) -> ModelsPane:
    await wait_for(pilot, lambda: app.model_state != "loading", what="model load")
    await pilot.press("f6")
    pane = app.query_one(ModelsPane)
    await wait_for(pilot, lambda: pane.local and pane.remote_specs, what="the pane filled")
    return pane


def cell(table: DataTable, row: int, label: str) -> object:
    """The cell of ``row`` under the column ``label`` (a narrow screen leaves some columns out)."""
    labels = [str(c.label) for c in table.columns.values()]
    return table.get_row_at(row)[labels.index(label)]


def local_rows(pane) -> dict[str, list]:
    table = pane.query_one("#local-models", DataTable)
    return {row[1]: row for row in (table.get_row_at(i) for i in range(table.row_count))}


async def select(pilot, pane, table_id: str, row: int) -> None:
    table = pane.query_one(table_id, DataTable)
    table.focus()
    table.move_cursor(row=row)
    await pilot.pause()


def test_pane_lists_local_models_and_catalog_with_marks(hub, tiny_model):
    q4 = ok(run_cli("models", "pull", CHAT)).stdout.strip()
    ok(run_cli("models", "import", str(tiny_model)))
    ok(run_cli("models", "default", "tiny"))

    async def run():
        app = make_app(q4)
        async with app.run_test(size=SIZE) as pilot:
            pane = await open_pane(pilot, app)
            rows = local_rows(pane)
            assert set(rows) == {"bundled", q4, "tiny"}
            assert rows[q4][0] == "▶ " and rows["tiny"][0] == " *" and rows["bundled"][0] == "  "
            assert rows[q4][2:6] == ["model", "Q4_K_M", "478 kB", "hub"]
            assert pane.remote_specs[0] == "smollm2-135m" and len(pane.remote_specs) >= 10
            remote = pane.query_one("#remote-models", DataTable)
            assert cell(remote, 0, "fits") in ("yes", "tight", "no")  # fits this machine
    asyncio.run(run())


def test_pull_from_the_catalog_with_progress_while_the_chat_goes_on(hub, tiny_model, isolated_dirs):
    async def run():
        app = make_app(str(tiny_model))
        recorder = Recorder()
        async with app.run_test(size=SIZE, message_hook=recorder) as pilot:
            pane = await open_pane(pilot, app)
            hub.pause_at = 200_000
            await select(pilot, pane, "#remote-models", 0)  # smollm2-135m
            await pilot.press("p")
            bar = pane.query_one("#download-progress", ProgressBar)
            # (progress reports are spaced 0.1 s apart: the bar may stop short of the pause point)
            await wait_for(pilot, lambda: hub.paused.is_set() and bar.progress > 0, what="progress")
            assert pane.query_one("#download-row").display and bar.total > 400_000
            assert " kB of 478 kB" in str(pane.query_one("#download-label").render())

            # the download waits on the server; the chat is usable meanwhile
            await pilot.press("f2")
            prompt = app.query_one("#prompt")
            prompt.focus()
            prompt.text = "hello"
            await pilot.press("enter")
            await wait_for(pilot, lambda: recorder.of(ChatPane.ReplyFinished) and app.busy is None,
                           what="the reply")
            assert app.query_one(ChatLog).items[-1].role == "assistant"
            assert pane.downloading == "smollm2-135m"

            hub.gate.set()
            await wait_for(pilot, lambda: pane.downloading is None, what="the download to finish")
            await pilot.press("f6")
            assert "smollm2-135m" in local_rows(pane)
            assert cell(pane.query_one("#remote-models", DataTable), 0, "local") == "yes"  # local now
            assert not pane.query_one("#download-row").display
    asyncio.run(run())


def test_search_list_files_pull_load_default_and_delete(hub, tiny_model, isolated_dirs):
    async def run():
        app = make_app(str(tiny_model))
        recorder = Recorder()
        async with app.run_test(size=SIZE, message_hook=recorder) as pilot:
            pane = await open_pane(pilot, app)
            await pilot.press("slash")
            search = pane.query_one("#models-search", Input)
            assert search.has_focus
            search.value = "tiny"
            await pilot.press("enter")
            await wait_for(pilot, lambda: pane.remote_kind == "search", what="search results")
            assert pane.remote_specs[0] == CHAT
            await pilot.press("enter")  # the first repo: its files
            await wait_for(pilot, lambda: pane.remote_kind == "files", what="the repo's files")
            assert pane.remote_specs == [f"{CHAT}/tiny-chat-Q3_K_M.gguf", f"{CHAT}/tiny-chat-Q4_K_M.gguf",
                                         f"{CHAT}/tiny-chat-Q8_0.gguf"]
            await select(pilot, pane, "#remote-models", 2)
            await pilot.press("p")
            await wait_for(pilot, lambda: f"{CHAT}:Q8_0" in local_rows(pane), what="the pulled model")
            await select(pilot, pane, "#remote-models", 1)
            await pilot.press("enter")  # Enter pulls too
            await wait_for(pilot, lambda: f"{CHAT}:Q4_K_M" in local_rows(pane), what="the second model")

            names = [m.name for m in pane.local]
            await select(pilot, pane, "#local-models", names.index(f"{CHAT}:Q8_0"))
            await pilot.press("l")
            await wait_for(pilot, lambda: len(recorder.of(ModelLoaded)) == 2, what="the reload")
            assert recorder.of(SwitchBackend)[-1].backend.local_model == f"{CHAT}:Q8_0"
            assert app.engine is recorder.of(ModelLoaded)[-1].engine
            assert local_rows(pane)[f"{CHAT}:Q8_0"][0] == "▶ "
            await pilot.press("d")
            assert load_config().model == f"{CHAT}:Q8_0"
            assert local_rows(pane)[f"{CHAT}:Q8_0"][0] == "▶*"

            # the loaded model is refused, after a confirmation
            await pilot.press("delete")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_for(pilot, lambda: any("in use" in n.message for n in app._notifications), what="refusal")
            assert f"{CHAT}:Q8_0" in local_rows(pane)

            names = [m.name for m in pane.local]
            await select(pilot, pane, "#local-models", names.index(f"{CHAT}:Q4_K_M"))
            await pilot.press("delete")
            await pilot.press("escape")  # cancel keeps it
            assert f"{CHAT}:Q4_K_M" in local_rows(pane)
            await pilot.press("delete")
            await pilot.press("y")
            await wait_for(pilot, lambda: f"{CHAT}:Q4_K_M" not in local_rows(pane), what="the deletion")
            assert any("freed 478 kB" in n.message for n in app._notifications)
            assert [m.name for m in store.list_models() if m.source == "hub"] == [f"{CHAT}:Q8_0"]
    asyncio.run(run())


def test_cancel_keeps_the_part_and_hub_failures_are_notified(hub, tiny_model, isolated_dirs, monkeypatch):
    async def run():
        app = make_app(str(tiny_model))
        async with app.run_test(size=SIZE) as pilot:
            pane = await open_pane(pilot, app)
            hub.pause_at = 100_000
            await select(pilot, pane, "#remote-models", 0)
            await pilot.press("p")
            bar = pane.query_one("#download-progress", ProgressBar)
            await wait_for(pilot, lambda: hub.paused.is_set() and bar.progress > 0, what="progress")
            await pilot.press("c")
            hub.gate.set()  # the worker sees the cancel with the next bytes
            await wait_for(pilot, lambda: pane.downloading is None, what="the cancel")
            assert any("download stopped" in n.message and "resume" in n.message for n in app._notifications)
            assert len(store.incomplete_downloads()) == 1 and "smollm2-135m" not in local_rows(pane)

            monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
            await pilot.press("slash")
            pane.query_one("#models-search", Input).value = "qwen"
            await pilot.press("enter")
            await wait_for(pilot, lambda: any("cannot reach the Hub" in n.message for n in app._notifications),
                           what="the failure notice")
            assert app.is_running and app.engine is not None

            # quitting during a download stops it too (the part stays for later)
            monkeypatch.setenv("HF_ENDPOINT", hub.url)
            hub.gate.clear()
            hub.paused.clear()
            hub.pause_at = 300_000
            await select(pilot, pane, "#remote-models", 0)
            await pilot.press("p")
            await wait_for(pilot, lambda: hub.paused.is_set(), what="the second download")
            worker = pane.download_worker
        assert worker.cancelled_event.is_set()
        hub.gate.set()
        await asyncio.to_thread(wait_until_done, worker)
        assert [p.stat().st_size for p in store.incomplete_downloads()] == [300_000]
        assert not [m for m in store.list_models() if m.name == "smollm2-135m"]
    asyncio.run(run())


def wait_until_done(worker, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not worker.is_finished:
        assert time.monotonic() < deadline, "the download worker did not stop"
        time.sleep(0.01)


def test_adapters_are_marked_and_l_adds_one_to_the_loaded_model(tiny_model, tmp_path):
    from tests.fixtures.tiny_gguf import make_tiny_lora

    ok(run_cli("models", "import", str(make_tiny_lora(tmp_path / "style.gguf")), "--name", "style"))
    ok(run_cli("models", "import", str(make_tiny_lora(tmp_path / "big.gguf", n_embd=32)), "--name", "big"))

    async def run():
        app = make_app(str(tiny_model))
        async with app.run_test(size=SIZE) as pilot:
            pane = await open_pane(pilot, app)
            rows = local_rows(pane)
            assert rows["style"][2] == "LoRA for llama" and rows["bundled"][2] == "model"
            names = [m.name for m in pane.local]
            # one of another size: refused in one notification, the model stays as it was
            await select(pilot, pane, "#local-models", names.index("big"))
            await pilot.press("l")
            await wait_for(pilot, lambda: any("does not fit" in n.message for n in app._notifications),
                           what="the refusal")
            assert app.engine.info.name == "tiny" and app.params.values["lora"] == ()
            await select(pilot, pane, "#local-models", names.index("style"))
            await pilot.press("l")
            await wait_for(pilot, lambda: app.engine is not None and app.engine.info.name == "tiny + style",
                           what="the model reloaded with the adapter")
            assert app.params.values["lora"] == ("style",)
            await wait_for(pilot, lambda: local_rows(pane)["style"][0].startswith("▶"), what="the adapter marked")
            await pilot.press("l")  # twice: said, not applied again
            await wait_for(pilot, lambda: any("already applied" in n.message for n in app._notifications),
                           what="already applied")
    asyncio.run(run())

