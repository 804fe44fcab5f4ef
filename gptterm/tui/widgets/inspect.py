"""The Inspect pane: a text's tokens, what the model predicts after it, how likely each token was.

Type or paste a text: its tokens appear coloured with their ids (as the
chat template renders it, with "chat message" chosen). Generate continues
the text and shades each new token by its probability; Score shades the
text's own tokens and gives its perplexity and most surprising tokens. Move
onto a token (←/→, or click it) to see the most likely alternatives as a
bar chart; choosing one continues the text from there with it instead (a
branch: the rest is generated again). ctrl+t switches to the Attention view
of the tokens shown (gptterm.tui.widgets.attention): the selected token's
attention to the earlier ones, as shades of the same spans. Tokenizing,
scoring, generating and capturing run in thread workers on the app's engine
(attention: a local one only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from rich.style import Style
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, ContentSwitcher, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from gptterm import probability
from gptterm.types import Alternative, TokenInfo
from gptterm.errors import GpttermError, ParamError
from gptterm.settings import BY_NAME
from gptterm.tui.actions import INSPECT_ACTIONS
from gptterm.tui.generation import Generation, Run
from gptterm.tui.widgets.attention import AttentionPanel, Captured, capture_work, not_local, token_style
from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.types import Reply
    from gptterm.tasks.perplexity import Result

TOP = 8  # alternatives asked for each token
SPANS = ("on #3b4252", "on #434c5e")  # alternating pieces of a text without probabilities
TOKENIZE_DELAY_S = 0.3  # after the last key, before the text is tokenized again
SCORE_WHOLE_MAX = 2048  # texts up to this many tokens are scored token by token (shaded, with alternatives)
MODES = (("plain text", "text"), ("as a chat message", "chat"))


@dataclass(frozen=True)
class Streamed:
    """How far a generation has come (``done``: it ended); the tokens are in ``reply.logprobs``."""

    reply: Reply
    done: bool
    #: the prompt's own tokens, when the view should show them (not on a branch)
    prompt: list[TokenInfo] | None = None


@dataclass(frozen=True)
class Scored:
    """A text scored: its tokens shaded by probability, and its perplexity."""

    tokens: list[Shown]
    result: Result


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
    return style + _clickable(index)


def _clickable(index: int) -> Style:
    """Which token a click lands on. Not an ``@click`` action: Textual would draw every span as a link
    (in the link colour, over the shade's own ink)."""
    return Style(meta={"token": index})


class TokenView(Static, can_focus=True):
    """The tokens as coloured spans; ←/→ move the selection, a click selects. With ``shading`` set (the
    Attention view), the spans are shaded by it instead: the levels of tokens 0..selected."""

    # home/end stay out of the footer: at 80 columns it has room for the pane's keys after ←/→
    BINDINGS = [("left", "step(-1)", "Previous token"), ("right", "step(1)", "Next token"),
                Binding("home", "step(-1000000)", "First", show=False),
                Binding("end", "step(1000000)", "Last", show=False)]

    selected: reactive[int] = reactive(-1, init=False)

    @dataclass
    class Selected(Message):
        index: int

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.view = View()
        self.shading: Callable[[int], Sequence[float] | None] | None = None

    def show(self, view: View, selected: int | None = None) -> None:
        self.view = view
        if selected is not None:
            self.set_reactive(TokenView.selected, selected)
        self.selected = min(self.selected, len(view.tokens) - 1)
        self._draw()

    def shade(self, shading: Callable[[int], Sequence[float] | None] | None) -> None:
        """Shade the spans by ``shading(selected)`` from now on (None: by probability again)."""
        self.shading = shading
        self._draw()

    def _draw(self) -> None:
        text = Text()
        levels = self.shading(self.selected) if self.shading is not None and self.selected >= 0 else None
        for i, t in enumerate(self.view.tokens):
            if levels is None:
                style = _style(t, i, i == self.selected)
            else:
                style = token_style(levels[i] if i < len(levels) else None, special=t.info.special,
                                    selected=i == self.selected) + _clickable(i)
            text.append(t.info.text.replace("\n", "⏎\n"), style=style)
        self.update(text if self.view.tokens else Text("(no tokens yet)", style="dim"))

    def watch_selected(self, index: int) -> None:
        self._draw()
        if 0 <= index < len(self.view.tokens):
            self.post_message(self.Selected(index))

    def action_step(self, step: int) -> None:
        if self.view.tokens:
            start = self.selected if self.selected >= 0 else (len(self.view.tokens) if step < 0 else -1)
            self.selected = max(0, min(len(self.view.tokens) - 1, start + step))

    def on_click(self, event: events.Click) -> None:
        index = event.style.meta.get("token")
        if isinstance(index, int):
            self.action_select_token(index)

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
    class Failed(Message):
        """Tokenizing the text failed (a server gone away)."""

        run: int
        error: str

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.run = 0  # the latest request: older answers are dropped
        #: the generation in flight (None: none, or a score)
        self.reply: Reply | None = None
        self.engine: Engine | None = None
        self.generation = Generation(self.VERB, on_events=self._events, on_finished=self._finished)
        self.view = View()
        self._base: list[Shown] = []  # the view before the generation in flight
        #: the Attention view is shown (its capture: the AttentionPanel's)
        self.attention_on = False
        self._capturing = False

    def compose(self) -> ComposeResult:
        yield self.generation
        with Horizontal(classes="task-options"):
            yield Select(MODES, value="text", allow_blank=False, id="inspect-mode")
            yield Input("40", placeholder="tokens", id="inspect-max", classes="narrow",
                        tooltip="how many tokens Generate adds")
            yield Button("Generate (ctrl+g)", id="inspect-generate", variant="primary")
            yield Button("Score (ctrl+o)", id="inspect-score")
        yield TextArea(id="inspect-source", classes="source", soft_wrap=True)
        with VerticalScroll(id="inspect-tokens-scroll"):
            yield TokenView(id="inspect-tokens")
        with ContentSwitcher(initial="inspect-probabilities", id="inspect-detail-row"):
            with Horizontal(id="inspect-probabilities"):
                yield OptionList(id="inspect-alternatives")
                with Vertical(id="inspect-detail-side"):
                    yield Static("", id="inspect-detail")
                    yield Button("Attention (ctrl+t)", id="inspect-attention-on")
            yield AttentionPanel(id="inspect-attention")
        yield Label("Type or paste a text · ←/→ on the tokens · Enter on an alternative continues from it",
                    classes="progress-label", id="inspect-status")

    def on_mount(self) -> None:
        self.watch(self.app, "engine", self._engine_changed)

    def focus_default(self) -> None:
        self.query_one("#inspect-source", TextArea).focus()

    def _engine_changed(self, engine: Engine | None) -> None:
        self.engine = engine
        self._attention_off(drop=True)  # captured with the model before
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
            self.post_message(self.Failed(run, str(err)))

    def on_inspect_pane_failed(self, message: Failed) -> None:
        if message.run == self.run:
            self.notify(message.error, severity="error", timeout=10)

    def on_inspect_pane_tokenized(self, message: Tokenized) -> None:
        if message.run != self.run or self.generation.running:
            return
        self._show(View([Shown(t) for t in message.tokens]))
        specials = sum(t.special for t in message.tokens)
        self._status(plural(len(message.tokens), "token") + (f", {specials} special" if specials else "")
                     + " · ctrl+g generates a continuation · ctrl+o scores the text")

    def _show(self, view: View, selected: int | None = None) -> None:
        self.view = view
        if self.attention_on and not self.query_one(AttentionPanel).holds(self._ids()):
            self._attention_off(drop=True)  # other tokens: ctrl+t captures theirs
        self.query_one(TokenView).show(view, selected)

    def _ids(self) -> list[int]:
        return [t.info.id for t in self.view.tokens]

    # -- generating ----------------------------------------------------------------

    def _max_tokens(self) -> int | None:
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
        elif event.button.id in ("inspect-attention-on", "inspect-attention-off"):
            self.action_toggle_attention()

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
        lease = self.generation.borrow()
        if lease is None:
            return
        params = lease.params.replace(max_tokens=n, logprobs=TOP)
        try:
            reply = lease.engine.complete(prompt, params)
        except GpttermError as err:
            self.generation.give_back()
            self.notify(str(err), severity="error")
            return
        self.run += 1
        self.reply = reply
        self._base = list(kept or [])
        self._attention_off()  # the tokens change: ctrl+t captures the new ones
        self._status("generating… (Esc stops)")
        shown = prompt if kept is None else None
        self.generation.stream(lambda run: self._stream(run.lease.engine, reply, shown))

    def _stream(self, engine: Engine, reply: Reply, prompt: str | None) -> Iterator[Streamed]:
        if prompt is not None:
            yield Streamed(reply, done=False, prompt=engine.token_info(engine.completion_tokens(prompt)))
        for _ in reply:
            yield Streamed(reply, done=False)
        yield Streamed(reply, done=True)

    def _events(self, events: list[Streamed | Scored | Captured]) -> None:
        for event in events:
            if isinstance(event, Streamed) and event.prompt is not None:
                self._base = [Shown(t) for t in event.prompt]
        last = events[-1]
        if isinstance(last, Streamed):
            self._show(View(self._base + self._generated(last.reply)))
        elif isinstance(last, Scored):
            self._scored(last)
        else:
            self._captured(last)

    @staticmethod
    def _generated(reply: Reply) -> list[Shown]:
        return [Shown(TokenInfo(t.token, t.piece or t.text.encode()), t.logprob, t.top, generated=True)
                for t in list(reply.logprobs or [])]

    def _finished(self, error: str | None) -> None:
        if self._capturing:
            self._capturing = False
            if not self.query_one(AttentionPanel).holds(self._ids()):
                self._attention_off()
                self._status("attention not captured" + (f": {error}" if error else ""))
            return
        reply, self.reply = self.reply, None
        if reply is None:  # a score
            if error:
                self._status("not scored")
            return
        generated = self._generated(reply)
        self._show(View(self._base + generated))
        if reply.text and not reply.logprobs:
            self._status("the server sent no log-probabilities: tokens are not shaded")
            return
        lps = [t.logprob for t in generated if t.logprob is not None]
        mean = -sum(lps) / len(lps) if lps else 0.0
        self._status(f"{plural(len(generated), 'token')} generated ({reply.finish_reason}) · mean surprise "
                     f"{mean:.2f} nats · perplexity of the continuation {math.exp(mean):.2f} · ←/→ and Enter "
                     "on an alternative branches")

    def stop(self) -> None:
        self.generation.stop()

    # -- scoring the text -----------------------------------------------------------------

    def action_score(self) -> None:
        text = self.source
        if not text.strip():
            self.notify("Type or paste a text to score first", severity="warning")
            return
        lease = self.generation.borrow("scoring")
        if lease is None:
            return
        if not lease.engine.info.can_score:
            self.generation.give_back()
            self.notify(f"The model on {lease.engine.info.url} cannot score a text (a server gives log-probabilities "
                        "of what it generates, not reliably of a given text): use a local model", severity="error",
                        timeout=10)
            return
        self.run += 1
        self.reply = None
        self._attention_off()
        self._status("scoring…")
        window = min(lease.params.ctx, lease.engine.n_ctx)
        self.generation.stream(lambda run: self._score(run, text, window))

    def _score(self, run: Run, text: str, window: int) -> Iterator[Scored]:
        from gptterm.tasks.perplexity import Perplexity  # heavy: numpy (only a score needs it)

        engine = run.lease.engine
        tokens = engine.completion_tokens(text)
        infos = engine.token_info(tokens)
        shown = [Shown(t) for t in infos]
        if 2 <= len(tokens) <= min(SCORE_WHOLE_MAX, window):
            scored = engine.score(tokens, 0, top=TOP)
            for s, lp, top in zip(shown[1:], scored.logprobs, scored.top or []):
                s.logprob, s.top = lp, top
        job = Perplexity(engine, window=window, worst=5)
        run.on_stop(job.cancel)
        for _ in job.run(text):
            pass
        yield Scored(shown, job.result)

    def _scored(self, scored: Scored) -> None:
        if scored.tokens:
            self._show(View(scored.tokens))
        r = scored.result
        if not r.scored:
            return
        worst = ", ".join(f"{s.text!r} p={probability.shown(s.logprob)}" for s in r.worst[:3])
        how = "whole text" if r.method == "whole" else f"{r.windows} windows of {r.window}"
        self._status(f"perplexity {r.perplexity:.3f} · cross-entropy {r.cross_entropy:.3f} nats/token · "
                     f"{plural(r.scored, 'token')} scored ({how}) · most surprising: {worst}")

    # -- one token, its alternatives, a branch ---------------------------------------------

    @on(TokenView.Selected)
    def _token_selected(self, message: TokenView.Selected) -> None:
        if self.attention_on:
            self.query_one(AttentionPanel).show_token(message.index)
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
        if not 0 <= index < len(self.view.tokens) or event.option.id is None or self.attention_on:
            return
        if index == 0:
            self.notify("The first token has nothing before it to continue from", severity="warning")
            return
        chosen = self.view.tokens[index].top[int(event.option.id)]
        piece = chosen.piece or chosen.text.encode("utf-8")
        branch = Shown(TokenInfo(chosen.token, piece), chosen.logprob, (), generated=True)
        self._generate_from(View(self.view.tokens[:index] + [branch]).text_before(index + 1),
                            self.view.tokens[:index] + [branch])

    # -- attention -----------------------------------------------------------------------------

    def action_toggle_attention(self) -> None:
        """ctrl+t: the Attention view of the tokens shown (captured first when they were not), or back."""
        if self.attention_on:
            self._attention_off()
            self._status("probabilities again · ctrl+t shows the attention")
            return
        if self.engine is not None and self.engine.info.remote:
            self.notify(not_local(self.engine), severity="error", timeout=10)
            return
        ids = self._ids()
        if not ids:
            self.notify("Type or paste a text first: the Attention view shows its tokens", severity="warning")
            return
        panel = self.query_one(AttentionPanel)
        if panel.holds(ids):
            self._attention_on()
            return
        if self.generation.borrow("capturing attention") is None:
            return
        panel.clear()
        self.run += 1
        self._capturing = True
        self._status(f"capturing the attention of {plural(len(ids), 'token')}… (every layer and head)")
        self.generation.stream(lambda run: capture_work(run, ids))

    def _captured(self, captured: Captured) -> None:
        if captured.ids != tuple(self._ids()):
            return  # the tokens changed meanwhile
        self.query_one(AttentionPanel).load(captured, [t.info for t in self.view.tokens])
        self._attention_on()

    def _attention_on(self) -> None:
        self.attention_on = True
        self.query_one("#inspect-detail-row", ContentSwitcher).current = "inspect-attention"
        panel = self.query_one(AttentionPanel)
        view = self.query_one(TokenView)
        if not 0 <= view.selected < len(self.view.tokens):
            view.set_reactive(TokenView.selected, len(self.view.tokens) - 1)
        view.shade(panel.levels)
        panel.show_token(view.selected)
        self._status(panel.caption())

    def _attention_off(self, drop: bool = False) -> None:
        """Back to the probabilities; ``drop``: the capture is of tokens no longer shown (its memory freed)."""
        if not self.is_mounted:
            return
        panel = self.query_one(AttentionPanel)
        if drop:
            panel.clear()
        if not self.attention_on:
            return
        self.attention_on = False
        self.query_one("#inspect-detail-row", ContentSwitcher).current = "inspect-probabilities"
        self.query_one(TokenView).shade(None)

    @on(AttentionPanel.Changed)
    def _attention_changed(self, message: AttentionPanel.Changed) -> None:
        message.stop()
        if self.attention_on:
            view = self.query_one(TokenView)
            view.shade(view.shading)
            panel = self.query_one(AttentionPanel)
            panel.show_token(view.selected)
            self._status(panel.caption())
