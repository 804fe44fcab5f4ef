"""Decoding under a llama.cpp grammar (JSON that matches a schema), at close to the plain speed.

llama-cpp-python puts the grammar into the sampler chain before top-k, so the
grammar is tried against every token of the vocabulary at every step (49,152
on the bundled model): decoding ran at 0.26-0.48x of plain decoding. llama.cpp's
own tools sample first and ask the grammar about the chosen token only; the
whole vocabulary is filtered just when that token is refused
(common/sampling.cpp). ``GrammarLlama`` does the same for ``Llama.generate``.
"""

from __future__ import annotations

import codecs
import ctypes
from dataclasses import dataclass
from typing import Any, Callable

import llama_cpp
import numpy as np

from gptterm.errors import EngineError

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)
assert _TOKEN_DATA.itemsize == ctypes.sizeof(llama_cpp.llama_token_data)


def check(vocab: Any, gbnf: str) -> None:
    """An EngineError unless llama.cpp can parse ``gbnf``."""
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
    if not sampler:
        raise EngineError("llama.cpp could not parse the grammar made from the schema")
    llama_cpp.llama_sampler_free(sampler)


class _Candidates:
    """A llama_token_data_array over a numpy buffer, refilled from a row of logits."""

    def __init__(self, n: int) -> None:
        self.buf = np.zeros(n, dtype=_TOKEN_DATA)
        self.ids = np.arange(n, dtype=np.int32)
        self.array = llama_cpp.llama_token_data_array(
            data=self.buf.ctypes.data_as(llama_cpp.llama_token_data_p), size=n, selected=-1, sorted=False)
        self.ref = ctypes.byref(self.array)

    def fill(self, logits: np.ndarray | None = None, token: int | None = None) -> None:
        if logits is not None:
            self.buf["id"] = self.ids
            self.buf["logit"] = logits
            self.buf["p"] = 0.0
        else:
            self.buf[0] = (token, 1.0, 0.0)
        self.array.size = len(self.buf)
        self.array.selected = -1
        self.array.sorted = False

    def chosen(self) -> int:
        return int(self.array.data[self.array.selected].id)


class LazyGrammarSampler:
    """Stands in for llama-cpp-python's sampler chain in ``Llama.generate``: the chain samples, the grammar
    checks the token, and only a refused token makes the grammar filter the whole vocabulary."""

    def __init__(self, llm: Any, chain: Any, gbnf: str) -> None:
        self.chain = chain  # keeps the chain (and its C sampler) alive
        self.grammar = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, gbnf.encode("utf-8"), b"root")
        if not self.grammar:
            raise EngineError("llama.cpp could not parse the grammar made from the schema")
        self.n_vocab = llm.n_vocab()
        self.all = _Candidates(self.n_vocab)
        self.one = _Candidates(1)
        #: tokens the grammar refused (each cost one filtering of the whole vocabulary)
        self.refused = 0

    def _allowed(self, token: int) -> bool:
        self.one.fill(token=token)
        llama_cpp.llama_sampler_apply(self.grammar, self.one.ref)
        return bool(np.isfinite(self.one.buf["logit"][0]))

    def _pick(self, logits: np.ndarray, constrained: bool) -> int:
        self.all.fill(logits)
        if constrained:
            llama_cpp.llama_sampler_apply(self.grammar, self.all.ref)
        llama_cpp.llama_sampler_apply(self.chain.sampler, self.all.ref)
        return self.all.chosen()

    def sample(self, ctx: Any, idx: int) -> int:
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx.ctx, idx), shape=(self.n_vocab,))
        token = self._pick(logits, constrained=False)
        if not self._allowed(token):
            self.refused += 1
            token = self._pick(logits, constrained=True)
            if not self._allowed(token):  # accepting it would abort the process (llama.cpp's GGML_ABORT)
                raise RuntimeError("the grammar allows no token here")
        llama_cpp.llama_sampler_accept(self.grammar, token)
        llama_cpp.llama_sampler_accept(self.chain.sampler, token)
        return token

    def close(self) -> None:
        if self.grammar:
            llama_cpp.llama_sampler_free(self.grammar)
            self.grammar = None
        self.chain.close()

    def __del__(self) -> None:
        self.close()


@dataclass
class ToolTrigger:
    """Decode a tool call under its grammar once the model opens one (what ``ToolGrammarSampler`` is given)."""

    #: the call grammar: its root is a whole call, opening marker included (gptterm.engine.tool_formats)
    gbnf: str
    #: markers that open a call anywhere in the answer
    openings: tuple[str, ...]
    #: markers that open a call only at the very start of the answer (Llama 3's bare JSON)
    anchored: tuple[str, ...]
    #: a generated token's text, markers that are special tokens included
    piece: Callable[[int], bytes]
    #: text to tokens, special tokens parsed (to feed the marker already written into the grammar)
    tokenize: Callable[[str], list[int]]
    #: the reply may open with a <think> block: calls are watched for after it
    thinking: bool = False
    #: the prompt opened the <think> block already
    inside: bool = False
    #: tool_choice "required" or a tool's name: the grammar holds from the first token
    forced: bool = False


