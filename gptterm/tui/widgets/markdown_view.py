"""Markdown drawn by Rich into cached lines: one widget per message, however long.

Textual's Markdown widget mounts a widget per block (paragraph, list item,
code fence). A chat log of them made every layout pass walk hundreds of
widgets, and a streamed reply asked for one or two layout passes per update:
on a 2-core machine each update cost 30-200 ms of the CPU llama.cpp decodes
with. This widget renders with Rich, keeps the lines per width, and while a
reply streams re-renders only the block still being written and repaints only
the lines that changed; its height grows in steps, so most updates need no
layout pass at all.
"""

from __future__ import annotations

import re
from typing import Any

from rich.segment import Segment
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# While streaming, the height is the rendered lines rounded up to this step:
# text written into the reserved lines repaints without a layout pass.
RESERVE_STEP = 6
# A code fence still being written is highlighted in settled runs of this many
# lines plus the rest: highlighting all of it on every update cost 35 ms at 100
# lines and 110 ms at 300, more than the redraw budget allows.
CODE_STEP = 16

Lines = list[list[Segment]]


def _closes(line: str, fence: str) -> bool:
    match = FENCE.match(line)
    return (match is not None and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)
            and not line.strip()[len(match.group(1)):])


def split_blocks(text: str) -> list[str]:
    """Top-level blocks: runs of lines separated by blank lines outside code fences."""
    blocks: list[str] = []
    current: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            match = FENCE.match(line)
            if match:
                fence = match.group(1)
            elif not line.strip():
                if current:
                    blocks.append("\n".join(current))
                    current = []
                continue
        elif _closes(line, fence):
            fence = None
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def open_fence(block: str) -> tuple[str, list[str]] | None:
    """The info string and code lines of a block that is a code fence not closed yet."""
    first, *code = block.split("\n")
    match = FENCE.match(first)
    if match is None or any(_closes(line, match.group(1)) for line in code):
        return None
    return first[match.end():].strip(), code


def code_theme(dark: bool) -> str:
    """The Pygments style code blocks are drawn in, for a dark or a light app theme."""
    return "monokai" if dark else "default"


class MarkdownView(Widget):
    """Markdown text under an optional one-line title; ``append`` streams into it, ``update`` replaces it."""

    DEFAULT_CSS = """
    MarkdownView {
        height: auto;
    }
    """

    def __init__(self, text: str = "", *, title: str = "", streaming: bool = False, classes: str | None = None,
                 id: str | None = None) -> None:
        super().__init__(classes=classes, id=id)
        self.text = text
        #: Rich markup drawn bold above the text (a message's role and stats)
        self.title = title
        self.streaming = streaming
        # whole document per (width, dark) when settled; per block while streaming
        self._doc: tuple[Any, Lines] | None = None
        self._blocks: dict[tuple[str, int, bool], Lines] = {}
        self._stream_lines: tuple[Any, Lines] | None = None
        self._title_cache: tuple[tuple[str, int], Lines] | None = None
        self._height = 0

    # -- content ------------------------------------------------------------------

    def append(self, text: str) -> None:
        if text:
            self.text += text
            self._changed()

    def set_title(self, title: str) -> None:
        self.title = title
        self.update(self.text, streaming=self.streaming)

    def update(self, text: str, *, streaming: bool = False) -> None:
        self.text = text
        self.streaming = streaming
        self._doc = None
        self._blocks.clear()
        self._stream_lines = None
        self._changed(full=True)

    def _changed(self, full: bool = False) -> None:
        width = self.size.width
        if not width or not self.is_mounted:
            self.refresh(layout=True)
            return
        old = self._stream_lines[1] if self._stream_lines and not full else None
        lines = self._lines(width)
        height = self._content_height(len(lines))
        if full or height != self._height:
            self.refresh(layout=True)
            return
        first = 0
        if old is not None:
            # repaint from the first line that differs
            first = next((i for i, (a, b) in enumerate(zip(old, lines)) if a != b), min(len(old), len(lines)))
        self.refresh(Region(0, first, width, max(1, self._height - first)))

    # -- rendering ----------------------------------------------------------------

    def _draw(self, renderable: Any, width: int) -> Lines:
        options = self.app.console_options.update(width=width, highlight=False)
        return self.app.console.render_lines(renderable, options, pad=False, new_lines=False)

    def _render_markdown(self, text: str, width: int, dark: bool) -> Lines:
        # imported with the first message: markdown-it costs the first frame ~40 ms
        from rich.markdown import Markdown as RichMarkdown

        return self._draw(RichMarkdown(text, code_theme=code_theme(dark), hyperlinks=True), width)

    def _title_lines(self, width: int) -> Lines:
        if not self.title:
            return []
        key = (self.title, width)
        if self._title_cache is None or self._title_cache[0] != key:
            title = Text.from_markup(self.title, style="bold", overflow="ellipsis")
            title.no_wrap = True
            self._title_cache = (key, self._draw(title, width))
        return list(self._title_cache[1])

    def _lines(self, width: int) -> Lines:
        dark = self.app.current_theme.dark
        if not self.streaming:
            if self._doc is None or self._doc[0] != (width, dark):
                body = self._render_markdown(self.text, width, dark) if self.text.strip() else []
                self._doc = ((width, dark), self._title_lines(width) + body)
            return self._doc[1]
        key = (len(self.text), width, dark)
        if self._stream_lines is not None and self._stream_lines[0] == key:
            return self._stream_lines[1]
        blocks = split_blocks(self.text)
        lines: Lines = self._title_lines(width)
        wanted: set[tuple[str, int, bool]] = set()
        for i, block in enumerate(blocks):
            if i:
                lines.append([])
            cache_key = (block, width, dark)
            last = i == len(blocks) - 1  # the last block may still grow
            rendered = self._blocks.get(cache_key)
            if rendered is None and last:
                rendered = self._render_open_code(block, width, dark, wanted)
            if rendered is None:
                rendered = self._render_markdown(block, width, dark)
                if not last:
                    self._blocks[cache_key] = rendered
            wanted.add(cache_key)
            lines.extend(rendered)
        for stale in set(self._blocks) - wanted:
            del self._blocks[stale]
        self._stream_lines = (key, lines)
        return lines

    def _render_open_code(self, block: str, width: int, dark: bool,
                          wanted: set[tuple[str, int, bool]]) -> Lines | None:
        """A long code fence not closed yet: settled runs of lines drawn once each, the rest on each update.

        Drawn as Rich's Markdown draws a code block (Syntax, padding 1), cut into
        runs that carry only their share of the padding; the finished message
        is rendered whole (a string spanning two runs is coloured right then)."""
        fence = open_fence(block)
        if fence is None or len(fence[1]) <= CODE_STEP:
            return None
        info, code = fence
        from rich.syntax import Syntax  # pygments (~10 ms): only a long code block pays for it

        lexer = info.partition(" ")[0] or "text"

        def draw(text: str, padding: tuple[int, int, int, int]) -> Lines:
            return self._draw(Syntax(text, lexer, theme=code_theme(dark), word_wrap=True, padding=padding), width)

        lines: Lines = []
        settled = (len(code) - 1) // CODE_STEP * CODE_STEP  # the last line may still grow
        for start in range(0, settled, CODE_STEP):
            run = "\n".join(code[start:start + CODE_STEP])
            key = (f"```{lexer} {start}\n{run}", width, dark)
            wanted.add(key)
            drawn = self._blocks.get(key)
            if drawn is None:
                drawn = self._blocks[key] = draw(run, (1 if start == 0 else 0, 1, 0, 1))
            lines += drawn
        return lines + draw("\n".join(code[settled:]).rstrip(), (0, 1, 1, 1))

    def _content_height(self, lines: int) -> int:
        if not self.streaming:
            return lines
        return (lines // RESERVE_STEP + 1) * RESERVE_STEP

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return container.width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._height = self._content_height(len(self._lines(width)))
        return self._height

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        lines = self._lines(width) if width else []
        if y >= len(lines):
            return Strip.blank(width, self.rich_style)
        return Strip(lines[y]).apply_style(self.rich_style)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.refresh()
