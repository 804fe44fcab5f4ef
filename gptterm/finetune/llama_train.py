"""Training over llama.cpp 0.3.36's API, one optimizer step at a time (in the child process).

``llama_opt_epoch`` walks a whole ``ggml_opt_dataset`` and cannot be stopped midway, so the dataset here
holds one window and each call is one step: the caller chooses the windows (shuffled per epoch), reads the
loss after each, and can stop between any two. The optimizer's state lives in the context, so AdamW's
moments carry over from call to call, and with batch = micro-batch every call is one AdamW step.

What llama.cpp requires, learned the hard way: the context, batch and micro-batch equal and a multiple of
256 (else the K and V projections get no gradients, and a small context aborted on
``GGML_ASSERT(cgraph->n_nodes < cgraph->size)``); the weights in F32 (only F32 tensors become trainable;
the token embeddings never do, so a model whose output head is tied to them keeps that head too); the KV
cache in F32; no mmap (the weights are written to); flash attention off (it has no backward pass).
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any, Sequence

from gptterm.engine import ggml_lib, llama_log
from gptterm.errors import FinetuneError


class Trainer:
    def __init__(self, path: Path, *, ctx: int, threads: int, lr: float) -> None:
        import llama_cpp  # heavy: llama_cpp, numpy (only the commands that load a model pay for them)
        import numpy as np

        self._np = np
        self.ctx = ctx
        lib = ggml_lib.libs()
        self._lib = lib
        llama_log.install()
        mark = llama_log.mark()
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = 0
        mparams.load_mode = 0  # LLAMA_LOAD_MODE_NONE: read into memory, writable
        self.model = llama_cpp.llama_model_load_from_file(str(path).encode(), mparams)
        if not self.model:
            raise FinetuneError(f"cannot load {path.name} for training: "
                                f"{llama_log.failure_reason(llama_log.since(mark)) or 'llama.cpp refused it'}")
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = ctx
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.type_k = cparams.type_v = ggml_lib.GGML_TYPE_F32
        cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        cparams.no_perf = True
        self.context = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.context:
            llama_cpp.llama_model_free(self.model)
            raise FinetuneError("llama.cpp could not create a training context")
        self._llama = llama_cpp
        # AdamW with llama.cpp's defaults but the learning rate; read by llama.cpp before every step
        self.optimizer = lib.default_optimizer_params(None)
        self.optimizer.adamw.alpha = lr
        params = ggml_lib.OptParams(
            n_ctx_train=0, param_filter=lib.param_filter_all, param_filter_ud=None,
            get_opt_pars=lib.constant_optimizer_params,
            get_opt_pars_ud=ctypes.addressof(self.optimizer), optimizer_type=ggml_lib.GGML_OPT_OPTIMIZER_TYPE_ADAMW)
        lib.opt_init(self.context, self.model, params)
        self.dataset = lib.dataset_init(ggml_lib.GGML_TYPE_I32, ggml_lib.GGML_TYPE_I32, ctx, ctx, 1, 1)
        self._data = ggml_lib.Tensor.from_address(lib.dataset_data(self.dataset)).data
        self._labels = ggml_lib.Tensor.from_address(lib.dataset_labels(self.dataset)).data
        self._train = lib.result_init()
        self.threads = threads
        self._scoring: Any = None
        self._batch: Any = None

    @property
    def lr(self) -> float:
        return float(self.optimizer.adamw.alpha)

    def _load(self, window: Sequence[int]) -> None:
        if len(window) != self.ctx + 1:
            raise ValueError(f"a window holds {self.ctx + 1} tokens, not {len(window)}")
        tokens = self._np.asarray(window, dtype=self._np.int32)
        ctypes.memmove(self._data, tokens.ctypes.data, self.ctx * 4)
        ctypes.memmove(self._labels, tokens[1:].ctypes.data, self.ctx * 4)

    def _loss(self, result: int) -> float:
        loss, unc = ctypes.c_double(), ctypes.c_double()
        self._lib.result_loss(result, ctypes.byref(loss), ctypes.byref(unc))
        return float(loss.value)

    def step(self, window: Sequence[int]) -> float:
        """One forward, backward and AdamW step on ``window`` (ctx + 1 tokens); its mean loss (nats/token)."""
        self._load(window)
        self._lib.result_reset(self._train)
        self._lib.opt_epoch(self.context, self.dataset, self._train, None, 1, None, None)
        return self._loss(self._train)

    def score(self, pieces: Sequence[Sequence[int]]) -> tuple[float, float, int]:
        """Σ −log p, Σ (log p)² and the count of every next token of ``pieces`` (each at most ctx tokens, from
        an empty cache), by the weights as trained so far.

        Not ``llama_opt_epoch``'s evaluation: its windows must be full, and a validation part shorter than
        a window would be read round and round (measured: a loss of 1.2 where the text's own was 4.6).
        A plain inference context on the same model reads the same weights, in place.
        """
        from gptterm.engine import logprobs  # heavy: numpy (only the commands that load a model pay for it)

        llama, np = self._llama, self._np
        if self._scoring is None:
            cparams = llama.llama_context_default_params()
            cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = self.ctx
            cparams.n_threads = cparams.n_threads_batch = self.threads
            cparams.no_perf = True
            self._scoring = llama.llama_init_from_model(self.model, cparams)
            if not self._scoring:
                raise FinetuneError("llama.cpp could not create a context to score the validation part")
            self._batch = llama.llama_batch_init(self.ctx, 0, 1)
        context, batch = self._scoring, self._batch
        n_vocab = llama.llama_vocab_n_tokens(llama.llama_model_get_vocab(self.model))
        nll = nll2 = 0.0
        count = 0
        for piece in pieces:
            n = len(piece)
            if n < 2:
                continue
            llama.llama_memory_clear(llama.llama_get_memory(context), True)
            batch.n_tokens = n
            for k, token in enumerate(piece):
                batch.token[k], batch.pos[k], batch.n_seq_id[k] = token, k, 1
                batch.seq_id[k][0] = 0
                batch.logits[k] = k < n - 1
            if llama.llama_decode(context, batch) != 0:
                raise FinetuneError("scoring the validation part failed (llama_decode)")
            rows = np.ctypeslib.as_array(llama.llama_get_logits(context), shape=(n - 1, n_vocab))
            lp = logprobs.target_logprobs(rows, piece[1:])
            nll -= float(lp.sum())
            nll2 += float((lp * lp).sum())
            count += n - 1
        return nll, nll2, count

    def save(self, path: Path) -> None:
        self._lib.save_to_file(self.model, str(path).encode())
        if not path.exists():
            raise FinetuneError(f"llama.cpp did not write the trained model to {path}")

    def close(self) -> None:
        lib = self._lib
        if self._scoring is not None:
            self._llama.llama_batch_free(self._batch)
            self._llama.llama_free(self._scoring)
        lib.result_free(self._train)
        lib.dataset_free(self.dataset)
        self._llama.llama_free(self.context)
        self._llama.llama_model_free(self.model)