class ToolGrammarSampler(LazyGrammarSampler):
    """Samples freely (at the plain speed: the grammar is not even consulted) until the answer holds a call's
    opening marker; from there on the call is decoded under its grammar, as ``LazyGrammarSampler`` does.

    llama.cpp's own lazy grammar (``llama_sampler_init_grammar_lazy_patterns``) is not used: it feeds the text
    of the token that completed the trigger into the grammar unchecked, and a tail the grammar refuses throws
    a C++ exception through ctypes, which aborts the process. Here every token fed to the grammar is checked
    first, and a call the grammar cannot follow is left to the parser (which reports it to the model).
    """

    def __init__(self, llm: Any, chain: Any, trigger: ToolTrigger) -> None:
        self.chain = chain
        self.trigger = trigger
        self.vocab = llm._model.vocab
        self.n_vocab = llm.n_vocab()
        self.all = _Candidates(self.n_vocab)
        self.one = _Candidates(1)
        self.refused = 0
        self.grammar = None
        #: "watching" for an opening, "call" (under the grammar), "free" (a call the grammar could not follow)
        self.state = "watching"
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        #: the end of the answer (enough to hold a marker that a new piece completes); the text so far while a
        #: <think> block may still be open
        self._text = ""
        self._window = max((len(m) for m in trigger.openings), default=1)
        #: the answer while it is blank or may still open an anchored call (then None)
        self._lead: str | None = "" if trigger.anchored else None
        self._answer_from = None if trigger.thinking or trigger.inside else 0
        if trigger.forced:
            self._start("")

    def _start(self, written: str) -> None:
        grammar = llama_cpp.llama_sampler_init_grammar(self.vocab, self.trigger.gbnf.encode("utf-8"), b"root")
        if not grammar:
            raise EngineError("llama.cpp could not parse the grammar made from the tools")
        self.grammar = grammar
        self.state = "call"
        for token in self.trigger.tokenize(written) if written else ():
            if not self._allowed(token):  # the model's call already left what the grammar can follow
                self._give_up()
                return
            llama_cpp.llama_sampler_accept(grammar, token)

    def _give_up(self) -> None:
        if self.grammar:
            llama_cpp.llama_sampler_free(self.grammar)
        self.grammar = None
        self.state = "free"

    def _watch(self, token: int) -> None:
        # per token: only the end of the text is looked at (this runs at every step of a plain reply)
        piece = self._decoder.decode(self.trigger.piece(token))
        if not piece:
            return
        if self._answer_from is None:  # still where a <think> block may be
            self._text += piece
            stripped = self._text.lstrip()
            if self.trigger.inside or stripped.startswith("<think>"):
                end = self._text.find("</think>")
                if end < 0:
                    return
                piece = self._text[end + len("</think>"):]
            elif stripped and not "<think>".startswith(stripped):
                piece = self._text
            else:
                return
            self._answer_from = 0
            self._text = ""
        start = self._text + piece
        if self._lead is not None:  # the answer so far is blank or could still open an anchored call
            self._lead += piece
            opened = self._lead.lstrip()
            for marker in self.trigger.anchored:
                if opened.startswith(marker):
                    self._start(opened)
                    return
            if opened and not any(m.startswith(opened) for m in self.trigger.anchored):
                self._lead = None
        for marker in self.trigger.openings:
            if marker in self.trigger.anchored:
                continue
            at = start.find(marker)
            if at >= 0:
                self._start(start[at:])
                return
        self._text = start[-self._window:]

    def sample(self, ctx: Any, idx: int) -> int:
        if self.state == "call":
            try:
                return super().sample(ctx, idx)
            except RuntimeError:  # the grammar allows no token: leave the rest of the call to the parser
                self._give_up()
        token = self.chain.sample(ctx, idx)  # llama.cpp's own sampling (it accepts the token too): plain speed
        if self.state == "watching":
            self._watch(token)
        return token


class GrammarLlama(llama_cpp.Llama):
    """``Llama`` whose ``generate(grammar=GBNF_TEXT)`` decodes under the grammar with ``LazyGrammarSampler``
    (and ``grammar=ToolTrigger(...)`` with ``ToolGrammarSampler``)."""

    def _init_sampler(self, *args: Any, grammar: Any = None, **kwargs: Any) -> Any:
        chain = super()._init_sampler(*args, **kwargs)
        if grammar is None:
            return chain
        if isinstance(grammar, ToolTrigger):
            return ToolGrammarSampler(self, chain, grammar)
        return LazyGrammarSampler(self, chain, grammar)
