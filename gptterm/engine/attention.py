"""What the model attends to: every layer's and head's softmax(QKᵀ/√d_k), read out of llama.cpp.

llama.cpp names each layer's attention weights ``kq_soft_max-<layer>`` (shape, innermost first: keys, queries,
heads, streams; the keys padded to the context's cells). The tensor exists only with flash attention off
(flash attention fuses the softmax away), and ``Llama()`` does not expose the eval callback that can read
it, so a capture makes a second llama.cpp context on the engine's loaded model (the same weights, no second
copy) with flash attention off and ``cb_eval`` set, evaluates the text once in one micro-batch, and copies
each layer's weights as they are computed. Nothing is generated and the engine's own context (its KV cache)
is left as it was.

The result is layers × heads × n² floats; a text whose capture would hold more than ``MAX_FLOATS`` is
refused in one line that gives the limit.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from gptterm.engine import ggml_lib
from gptterm.errors import EngineError, InputError

if TYPE_CHECKING:
    import numpy as np

    from gptterm.engine.local import LocalEngine

#: 2**27 floats: 512 MiB of float32 (the bundled SmolLM2-135M, 30 layers × 9 heads: up to 705 tokens)
MAX_FLOATS = 2**27
TENSOR_PREFIX = b"kq_soft_max-"
CTX_STEP = 256


@dataclass
class Capture:
    tokens: list[int]
    #: float32 [layer, head, query, key]; row i sums to 1 over keys 0..i and is 0 beyond (causal)
    weights: np.ndarray
    #: llama.cpp's layer number of each entry of the first axis (every layer, for most models)
    layers: list[int]

    @property
    def n_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.weights.shape[1])

    def __len__(self) -> int:
        return len(self.tokens)


def shape_of(engine: LocalEngine) -> tuple[int, int]:
    """(layers, heads) of the engine's model."""
    import llama_cpp  # heavy: llama_cpp (only the commands that load a model pay for it)

    with engine.exclusive_model() as model:
        return int(llama_cpp.llama_model_n_layer(model)), int(llama_cpp.llama_model_n_head(model))


def max_tokens(layers: int, heads: int) -> int:
    return math.isqrt(MAX_FLOATS // max(1, layers * heads))


def check_size(n: int, layers: int, heads: int) -> None:
    """InputError in one line when a capture of ``n`` tokens would be over the limit."""
    floats = layers * heads * n * n
    if floats > MAX_FLOATS:
        raise InputError(
            f"the text is {n:,} tokens: its attention is {layers} layers × {heads} heads × {n:,}² = {floats:,} "
            f"floats, over the limit of {MAX_FLOATS:,} ({max_tokens(layers, heads):,} tokens for this model)")


def capture(engine: LocalEngine, tokens: Sequence[int]) -> Capture:
    """Evaluate ``tokens`` on a second context of ``engine``'s model and return every layer's attention."""
    import llama_cpp  # heavy: llama_cpp, numpy (only the commands that load a model pay for them)
    import numpy as np

    n = len(tokens)
    if n == 0:
        raise InputError("the text is empty: no tokens to attend to")
    layers, heads = shape_of(engine)
    check_size(n, layers, heads)
    n_ctx_train = engine.info.n_ctx_train
    if n_ctx_train and n > n_ctx_train:
        raise InputError(f"the text is {n:,} tokens but the model was trained on at most {n_ctx_train:,}")
    # written in place as each layer is computed: one array of the final size (a list of layers stacked at
    # the end held both at once: twice the memory)
    weights = np.zeros((layers, heads, n, n), dtype=np.float32)
    seen: list[int] = []
    buffers: dict[tuple[int, ...], np.ndarray] = {}
    failure: list[BaseException] = []

    def on_tensor(address: int, ask: bool, _user_data: Any) -> bool:
        try:
            name = ggml_lib.tensor_name(address)
            if not name.startswith(TENSOR_PREFIX):
                return not ask  # not wanted; and never stop the graph after a node
            if ask:
                return True
            t = ggml_lib.Tensor.from_address(address)
            n_kv, n_q, n_head, n_stream = (int(x) for x in t.ne)
            layer = int(name[len(TENSOR_PREFIX):])
            if t.type != ggml_lib.GGML_TYPE_F32 or n_q != n or n_kv < n or n_head != heads or not 0 <= layer < layers:
                raise EngineError(f"unexpected attention tensor {name.decode()}: type {t.type}, shape {list(t.ne)}")
            shape = (n_stream, n_head, n_q, n_kv)
            if shape not in buffers:
                buffers[shape] = np.empty(shape, dtype=np.float32)
            ggml_lib.read_into(address, buffers[shape])
            weights[layer] = buffers[shape][0, :, :, :n]
            seen.append(layer)
        except BaseException as err:  # an exception must not cross into C
            failure.append(err)
        return True

    callback = llama_cpp.ggml_backend_sched_eval_callback(on_tensor)
    n_ctx = max(CTX_STEP, -(-n // CTX_STEP) * CTX_STEP)
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = params.n_batch = params.n_ubatch = n_ctx  # one micro-batch: every query row in one tensor
    params.n_threads = params.n_threads_batch = engine.info.threads
    params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    params.cb_eval = callback
    params.cb_eval_user_data = None
    params.no_perf = True
    with engine.exclusive_model() as model:
        context = llama_cpp.llama_init_from_model(model, params)
        if not context:
            raise EngineError("llama.cpp could not create a context to capture the attention")
        batch = llama_cpp.llama_batch_init(n_ctx, 0, 1)
        try:
            batch.n_tokens = n
            for k, token in enumerate(tokens):
                batch.token[k], batch.pos[k], batch.n_seq_id[k] = token, k, 1
                batch.seq_id[k][0] = 0
                batch.logits[k] = k == n - 1
            rc = llama_cpp.llama_decode(context, batch)
        finally:
            llama_cpp.llama_batch_free(batch)
            llama_cpp.llama_free(context)
    if failure:
        raise failure[0]
    if rc != 0:
        raise EngineError(f"evaluating the text failed (llama_decode returned {rc})")
    if not seen:
        raise EngineError(f"{engine.info.name} has no attention weights llama.cpp names {TENSOR_PREFIX.decode()}N "
                          "(a model without softmax attention, or one llama.cpp fuses)")
    order = sorted(set(seen))
    return Capture(list(tokens), weights if len(order) == layers else weights[order], order)
