"""The Inspect pane: a text's tokens, what the model predicts after it, how likely each token was.

Type or paste a text: its tokens appear coloured with their ids (as the
chat template renders it, with "chat message" chosen). Generate continues
the text and shades each new token by its probability; Score shades the
text's own tokens and gives its perplexity and most surprising tokens. Move
onto a token (←/→, or click it) to see the most likely alternatives as a
bar chart; choosing one continues the text from there with it instead (a
branch: the rest is generated again). Tokenizing, scoring and generating
run in thread workers on the app's engine, local or remote.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from gptterm import probability
from gptterm.types import Alternative, TokenInfo
from gptterm.errors import GpttermError, ParamError
from gptterm.tui.actions import INSPECT_ACTIONS
from gptterm.tui.host import host
from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.types import Reply
    from gptterm.tasks.perplexity import Result

TOP = 8  # alternatives asked for each token
SPANS = ("on #3b4252", "on #434c5e")  # alternating pieces of a text without probabilities
UPDATE_S = 0.15  # streamed tokens reach the screen at most this often
TOKENIZE_DELAY_S = 0.3  # after the last key, before the text is tokenized again
SCORE_WHOLE_MAX = 2048  # texts up to this many tokens are scored token by token (shaded, with alternatives)
MODES = (("plain text", "text"), ("as a chat message", "chat"))


@dataclass
class Shown:
    """One token of the view: what it is, how likely it was (None: not known), what else was likely."""

    info: TokenInfo
    logprob: float | None = None
    top: tuple[Alternative, ...] = ()
    generated: bool = False


@dataclass
class View:
    tokens: list[Shown] = field(default_factory=list)

    def text_before(self, index: int) -> str:
        """The text the tokens before ``index`` stand for (control tokens are not text)."""
        pieces = b"".join(t.info.piece for t in self.tokens[:index] if not t.info.special)
        return pieces.decode("utf-8", "replace")


def _style(t: Shown, index: int, selected: bool) -> Style:
    if t.info.special:
        style = Style.parse("bold black on #ebcb8b")
    elif t.logprob is None:
        style = Style.parse(SPANS[index % len(SPANS)])
    else:
        colour = probability.colour(math.exp(t.logprob))
        style = Style.parse(f"black on color({colour})" if colour is not None else "on #2e5d3a")
    if selected:
        style += Style(reverse=True, underline=True)
    return style + Style(meta={"@click": f"select_token({index})"})


class TokenView(Static, can_focus=True):
    """The tokens as coloured spans; ←/→ move the selection, a click selects."""

    BINDINGS = [("left", "step(-1)", "Previous token"), ("right", "step(1)", "Next token"),
                ("home", "step(-1000000)", "First"), ("end", "step(1000000)", "Last")]

    selected: reactive[int] = reactive(-1, init=False)

    @dataclass
    class Selected(Message):
        index: int

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.view = View()

    def show(self, view: View, selected: int | None = None) -> None:
        self.view = view
        if selected is not None:
            self.set_reactive(TokenView.selected, selected)
        self.selected = min(self.selected, len(view.tokens) - 1)
        self._draw()

    def _draw(self) -> None:
        text = Text()
        for i, t in enumerate(self.view.tokens):
            text.append(t.info.text.replace("\n", "⏎\n"), style=_style(t, i, i == self.selected))
        self.update(text if self.view.tokens else Text("(no tokens yet)", style="dim"))

    def watch_selected(self, index: int) -> None:
        self._draw()
        if 0 <= index < len(self.view.tokens):
            self.post_message(self.Selected(index))

    def action_step(self, step: int) -> None:
        if self.view.tokens:
            start = self.selected if self.selected >= 0 else (len(self.view.tokens) if step < 0 else -1)
            self.selected = max(0, min(len(self.view.tokens) - 1, start + step))

    def action_select_token(self, index: int) -> None:
        self.focus()
        self.selected = index


class InspectPane(Vertical):
    VERB = "inspecting"
    BINDINGS = [a.binding() for a in INSPECT_ACTIONS]

    @dataclass
    class Tokenized(Message):
        run: int
        tokens: list[TokenInfo]

    @dataclass
    class Streamed(Message):
        run: int
        reply: Reply
        done: bool
        error: str | None = None
        #: the prompt's own tokens, when the view should show them (not on a branch)
        prompt: list[TokenInfo] | None = None

    @dataclass
    class Scored(Message):
        run: int
        tokens: list[Shown]
        result: Result | None
        error: str | None = None

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.run = 0  # the latest request: older answers are dropped
        self.reply: Reply | None = None
        self.engine: Engine | None = None
        self.view = View()
        self._base: list[Shown] = []  # the view before the generation in flight

    def compose(self) -> ComposeResult:
        with Horizontal(classes="task-options"):
            yield Select(MODES, value="text", allow_blank=False, id="inspect-mode")
            yield Input("40", placeholder="tokens", id="inspect-max", classes="narrow",
                        tooltip="how many tokens Generate adds")
            yield Button("Generate (ctrl+g)", id="inspect-generate", variant="primary")
            yield Button("Score (ctrl+o)", id="inspect-score")
        yield TextArea(id="inspect-source", classes="source", soft_wrap=True)
        with VerticalScroll(id="inspect-tokens-scroll"):
            yield TokenView(id="inspect-tokens")
        with Horizontal(id="inspect-detail-row"):
            yield OptionList(id="inspect-alternatives")
            yield Static("", id="inspect-detail")
        yield Label("Type or paste a text · ←/→ on the tokens · Enter on an alternative continues from it",
                    classes="progress-label", id="inspect-status")

    def on_mount(self) -> None:
        self.watch(self.app, "engine", self._engine_changed)

    def focus_default(self) -> None:
        self.query_one("#inspect-source", TextArea).focus()

    def _engine_changed(self, engine: Engine | None) -> None:
        self.engine = engine
        if engine is not None and self.source.strip():
            self.tokenize_now()

    @property
    def source(self) -> str:
        return self.query_one("#inspect-source", TextArea).text

    def _status(self, text: str) -> None:
        self.query_one("#inspect-status", Label).update(text)

    # -- tokens of the text ------------------------------------------------------------

    @on(TextArea.Changed, "#inspect-source")
    def _source_changed(self) -> None:
        self.run += 1
        self.set_timer(TOKENIZE_DELAY_S, self._tokenize_if_current(self.run))

    @on(Select.Changed, "#inspect-mode")
    def _mode_changed(self) -> None:
        self.tokenize_now()

    def _tokenize_if_current(self, run: int) -> Callable[[], None]:
        return lambda: self.tokenize_now() if run == self.run else None

    def tokenize_now(self) -> None:
        if self.engine is None:
            return
        self.run += 1
        chat = self.query_one("#inspect-mode", Select).value == "chat"
        self._tokenize(self.engine, self.source, chat, self.run)

    @work(thread=True, exclusive=True, group="inspect-tokens", exit_on_error=False)
    def _tokenize(self, engine: Engine, text: str, chat: bool, run: int) -> None:
        try:
            if not text:
                tokens: list[int] = []
            elif chat:
                tokens = engine.chat_tokens([{"role": "user", "content": text}])
            else:
                tokens = engine.completion_tokens(text)
            self.post_message(self.Tokenized(run, engine.token_info(tokens)))
        except GpttermError as err:
            self.post_message(self.Scored(run, [], None, str(err)))

    def on_inspect_pane_tokenized(self, message: Tokenized) -> None:
        if message.run != self.run or self.reply is not None:
            return
        self._show(View([Shown(t) for t in message.tokens]))
        specials = sum(t.special for t in message.tokens)
        self._status(plural(len(message.tokens), "token") + (f", {specials} special" if specials else "")
                     + " · ctrl+g generates a continuation · ctrl+o scores the text")

    def _show(self, view: View, selected: int | None = None) -> None:
        self.view = view
        self.query_one(TokenView).show(view, selected)

    # -- generating ----------------------------------------------------------------

    def _max_tokens(self) -> int | None:
        from gptterm.settings import BY_NAME

        try:
            return int(BY_NAME["max_tokens"].parse(self.query_one("#inspect-max", Input).value or "40"))
        except ParamError as err:
            self.notify(str(err), severity="error")
            return None

    def start(self) -> None:
        """ctrl+g (the app's run key): generate."""
        self.action_generate()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "inspect-generate":
            self.action_generate()
        elif event.button.id == "inspect-score":
            self.action_score()

    def action_generate(self) -> None:
        if not self.source.strip():
            self.notify("Type or paste a text to continue first", severity="warning")
            return
        self._generate_from(self.source, None)

    def _generate_from(self, prompt: str, kept: list[Shown] | None) -> None:
        """Continue ``prompt`` (always as plain text); the view keeps ``kept`` before the new tokens,
        or shows the prompt's own tokens when None."""
        n = self._max_tokens()
        if n is None:
            return
        lease = host(self).acquire_engine(self, self.VERB)
        if lease is None:
            return
        params = lease.params.replace(max_tokens=n, logprobs=TOP)
        try:
            reply = lease.engine.complete(prompt, params)
        except GpttermError as err:
            host(self).release_engine(self)
            self.notify(str(err), severity="error")
            return
        self.run += 1
        self.reply = reply
        self._base = list(kept or [])
        self._status("generating… (Esc stops)")
        self._stream(lease.engine, reply, prompt if kept is None else None, self.run)

    @work(thread=True, group="inspect-generate", exit_on_error=False)
    def _stream(self, engine: Engine, reply: Reply, prompt: str | None, run: int) -> None:
        last = time.perf_counter()
        error = None
        try:
            if prompt is not None:
                shown = engine.token_info(engine.completion_tokens(prompt))
                self.post_message(self.Streamed(run, reply, done=False, prompt=shown))
            for _ in reply:
                if time.perf_counter() - last >= UPDATE_S:
                    self.post_message(self.Streamed(run, reply, done=False))
                    last = time.perf_counter()
        except GpttermError as err:
            error = str(err)
        self.post_message(self.Streamed(run, reply, done=True, error=error))

    def on_inspect_pane_streamed(self, message: Streamed) -> None:
        if message.run != self.run:
            return
        reply = message.reply
        if message.prompt is not None:
            self._base = [Shown(t) for t in message.prompt]
        generated = [Shown(TokenInfo(t.token, t.piece or t.text.encode()), t.logprob, t.top, generated=True)
                     for t in list(reply.logprobs or [])]
        self._show(View(self._base + generated))
        if not message.done:
            return
        self.reply = None
        host(self).release_engine(self)
        if message.error:
            self.notify(message.error, severity="error", timeout=10)
        if reply.text and not reply.logprobs:
            self._status("the server sent no log-probabilities: tokens are not shaded")
            return
        lps = [t.logprob for t in generated if t.logprob is not None]
        mean = -sum(lps) / len(lps) if lps else 0.0
        self._status(f"{plural(len(generated), 'token')} generated ({reply.finish_reason}) · mean surprise "
                     f"{mean:.2f} nats · perplexity of the continuation {math.exp(mean):.2f} · ←/→ and Enter "
                     "on an alternative branches")

    def stop(self) -> None:
        if self.reply is not None and self.engine is not None:
            self.engine.cancel()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group in ("inspect-generate", "inspect-score"):
            self.reply = None
            host(self).release_engine(self)

    # -- scoring the text -----------------------------------------------------------------

    def action_score(self) -> None:
        text = self.source
        if not text.strip():
            self.notify("Type or paste a text to score first", severity="warning")
            return
        lease = host(self).acquire_engine(self, "scoring")
        if lease is None:
            return
        self.run += 1
        self._status("scoring…")
        self._score(lease.engine, text, min(lease.params.ctx, lease.engine.n_ctx), self.run)

    @work(thread=True, group="inspect-score", exit_on_error=False)
    def _score(self, engine: Engine, text: str, window: int, run: int) -> None:
        from gptterm.tasks.perplexity import Perplexity

        try:
            tokens = engine.completion_tokens(text)
            infos = engine.token_info(tokens)
            shown = [Shown(t) for t in infos]
            if 2 <= len(tokens) <= min(SCORE_WHOLE_MAX, window):
                scored = engine.score(tokens, 0, top=TOP)
                for s, lp, top in zip(shown[1:], scored.logprobs, scored.top or []):
                    s.logprob, s.top = lp, top
            job = Perplexity(engine, window=window, worst=5)
            for _ in job.run(text):
                pass
            self.post_message(self.Scored(run, shown, job.result))
        except GpttermError as err:
            self.post_message(self.Scored(run, [], None, str(err)))

    def on_inspect_pane_scored(self, message: Scored) -> None:
        if message.run != self.run:
            return
        if message.result is not None or message.error:
            host(self).release_engine(self)
        if message.error:
            self.notify(message.error, severity="error", timeout=10)
            self._status("not scored")
            return
        if message.tokens:
            self._show(View(message.tokens))
        r = message.result
        if r is None or not r.scored:
            return
        worst = ", ".join(f"{s.text!r} p={probability.shown(s.logprob)}" for s in r.worst[:3])
        how = "whole text" if r.method == "whole" else f"{r.windows} windows of {r.window}"
        self._status(f"perplexity {r.perplexity:.3f} · cross-entropy {r.cross_entropy:.3f} nats/token · "
                     f"{plural(r.scored, 'token')} scored ({how}) · most surprising: {worst}")

    # -- one token, its alternatives, a branch ---------------------------------------------

    @on(TokenView.Selected)
    def _token_selected(self, message: TokenView.Selected) -> None:
        t = self.view.tokens[message.index]
        alternatives = self.query_one("#inspect-alternatives", OptionList)
        alternatives.clear_options()
        best = max((math.exp(a.logprob) for a in t.top), default=1.0) or 1.0
        for k, a in enumerate(t.top):
            p = math.exp(a.logprob)
            bar = "█" * max(1, round(12 * p / best))
            mark = "▶" if a.text == t.info.text else " "
            alternatives.add_option(Option(Text.assemble((f"{bar:<12} ", "green"), f"{p:6.1%} {mark} ",
                                                         repr(a.text)), id=str(k)))
        where = "generated" if t.generated else "of the text"
        prob = f"p = {probability.shown(t.logprob)} (log-probability {t.logprob:.3f})" if t.logprob is not None \
            else "probability unknown: Score or Generate to see it"
        self.query_one("#inspect-detail", Static).update(
            f"token {message.index} {where}: id {t.info.id} · {t.info.text!r}" + (" (special)" if t.info.special
                                                                                  else "") + f"\n{prob}")

    @on(OptionList.OptionSelected, "#inspect-alternatives")
    def _alternative_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        index = self.query_one(TokenView).selected
        if not 0 <= index < len(self.view.tokens) or event.option.id is None:
            return
        if index == 0:
            self.notify("The first token has nothing before it to continue from", severity="warning")
            return
        chosen = self.view.tokens[index].top[int(event.option.id)]
        piece = chosen.piece or chosen.text.encode("utf-8")
        branch = Shown(TokenInfo(chosen.token, piece), chosen.logprob, (), generated=True)
        self._generate_from(View(self.view.tokens[:index] + [branch]).text_before(index + 1),
                            self.view.tokens[:index] + [branch])
