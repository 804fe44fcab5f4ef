"""The template picker in the chat (F11 and the palette), its variables form, a template's schema checked in the
TUI, and the lora field of the Settings pane — through Pilot on the tiny model."""

from __future__ import annotations

import asyncio

from textual.widgets import Input, OptionList

from gptterm.tui.widgets.chat import PromptInput
from gptterm.tui.widgets.templates import TemplatePicker
from tests.tui_helpers import make_app, running, stored_messages


async def pick(t, name: str) -> TemplatePicker:
    await t.pilot.press("f11")
    await t.wait_for(lambda: isinstance(t.app.screen, TemplatePicker), what="the template picker")
    picker = t.app.screen
    options = picker.query_one("#template-list", OptionList)
    options.highlighted = next(i for i in range(options.option_count) if options.get_option_at_index(i).id == name)
    await t.pilot.press("enter")
    await t.pilot.pause()
    return picker


def test_pick_a_template_fill_its_variables_and_send(tiny_model, isolated_dirs):
    folder = isolated_dirs["config"] / "templates"
    folder.mkdir(parents=True)
    (folder / "person.toml").write_text('description = "a person as JSON"\nuser = "Who: {input}"\n'
                                        'schema = "name, age int"\n[params]\nmax_tokens = 3\n')
    (folder / "broken.toml").write_text('user = "{nope}"\n')

    async def run():
        async with running(make_app(model=str(tiny_model), ctx=1024, threads=1, max_tokens=8)) as t:
            await t.ready()
            picker = await pick(t, "title")
            # a user template that cannot be read is one line in the picker, naming its file
            problems = [str(label.render()) for label in picker.query(".problem")]
            assert any(str(folder / "broken.toml") in p for p in problems)
            words = picker.query_one("#var-words", Input)
            assert words.value == "8"  # the default, to change
            words.value = "3"
            await t.pilot.press("enter")
            await t.wait_for(lambda: not isinstance(t.app.screen, TemplatePicker), what="the picker to close")
            assert t.app.query_one(PromptInput).border_title == "template title"
            assert any("Template title: your next message is its input" in n for n in t.notifications())
            await t.reply("The printing press made books cheap.")
            assert stored_messages()[0].content == ("Write a title of at most 3 words for this text.\n\n"
                                                    "The printing press made books cheap.")
            assert not t.app.query_one(PromptInput).border_title
            # the next message is plain again
            await t.reply("and now?")
            assert stored_messages()[2].content == "and now?"

            # a template with a schema: the reply is checked; one cut by max_tokens is said, and kept
            await pick(t, "person")
            assert not isinstance(t.app.screen, TemplatePicker)  # no variables: used at once
            await t.reply("Ann, 30")
            assert any("not JSON" in n and "max_tokens (3)" in n and "(the reply is kept)" in n
                       for n in t.notifications())
            assert stored_messages()[-1].role == "assistant" and stored_messages()[-1].content.startswith("{")

            # Esc closes the picker and changes nothing
            await t.pilot.press("f11")
            await t.wait_for(lambda: isinstance(t.app.screen, TemplatePicker), what="the template picker")
            await t.pilot.press("escape")
            await t.pilot.pause()
            assert not isinstance(t.app.screen, TemplatePicker) and not t.app.query_one(PromptInput).border_title

    asyncio.run(run())


def test_the_palette_offers_templates_and_settings_has_lora(tiny_model):
    async def run():
        async with running(make_app(model=str(tiny_model), ctx=1024, threads=1)) as t:
            await t.ready()
            titles = [c.title for c in t.app.get_system_commands(t.app.screen)]
            assert "Template (f11)" in titles
            await t.pilot.press("f5")
            await t.wait_for(lambda: t.app.query("#param-lora"), what="the settings pane")
            assert t.app.query_one("#param-lora", Input).value == ""

    asyncio.run(run())
