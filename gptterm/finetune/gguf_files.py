"""The files around training: the base in F32, the trained model with its base's metadata, quantized back.

``llama_model_save_to_file`` (0.3.36) writes the hyperparameters as the model holds them, not the base's
header: the chat template, ``general.file_type`` and the other general keys are dropped, dozens of
unused keys are added, and the context length is the training context (``llama_opt_init`` sets
``n_ctx_train`` to it). So the trained tensors are copied under the base's own metadata (gguf package),
and that file is what gets quantized (quantizing copies the metadata).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from gptterm.engine import llama_log
from gptterm.errors import FinetuneError
from gptterm.finetune.plan import FTYPE_ALL_F32


def _quantize(src: Path, dst: Path, ftype: int, threads: int, what: str) -> None:
    import llama_cpp  # heavy: llama_cpp (only the commands that load a model pay for it)

    llama_log.install()
    mark = llama_log.mark()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    params.allow_requantize = True  # a quantized base holds q8_0/q6_K tensors too: they must be read back
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params)) != 0:
        reason = llama_log.failure_reason(llama_log.since(mark)) or "llama.cpp refused"
        raise FinetuneError(f"{what} failed: {reason}")


def convert_to_f32(src: Path, dst: Path, threads: int) -> None:
    _quantize(src, dst, FTYPE_ALL_F32, threads, f"converting {src.name} to F32")


def quantize(src: Path, dst: Path, ftype: int, threads: int) -> None:
    _quantize(src, dst, ftype, threads, "quantizing the trained model back to its base's type")


def with_base_metadata(base: Path, trained: Path, out: Path, *, file_type: int) -> None:
    """Write ``out``: the tensors of ``trained`` under the metadata of ``base`` (``general.file_type`` set)."""
    import gguf  # heavy: gguf (only writing the fine-tuned file pays for it)

    head = gguf.GGUFReader(base)
    body = gguf.GGUFReader(trained)
    arch = head.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(out, arch=arch, endianess=body.endianess)
    for field in head.fields.values():
        # the writer writes the header fields and the architecture itself; alignment is its own (default)
        if field.name.startswith("GGUF.") or field.name in ("general.architecture", "general.alignment",
                                                              "general.file_type") or field.name.startswith("split."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    writer.add_file_type(file_type)
    for t in body.tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in body.tensors:
        writer.write_tensor_data(t.data, tensor_endianess=body.endianess)
    writer.close()
