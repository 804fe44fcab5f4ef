"""Decoding under a llama.cpp grammar (JSON that matches a schema), at close to the plain speed.

llama-cpp-python puts the grammar into the sampler chain before top-k, so the
grammar is tried against every token of the vocabulary at every step (49,152
on the bundled model): decoding ran at 0.26-0.48x of plain decoding. llama.cpp's
own tools sample first and ask the grammar about the chosen token only; the
whole vocabulary is filtered just when that token is refused
(common/sampling.cpp). ``GrammarLlama`` does the same for ``Llama.generate``.
"""

from __future__ import annotations

import ctypes
from typing import Any

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


class GrammarLlama(llama_cpp.Llama):
    """``Llama`` whose ``generate(grammar=GBNF_TEXT)`` decodes under the grammar with ``LazyGrammarSampler``."""

    def _init_sampler(self, *args: Any, grammar: Any = None, **kwargs: Any) -> Any:
        chain = super()._init_sampler(*args, **kwargs)
        if grammar is None:
            return chain
        return LazyGrammarSampler(self, chain, grammar)
