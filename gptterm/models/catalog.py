"""A short, curated list of chat models that run well in llama.cpp, by size.

Sizes are the Hub's file sizes at the time of writing (a pull always uses
the Hub's current size and sha256). Memory needs are estimated from the file
size plus the KV cache at gptterm's default context (f16 cache, so the
shape of each model is recorded here) plus llama.cpp's buffers.
"""

from __future__ import annotations

from dataclasses import dataclass

from gptterm.models.machine import Machine
from gptterm.settings import BY_NAME

GB = 1000**3
MB = 1000**2
# llama.cpp's compute buffers and the runtime beyond weights and cache
OVERHEAD = 150 * MB


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    family: str
    params: str  # "135M", "1.5B"
    size_class: str
    repo: str
    file: str  # the first part for a split model
    quant: str
    size: int  # all parts together, bytes
    n_layer: int
    n_kv_head: int
    head_dim: int
    ctx_train: int
    note: str = ""

    def kv_cache_bytes(self, ctx: int) -> int:
        return 2 * self.n_layer * self.n_kv_head * self.head_dim * 2 * min(ctx, self.ctx_train)

    def memory_needed(self, ctx: int | None = None) -> int:
        ctx = ctx or BY_NAME["ctx"].default
        return self.size + self.kv_cache_bytes(ctx) + OVERHEAD

    @property
    def spec(self) -> str:
        """What ``gptterm models pull`` is given for this entry."""
        return f"{self.repo}/{self.file}"


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry("smollm2-135m", "SmolLM2", "135M", "tiny", "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
                 "smollm2-135m-instruct-q8_0.gguf", "Q8_0", 145 * MB, 30, 3, 64, 8192,
                 "fast on any machine; simple answers"),
    CatalogEntry("smollm2-360m", "SmolLM2", "360M", "tiny", "HuggingFaceTB/SmolLM2-360M-Instruct-GGUF",
                 "smollm2-360m-instruct-q8_0.gguf", "Q8_0", 386 * MB, 32, 5, 64, 8192),
    CatalogEntry("qwen2.5-0.5b", "Qwen2.5", "0.5B", "small", "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
                 "qwen2.5-0.5b-instruct-q4_k_m.gguf", "Q4_K_M", 491 * MB, 24, 2, 64, 32768,
                 "multilingual; good for translation at this size"),
    CatalogEntry("llama3.2-1b", "Llama 3.2", "1B", "small", "bartowski/Llama-3.2-1B-Instruct-GGUF",
                 "Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M", 808 * MB, 16, 8, 64, 131072),
    CatalogEntry("smollm2-1.7b", "SmolLM2", "1.7B", "small", "HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF",
                 "smollm2-1.7b-instruct-q4_k_m.gguf", "Q4_K_M", 1060 * MB, 24, 32, 64, 8192),
    CatalogEntry("qwen2.5-1.5b", "Qwen2.5", "1.5B", "small", "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
                 "qwen2.5-1.5b-instruct-q4_k_m.gguf", "Q4_K_M", 1120 * MB, 28, 2, 128, 32768,
                 "a good default on a laptop"),
    CatalogEntry("llama3.2-3b", "Llama 3.2", "3B", "medium", "bartowski/Llama-3.2-3B-Instruct-GGUF",
                 "Llama-3.2-3B-Instruct-Q4_K_M.gguf", "Q4_K_M", 2020 * MB, 28, 8, 128, 131072),
    CatalogEntry("qwen2.5-3b", "Qwen2.5", "3B", "medium", "Qwen/Qwen2.5-3B-Instruct-GGUF",
                 "qwen2.5-3b-instruct-q4_k_m.gguf", "Q4_K_M", 2100 * MB, 36, 2, 128, 32768),
    CatalogEntry("qwen2.5-7b", "Qwen2.5", "7B", "large", "Qwen/Qwen2.5-7B-Instruct-GGUF",
                 "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M", 4680 * MB, 28, 4, 128, 32768,
                 "split in two files on the Hub; pulled and loaded as one model"),
    CatalogEntry("llama3.1-8b", "Llama 3.1", "8B", "large", "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
                 "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", "Q4_K_M", 4920 * MB, 32, 8, 128, 131072,
                 "Llama 3.2 has no 8B; this is its 3.1 sibling"),
)

BY_ID = {e.id: e for e in CATALOG}


def find_entry(name: str) -> CatalogEntry | None:
    return BY_ID.get(name.strip().lower())


def entry_for_file(repo: str, file: str) -> CatalogEntry | None:
    for e in CATALOG:
        if e.repo.lower() == repo.lower() and e.file.lower() == file.lower():
            return e
    return None


def rows(machine: Machine, ctx: int | None = None) -> list[dict]:
    """The catalog with memory needs and fit on ``machine``, as plain data (CLI table, --json, TUI)."""
    out = []
    for e in CATALOG:
        need = e.memory_needed(ctx)
        out.append({"id": e.id, "family": e.family, "params": e.params, "class": e.size_class, "repo": e.repo,
                    "file": e.file, "quant": e.quant, "size": e.size, "memory": need, "fits": machine.fits(need),
                    "note": e.note})
    return out
