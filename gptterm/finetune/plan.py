"""What a fine-tuning run needs, and whether this machine has it: checked before anything starts.

Memory, as llama.cpp's training uses it: the F32 weights, their gradients and AdamW's two moments (≈ 16
bytes a parameter), the F32 KV cache (the finetune example forces F32: OUT_PROD has no F16 backward), and
the compute buffers of a forward and backward pass: about one F32 row of logits per token and three F32
attention matrices (heads × ctx²) per layer. Fitted on the bundled SmolLM2-135M (measured peaks 2.47 GB at
ctx 256, 3.16 GB at 512; 2.62 GB at 256 in bench/finetune.py; this gives 2.63 and 3.33).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from gptterm.errors import FinetuneError, UsageError
from gptterm.models.gguf_meta import GGUFMetadata
from gptterm.models.names import human_size

CTX_STEP = 256  # llama.cpp pads the context to 256: context = batch = micro-batch must be a multiple of it
RUNTIME_BYTES = 192 * 2**20  # Python, llama.cpp, numpy, the tokenized data, the loader's buffers
F32 = 4
#: llama_ftype of an all-F32 file
FTYPE_ALL_F32 = 0


@dataclass(frozen=True)
class Settings:
    """What the user asked for (``gptterm finetune`` flags)."""

    epochs: int = 2
    lr: float = 1e-4
    ctx: int = 256
    val_split: float = 0.1
    keep_f32: bool = False
    threads: int | None = None
    seed: int = 0

    def check(self) -> None:
        if self.epochs < 1:
            raise UsageError(f"--epochs must be 1 or more, not {self.epochs}")
        if not 0 < self.lr < 1:  # llama.cpp asserts alpha > 0 (an abort, not an error)
            raise UsageError(f"--lr must be above 0 and below 1, not {self.lr}")
        if self.ctx < CTX_STEP or self.ctx % CTX_STEP:
            raise UsageError(f"--ctx must be a multiple of {CTX_STEP} (llama.cpp trains on whole blocks of "
                             f"{CTX_STEP} tokens), not {self.ctx}")
        if not 0 <= self.val_split < 1:
            raise UsageError(f"--val-split must be at least 0 and below 1, not {self.val_split}")


@dataclass(frozen=True)
class Needs:
    params: int
    weights: int  # weights, gradients and optimizer state
    kv: int
    compute: int
    disk: int

    @property
    def memory(self) -> int:
        return self.weights + self.kv + self.compute + RUNTIME_BYTES

    def describe(self) -> str:
        return (f"{human_size(self.memory)}: {self.params / 1e6:,.0f}M parameters × 16 bytes "
                f"({human_size(self.weights)}) + KV cache {human_size(self.kv)} + compute {human_size(self.compute)}")


def _int(meta: GGUFMetadata, key: str) -> int | None:
    value = meta.values.get(f"{meta.architecture}.{key}")
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def estimate(meta: GGUFMetadata, ctx: int) -> Needs:
    params = meta.n_params or 0
    layers = _int(meta, "block_count") or 1
    embd = _int(meta, "embedding_length") or 0
    heads = _int(meta, "attention.head_count") or 1
    kv_heads = _int(meta, "attention.head_count_kv") or heads
    head_dim = _int(meta, "attention.key_length") or (embd // heads if heads else 0)
    vocab = meta.vocab_size or _int(meta, "vocab_size") or 0
    kv = 2 * layers * ctx * kv_heads * head_dim * F32
    compute = ctx * vocab * F32 + 3 * layers * heads * ctx * ctx * F32
    # the base converted to F32, then the trained model saved in F32 beside it, then the result
    disk = 2 * params * F32 + meta.path.stat().st_size
    return Needs(params, 16 * params, kv, compute, disk)


def check_model(meta: GGUFMetadata, settings: Settings) -> None:
    if meta.is_adapter:
        raise FinetuneError(f"{meta.path.name} is a LoRA adapter: fine-tune its base model instead")
    if not meta.n_params:
        raise FinetuneError(f"{meta.path.name} has no tensors to train")
    n_ctx_train = meta.context_length
    if n_ctx_train is not None and settings.ctx > n_ctx_train:
        raise UsageError(f"--ctx {settings.ctx} is more than the model's context of {n_ctx_train} tokens")


def check_fits(needs: Needs, ram_available: int | None, folder: Path) -> None:
    """FinetuneError in one line when the run would not fit the memory free now or the disk."""
    if ram_available is not None and needs.memory > ram_available:
        raise FinetuneError(f"fine-tuning this model needs about {needs.describe()}, but {human_size(ram_available)} "
                            "of memory is available; try a smaller --ctx or a smaller model")
    try:
        free = shutil.disk_usage(_existing(folder)).free
    except OSError:
        return
    if needs.disk > free:
        raise FinetuneError(f"fine-tuning this model needs about {human_size(needs.disk)} of disk in {folder} (the "
                            f"F32 copies), but {human_size(free)} is free")


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder
