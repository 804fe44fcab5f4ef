"""Snapshots of each screen at a fixed size (pytest-textual-snapshot).

Regenerate after an intended change with: python -m pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time

import pytest

from gptterm.history.store import HistoryStore
from gptterm.tui.app import create_app

SIZE = (110, 34)
FIXED = 1_767_355_200.0  # 2026-01-02 12:00 UTC: dates render the same on every run


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    store = HistoryStore()
    old = store.new_conversation()
    store.add_message(old, "user", "Tell me about owls")
    store.add_message(old, "assistant", "Owls are nocturnal birds of prey.")
    cid = store.new_conversation()
    store.add_message(cid, "user", "How do I reverse a string in Python?")
    store.add_message(cid, "assistant", "Use slicing:\n\n```python\ntext[::-1]\n```\n\nIt returns a new string.",
                      stats={"completion_tokens": 21, "tokens_per_s": 80.0, "ttft_s": 0.2, "finish_reason": "stop"})
    store._db.execute("UPDATE conversations SET created_at=?, updated_at=? + id", (FIXED, FIXED))
    store._db.execute("UPDATE messages SET created_at=?", (FIXED,))
    application = create_app(overrides={"ctx": 2048}, conversation_id=cid)
    yield application
    monkeypatch.delenv("TZ")
    time.tzset()


async def _ready(pilot) -> None:
    app = pilot.app
    while app.model_state == "loading":
        await pilot.pause(0.05)
    await app.workers.wait_for_complete()  # the context count, made in a worker, is on the status line
    for widget in app.query("TextArea, Input"):
        widget.cursor_blink = False  # a blinking cursor would make the picture depend on timing
    # No focus, so no cursor: whether the prompt's cursor cell was repainted
    # before the picture depended on timing.
    app.set_focus(None)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


def test_chat_screen(snap_compare, app):
    assert snap_compare(app, terminal_size=SIZE, run_before=_ready)


def test_settings_screen(snap_compare, app):
    async def before(pilot):
        await _ready(pilot)
        await pilot.press("f5")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_help_screen(snap_compare, app):
    async def before(pilot):
        await _ready(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_delete_confirmation(snap_compare, app):
    async def before(pilot):
        await _ready(pilot)
        pilot.app.query_one("#conversation-list").focus()
        await pilot.pause()
        await pilot.press("delete")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_inspect_screen(snap_compare, app):
    async def before(pilot):
        from gptterm.tui.widgets.inspect import InspectPane

        await _ready(pilot)
        await pilot.press("f8")
        while not pilot.app.query(InspectPane):
            await pilot.pause(0.05)
        pane = pilot.app.query_one(InspectPane)
        pane.query_one("#inspect-source").load_text("GPT models predict the next token: 你好 🙂")
        pane.tokenize_now()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        pilot.app.set_focus(None)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)
