"""The chat's Markdown widget: blocks, streaming in steps, the same picture streamed or not."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from gptterm.tui.widgets.markdown_view import RESERVE_STEP, MarkdownView, open_fence, split_blocks

DOC = ("# Owls\n\nOwls are **nocturnal** birds.\n\n- they hunt\n- they hoot\n\n"
       "```python\nx = 1\n\n\ny = 2\n```\n\nThe end.")


def test_blocks_split_on_blank_lines_but_not_inside_code_fences():
    assert split_blocks(DOC) == ["# Owls", "Owls are **nocturnal** birds.", "- they hunt\n- they hoot",
                                 "```python\nx = 1\n\n\ny = 2\n```", "The end."]
    # an unclosed fence (a reply still streaming) keeps its blank lines
    assert split_blocks("text\n\n~~~\na\n\nb") == ["text", "~~~\na\n\nb"]
    # a shorter or different fence does not close it
    assert split_blocks("````\n```\n\nstill code\n````\n\nafter") == ["````\n```\n\nstill code\n````", "after"]
    assert split_blocks("\n\n\n") == []


def test_open_fence_is_told_from_a_closed_one():
    assert open_fence("```python\nx = 1\n\ny = 2") == ("python", ["x = 1", "", "y = 2"])
    assert open_fence("```python\nx = 1\n```") is None
    assert open_fence("~~~~\nx\n~~~") == ("", ["x", "~~~"])  # a shorter fence does not close it
    assert open_fence("text\n```") is None


class ViewApp(App[None]):
    def __init__(self, view: MarkdownView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        yield self.view


def without_trailing_blanks(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


async def stream(pilot, view: MarkdownView, text: str, piece: int):
    """Append ``text`` in pieces, yielding the end of each piece once it is drawn."""
    for i in range(0, len(text), piece):
        view.append(text[i:i + piece])
        await pilot.pause()
        yield i + piece


def screen_text(view: MarkdownView) -> list[str]:
    return [view.render_line(y).text.rstrip() for y in range(view.size.height)]


def test_streamed_text_is_drawn_as_it_comes_and_matches_the_finished_picture():
    asyncio.run(_streamed())


async def _streamed():
    streamed = MarkdownView(streaming=True, title="Assistant")
    app = ViewApp(streamed)
    async with app.run_test(size=(60, 40)) as pilot:
        heights = []
        async for end in stream(pilot, streamed, DOC, 7):
            heights.append(streamed.size.height)
            lines = screen_text(streamed)
            assert lines[0] == "Assistant"
            written = DOC[:end]
            last_word = written.replace("*", "").split()[-1].strip("`#-")
            if last_word and not written.rsplit("\n", 1)[-1].startswith("```"):  # a fence's info string is not drawn
                assert any(last_word in line for line in lines), (last_word, lines)
        # the height grows in steps, leaving room for the next lines: most pieces need no new layout
        assert all(h % RESERVE_STEP == 0 for h in heights)
        assert len(set(heights)) < len(heights) / 2
        streaming_picture = [line for line in screen_text(streamed) if line]
        streamed.update(DOC)  # the reply is finished
        await pilot.pause()
        final = screen_text(streamed)
        assert final[-1], "no reserved lines once finished"
        assert [line for line in final if line] == streaming_picture
        for text in ("x = 1", "y = 2", "The end."):
            assert any(text in line for line in final), text


def test_title_change_and_resize_redraw():
    asyncio.run(_title_and_resize())


async def _title_and_resize():
    view = MarkdownView("A paragraph long enough to wrap when the terminal is narrow enough for it.",
                        title="You")
    app = ViewApp(view)
    async with app.run_test(size=(100, 10)) as pilot:
        await pilot.pause()
        assert view.size.height == 2
        view.set_title("You  (edited)")
        await pilot.pause()
        assert screen_text(view)[0] == "You  (edited)"
        await pilot.resize_terminal(30, 10)
        await pilot.pause()
        assert view.size.height > 2
        assert " ".join(screen_text(view)[1:]).split() == view.text.split()


def test_a_long_code_fence_streams_as_it_will_look_finished():
    asyncio.run(_long_code())


async def _long_code():
    code = "```python\n" + "\n".join(f"def f{i}(x):\n    return x * {i}  # {i}" for i in range(40)) + "\n```\n\nDone."
    view = MarkdownView(streaming=True)
    app = ViewApp(view)
    async with app.run_test(size=(70, 200)) as pilot:
        pictures = [without_trailing_blanks(screen_text(view)) async for _ in stream(pilot, view, code, 97)]
        view.update(code)
        await pilot.pause()
        final = screen_text(view)
        # every picture while streaming is the top of the finished one, but for
        # its last two lines (the line being written, and the code block's padding)
        for picture in pictures[:-1]:
            assert picture[:-2] == final[: len(picture) - 2], picture
        assert "return x * 39" in " ".join(final) and final[-1].strip() == "Done."
