"""Snapshots of every pane at 80×24, 120×40 and 200×60 (pytest-textual-snapshot), with content that
stresses the layout: a long model name, a long conversation title, the six-control option row.

Regenerate after an intended change with: python -m pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import shutil
import time

import pytest

from gptterm.history.store import HistoryStore
from gptterm.models.machine import Machine
from gptterm.tui.app import create_app

SIZES = [(80, 24), (120, 40), (200, 60)]
PANES = ["chat", "summarize", "translate", "settings", "models", "inspect", "ask"]
KEYS = {"chat": "f2", "summarize": "f3", "translate": "f4", "settings": "f5", "models": "f6", "inspect": "f8",
        "ask": "f9"}
FIXED = 1_767_355_200.0  # 2026-01-02 12:00 UTC: dates render the same on every run
LONG_NAME = "a-rather-long-model-name-to-stress-narrow-layouts-Instruct-Q4_K_M"


@pytest.fixture
def app(monkeypatch, tiny_model, tmp_path):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    # the catalog's "fits" column reads this machine's memory: the same machine everywhere
    monkeypatch.setattr("gptterm.models.machine.this_machine", lambda: Machine(16 * 1000**3, 12 * 1000**3))
    model = tmp_path / f"{LONG_NAME}.gguf"
    shutil.copy(tiny_model, model)
    store = HistoryStore()
    old = store.new_conversation()
    store.add_message(old, "user", "Tell me about owls, their habitats, what they eat, and why they hunt at night")
    store.add_message(old, "assistant", "Owls are nocturnal birds of prey.")
    cid = store.new_conversation()
    store.add_message(cid, "user", "How do I reverse a string in Python?")
    store.add_message(cid, "assistant", "Use slicing:\n\n```python\ntext[::-1]\n```\n\nIt returns a new string.",
                      stats={"completion_tokens": 21, "tokens_per_s": 80.0, "ttft_s": 0.2, "finish_reason": "stop"})
    store._db.execute("UPDATE conversations SET created_at=?, updated_at=? + id", (FIXED, FIXED))
    store._db.execute("UPDATE messages SET created_at=?", (FIXED,))
    application = create_app(model=str(model), overrides={"ctx": 256, "threads": 1}, conversation_id=cid)
    yield application
    monkeypatch.delenv("TZ")
    time.tzset()


async def _ready(pilot) -> None:
    app = pilot.app
    while app.model_state == "loading":
        await pilot.pause(0.05)
    await app.workers.wait_for_complete()  # the context count, made in a worker, is on the status line
    await _settle(pilot)


async def _settle(pilot) -> None:
    app = pilot.app
    await app.workers.wait_for_complete()
    for widget in app.query("TextArea, Input"):
        widget.cursor_blink = False  # a blinking cursor would make the picture depend on timing
    # No focus, so no cursor: whether the prompt's cursor cell was repainted
    # before the picture depended on timing.
    app.set_focus(None)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("pane", PANES)
def test_pane(snap_compare, app, pane, size):
    async def before(pilot):
        await _ready(pilot)
        await pilot.press(KEYS[pane])
        while not pilot.app.query(f"#{pane}-pane"):
            await pilot.pause(0.05)
        await pilot.pause()
        if pane == "inspect":
            from gptterm.tui.widgets.inspect import InspectPane

            inspect = pilot.app.query_one(InspectPane)
            inspect.query_one("#inspect-source").load_text("GPT models predict the next token.")
            inspect.tokenize_now()
        if pane == "models":
            while not pilot.app.query_one("#models-pane").remote_specs:
                await pilot.pause(0.05)
        await _settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=before)


def test_attention_view(snap_compare, app):
    async def before(pilot):
        from gptterm.tui.widgets.inspect import InspectPane

        await _ready(pilot)
        await pilot.press("f8")
        while not pilot.app.query(InspectPane):
            await pilot.pause(0.05)
        await pilot.pause()
        inspect = pilot.app.query_one(InspectPane)
        inspect.query_one("#inspect-source").load_text("GPT models predict the next token.")
        inspect.tokenize_now()
        while not inspect.view.tokens:
            await pilot.pause(0.05)
        inspect.action_toggle_attention()
        while not inspect.attention_on:
            await pilot.pause(0.05)
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_fine_tune_screen(snap_compare, app):
    async def before(pilot):
        await _ready(pilot)
        pilot.app.open_finetune()
        await pilot.pause()
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_help_screen(snap_compare, app):
    async def before(pilot):
        await _ready(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_conversation_list_over_the_chat_and_delete_confirmation(snap_compare, app):
    async def before(pilot):
        await _ready(pilot)
        await pilot.press("ctrl+b")  # 80 columns: the list opens in place of the chat
        await pilot.pause()
        pilot.app.query_one("#conversation-list").focus()
        await pilot.pause()
        await pilot.press("delete")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=before)
