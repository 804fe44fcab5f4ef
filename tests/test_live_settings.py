"""Each live setting through both faces — the REPL's /set and the TUI's Settings pane — has the same effect:
the model reloads or not, a refusal says the same thing, and saving writes the same config file. Both faces
go through the one session core (gptterm/session/core.py)."""

from __future__ import annotations

import asyncio
import tomllib

import pytest
from textual.widgets import Input

from gptterm.tui.messages import ModelLoaded
from gptterm.tui.widgets.settings import SettingsPane
from tests.conftest import run_cli
from tests.fixtures.tiny_gguf import make_tiny_lora
from tests.tui_helpers import make_app, running


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    d = tmp_path_factory.mktemp("live-lora")
    return {"good": make_tiny_lora(d / "tiny-lora.gguf"), "size": make_tiny_lora(d / "wrong-size.gguf", n_embd=32)}


def cases(adapters) -> list[tuple[str, str, str, bool]]:
    """(parameter, value typed, a line the face must show, whether the model reloads)."""
    return [
        ("temperature", "0.3", "", False),
        ("top_p", "5", "top_p must be in 0..1, not 5", False),
        ("ctx", "512", "", True),
        ("thinking", "on", "no thinking mode", False),
        ("lora", str(adapters["size"]), "does not fit tiny-test", False),
        ("lora", str(adapters["good"]), "", True),
        ("seed", "7", "", False),
        ("tools", "read_fiel", "unknown tool 'read_fiel'", False),
        ("tools", "read_file,list_dir", "", False),
        ("max_steps", "3", "", False),
        ("system", "be brief", "", False),
    ]


def saved(isolated_dirs) -> dict:
    return tomllib.loads((isolated_dirs["config"] / "config.toml").read_text())


def test_repl_and_settings_pane_have_the_same_effects(tiny_model, adapters, isolated_dirs):
    # the REPL
    script = "".join(f"/set {name} {value}\n" for name, value, _, _ in cases(adapters)) + "/save\n"
    proc = run_cli("chat", "-m", str(tiny_model), "--ctx", "1024", "--max-tokens", "4", "--threads", "1",
                   "--temperature", "0", input=script)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    repl_reloads = proc.stderr.count("reloading the model")
    for _, _, line, _ in cases(adapters):
        assert line in proc.stderr
    repl_saved = saved(isolated_dirs)
    (isolated_dirs["config"] / "config.toml").unlink()

    # the Settings pane
    async def run():
        async with running(make_app(model=str(tiny_model), ctx=1024, max_tokens=4, threads=1)) as t:
            await t.ready()
            await t.pilot.press("f5")
            await t.wait_for(lambda: t.app.query(SettingsPane), what="the settings pane")
            for name, value, line, reloads in cases(adapters):
                loads = len(t.of(ModelLoaded))
                field = t.app.query_one(f"#param-{name}", Input)
                field.focus()
                field.value = value
                await t.pilot.press("enter")
                if reloads:
                    await t.wait_for(lambda: len(t.of(ModelLoaded)) > loads and t.app.model_state == "ready",
                                     what=f"the reload for {name}")
                await t.pilot.pause()
                if line:  # a notification, or (a value the field cannot hold) the reason under the field
                    help_text = t.app.query_one(f"#field-{name} .param-help")
                    await t.wait_for(lambda: any(line in n for n in t.notifications())
                                     or line in str(help_text.render()), what=line)
            assert t.app.engine is not None and t.app.engine.info.name == "tiny + tiny-lora"
            assert t.app.engine.n_ctx == 512
            await t.pilot.press("ctrl+s")
            await t.pilot.pause()
            return len(t.of(ModelLoaded)) - 1  # the first load is the start

    tui_reloads = asyncio.run(run())
    assert repl_reloads == tui_reloads == sum(reloads for *_, reloads in cases(adapters))
    tui_saved = saved(isolated_dirs)
    assert tui_saved == repl_saved
    assert repl_saved["temperature"] == 0.3 and repl_saved["ctx"] == 512 and repl_saved["seed"] == 7
    assert repl_saved["lora"] == [str(adapters["good"])] and repl_saved["system"] == "be brief"
    assert "top_p" not in repl_saved  # refused: never applied
    assert repl_saved["tools"] == ["read_file", "list_dir"] and repl_saved["max_steps"] == 3
