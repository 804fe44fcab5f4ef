"""The parts of ggml and llama.cpp that llama-cpp-python 0.3.36 does not bind, or binds wrongly.

- ``Tensor`` mirrors ``struct ggml_tensor`` of the vendored ``ggml/include/ggml.h`` (0.3.36: 336 bytes on
  64-bit), so an eval callback can read a tensor's name, type and shape.
- The optimizer's dataset, result and constant-parameters function live in ``libggml-base``, which the
  binding does not wrap at all.
- The binding's ``llama_opt_params`` lacks the ``optimizer_type`` field that the C side reads (whatever
  follows the struct on the stack became the optimizer), and its learning-rate callback would have to return
  a struct, which a ctypes Python callback cannot: ``OptParams`` is the C struct, ``llama_opt_init`` is
  prototyped with it, and the learning rate goes through ggml's own
  ``ggml_opt_get_constant_optimizer_params`` with a pointer to an ``OptimizerParams`` we own.

Each function is a fresh ctypes prototype over the library (never the binding's cached function object,
whose argtypes the binding set).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from pathlib import Path
from typing import Any

GGML_MAX_DIMS = 4
GGML_MAX_SRC = 10
GGML_MAX_OP_PARAMS = 64
GGML_MAX_NAME = 64

GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1
GGML_TYPE_I32 = 26

GGML_OPT_OPTIMIZER_TYPE_ADAMW = 0
GGML_OPT_OPTIMIZER_TYPE_SGD = 1


class Tensor(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * GGML_MAX_DIMS),
        ("nb", ctypes.c_size_t * GGML_MAX_DIMS),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * (GGML_MAX_OP_PARAMS // 4)),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * GGML_MAX_SRC),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * GGML_MAX_NAME),
        ("extra", ctypes.c_void_p),
        ("padding", ctypes.c_char * 8),
    ]


TENSOR_NAME_OFFSET = Tensor.name.offset


def tensor_name(address: int) -> bytes:
    """The name of the tensor at ``address``, read without building the whole struct."""
    return ctypes.string_at(address + TENSOR_NAME_OFFSET)


class Adamw(ctypes.Structure):
    _fields_ = [("alpha", ctypes.c_float), ("beta1", ctypes.c_float), ("beta2", ctypes.c_float),
                ("eps", ctypes.c_float), ("wd", ctypes.c_float)]


class Sgd(ctypes.Structure):
    _fields_ = [("alpha", ctypes.c_float), ("wd", ctypes.c_float)]


class OptimizerParams(ctypes.Structure):
    """``struct ggml_opt_optimizer_params``."""

    _fields_ = [("adamw", Adamw), ("sgd", Sgd)]


class OptParams(ctypes.Structure):
    """``struct llama_opt_params`` as llama.h 0.3.36 declares it (with ``optimizer_type``)."""

    _fields_ = [
        ("n_ctx_train", ctypes.c_uint32),
        ("param_filter", ctypes.c_void_p),
        ("param_filter_ud", ctypes.c_void_p),
        ("get_opt_pars", ctypes.c_void_p),
        ("get_opt_pars_ud", ctypes.c_void_p),
        ("optimizer_type", ctypes.c_int),
    ]


#: ``ggml_abort_callback_t``: called with the message of a failed GGML_ASSERT / GGML_ABORT, just before abort()
ABORT_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_char_p)


def _lib_dir() -> Path:
    import llama_cpp  # heavy: llama_cpp (only the commands that load a model pay for it)

    return Path(llama_cpp.__file__).parent / "lib"


def _base_library() -> Path:
    """The libggml-base that libllama itself loaded. The wheel holds copies, not links (libggml-base.so,
    .so.0, .so.0.25.3): opening another name maps a second copy with globals of its own (measured: an abort
    callback set in the copy was never called)."""
    folder = _lib_dir()
    for name in ("libggml-base.so.0", "libggml-base.so", "libggml-base.dylib", "ggml-base.dll"):
        if (folder / name).exists():
            return folder / name
    raise OSError(f"libggml-base is not in {folder}")


class _Libs:
    """Prototypes over libllama (already loaded by llama_cpp) and libggml-base."""

    def __init__(self) -> None:
        import llama_cpp.llama_cpp as binding  # heavy: llama_cpp (only the commands that load a model pay for it)

        llama = binding._lib
        base = ctypes.CDLL(str(_base_library()))
        vp, i64 = ctypes.c_void_p, ctypes.c_int64

        def fn(lib: Any, name: str, restype: Any, *argtypes: Any) -> Any:
            return ctypes.CFUNCTYPE(restype, *argtypes)((name, lib))

        self.tensor_get = fn(base, "ggml_backend_tensor_get", None, vp, vp, ctypes.c_size_t, ctypes.c_size_t)
        self.nbytes = fn(base, "ggml_nbytes", ctypes.c_size_t, vp)
        self.dataset_init = fn(base, "ggml_opt_dataset_init", vp, ctypes.c_int, ctypes.c_int, i64, i64, i64, i64)
        self.dataset_free = fn(base, "ggml_opt_dataset_free", None, vp)
        self.dataset_data = fn(base, "ggml_opt_dataset_data", vp, vp)
        self.dataset_labels = fn(base, "ggml_opt_dataset_labels", vp, vp)
        self.result_init = fn(base, "ggml_opt_result_init", vp)
        self.result_free = fn(base, "ggml_opt_result_free", None, vp)
        self.result_reset = fn(base, "ggml_opt_result_reset", None, vp)
        self.result_loss = fn(base, "ggml_opt_result_loss", None, vp, ctypes.POINTER(ctypes.c_double),
                              ctypes.POINTER(ctypes.c_double))
        self.result_ndata = fn(base, "ggml_opt_result_ndata", None, vp, ctypes.POINTER(ctypes.c_int64))
        self.default_optimizer_params = fn(base, "ggml_opt_get_default_optimizer_params", OptimizerParams, vp)
        # addresses handed to llama.cpp as C callbacks
        self.constant_optimizer_params = ctypes.cast(base.ggml_opt_get_constant_optimizer_params, vp).value
        self.param_filter_all = ctypes.cast(llama.llama_opt_param_filter_all, vp).value
        self.opt_init = fn(llama, "llama_opt_init", None, vp, vp, OptParams)
        self.opt_epoch = fn(llama, "llama_opt_epoch", None, vp, vp, vp, vp, i64, vp, vp)
        self.save_to_file = fn(llama, "llama_model_save_to_file", None, vp, ctypes.c_char_p)
        self.set_abort_callback = fn(base, "ggml_set_abort_callback", vp, ABORT_CALLBACK)
        self._base = base  # keeps the library loaded


@lru_cache(maxsize=1)
def libs() -> _Libs:
    return _Libs()


def read_into(address: int, out: Any) -> None:
    """Copy an F32 tensor's data (any backend buffer) into the C-contiguous float32 numpy array ``out``."""
    lib = libs()
    size = lib.nbytes(address)
    if size != out.nbytes:
        raise ValueError(f"tensor holds {size} bytes, not {out.nbytes}")
    lib.tensor_get(address, out.ctypes.data, 0, size)
