"""Embeddings of passages and questions, from any embedding GGUF (bge, e5, nomic, …), through llama.cpp.

Vectors are L2-normalized, so a dot product is the cosine similarity. A
model without a pooling type of its own (a chat model used to embed) has its
token vectors averaged.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gptterm.engine import llama_log
from gptterm.engine.local import default_threads
from gptterm.errors import ModelError
from gptterm.models.resolve import resolve_model

if TYPE_CHECKING:
    import numpy as np


class Embedder(Protocol):
    #: identifies the vectors this embedder makes (stored with them)
    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


class LocalEmbedder:
    def __init__(self, model: str | Path, *, threads: int | None = None, ctx: int = 512) -> None:
        import llama_cpp  # heavy: llama_cpp (only the commands that load a model pay for it)

        path = resolve_model(str(model))
        llama_log.install()
        mark = llama_log.mark()
        n = threads or default_threads()

        def load(flash_attn: bool) -> Any:
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                return llama_cpp.Llama(model_path=str(path), embedding=True, n_ctx=ctx, n_batch=ctx, n_ubatch=ctx,
                                       n_threads=n, n_threads_batch=n, flash_attn=flash_attn, verbose=True)

        # Flash attention, as llama-embedding's "auto" turns it on here: 1.8x the passages a second on the
        # CPU (all-MiniLM-L6-v2, 2 threads: 24.4 against 13.8; llama-embedding 22.0 with it, 14.3 without).
        try:
            try:
                self._llm = load(True)
            except (ValueError, RuntimeError) as err:
                if "context" not in str(err):
                    raise
                self._llm = load(False)  # a model or device without it
        except (ValueError, RuntimeError, OSError) as err:
            reason = llama_log.failure_reason(llama_log.since(mark)) or str(err)
            raise ModelError(f"cannot load embedding model {path}: {reason}") from None
        self._llm.verbose = False
        st = path.stat()
        ident = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
        self.name = f"{path.stem}@{ident}"
        self.path = path

    def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np  # heavy: numpy (only embedding pays for it)

        # one call: llama-cpp-python packs the texts into batches of up to n_batch tokens
        found = self._llm.embed([t or " " for t in texts], truncate=True)
        rows = []
        for out in found:
            vec = np.asarray(out, dtype=np.float32)
            if vec.ndim == 2:  # one vector a token: no pooling in the model
                vec = vec.mean(axis=0)
            norm = float(np.linalg.norm(vec))
            rows.append(vec / norm if norm > 0 else vec)
        return np.stack(rows)

    def close(self) -> None:
        self._llm.close()
