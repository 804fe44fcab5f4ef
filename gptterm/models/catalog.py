"""A short, curated list of models that run well in llama.cpp, by size, with what each is good for.

Sizes are the Hub's file sizes at the time of writing (a pull always uses
the Hub's current size and sha256). Memory needs are estimated from the file
size plus the KV cache at gptterm's default context (f16 cache, so the
shape of each model is recorded here) plus llama.cpp's buffers.

Each entry says what it is good for: its languages (``("*",)``: a hundred or
more, as its makers state), the tasks its size handles (``chat``,
``summarize``, ``translate``, ``ask``, ``code``; ``embed`` for embedding
models, which ``ask --embed-model`` uses), its training context, licence and
whether its repo is gated (needs ``HF_TOKEN``). An entry whose exact file
name could not be checked names no file: its repo and preferred
quantization are resolved when pulling (``hub.choose``). ``BUNDLED``
describes the model that ships with gptterm; its tasks are the ones
``bench/quality.py`` supports (``bench/README.md``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gptterm.assets import language_name
from gptterm.models.machine import Machine
from gptterm.models.names import parse_quant
from gptterm.settings import BY_NAME

MB = 1000**2
# llama.cpp's compute buffers and the runtime beyond weights and cache
OVERHEAD = 150 * MB

#: languages as their makers list them ("*": a hundred or more)
EN = ("en",)
MANY = ("*",)
QWEN25 = ("zh", "en", "fr", "es", "pt", "de", "it", "ru", "ja", "ko", "vi", "th", "ar")
LLAMA3 = ("en", "de", "fr", "it", "pt", "hi", "es", "th")
SMOLLM3 = ("en", "fr", "es", "de", "it", "pt")
PHI4 = ("ar", "zh", "cs", "da", "nl", "en", "fi", "fr", "de", "he", "hu", "it", "ja", "ko", "no", "pl", "pt", "ru",
        "es", "sv", "th", "tr", "uk")

CHAT = ("chat",)
#: what bench/quality.py measured the bundled SmolLM2-135M doing acceptably (bench/README.md): its short
#: summaries cover 84% of the key points; no translation clears chrF 40 (into Chinese: 0.8)
BUNDLED_TASKS = ("chat", "summarize")
SMALL = ("chat", "summarize", "ask")
SMALL_ML = ("chat", "summarize", "translate", "ask")
MEDIUM = ("chat", "summarize", "translate", "ask", "code")
EMBED = ("embed",)

from gptterm.models.tasks import TASKS  # noqa: E402,F401  (re-exported: catalog.TASKS)


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    family: str
    params: str  # "135M", "1.5B"
    size_class: str  # tiny, small, medium, large
    repo: str
    file: str  # the first part for a split model; "" when the file is chosen at pull time by ``quant``
    quant: str
    size: int  # all parts together, bytes
    n_layer: int
    n_kv_head: int
    head_dim: int
    ctx_train: int
    note: str = ""
    languages: tuple[str, ...] = EN
    tasks: tuple[str, ...] = SMALL
    licence: str = "Apache-2.0"
    gated: bool = False
    #: writes a <think> block before its answer; True: and its template can switch it off
    thinking: bool = False
    #: a rough quality rank within the catalog (higher is better), for ranking and advice
    rank: int = 0
    #: can call tools (gptterm.tools): its template has a tools section (Qwen, Llama 3.x, SmolLM3, Phi-4-mini),
    #: or its makers document a prompted format gptterm speaks (Gemma 3)
    tool_calls: bool = False

    def kv_cache_bytes(self, ctx: int) -> int:
        if self.tasks == EMBED:
            return 0
        return 2 * self.n_layer * self.n_kv_head * self.head_dim * 2 * min(ctx, self.ctx_train)

    def memory_needed(self, ctx: int | None = None) -> int:
        ctx = ctx or BY_NAME["ctx"].default
        return self.size + self.kv_cache_bytes(ctx) + OVERHEAD

    @property
    def kind(self) -> str:
        return "embed" if "embed" in self.tasks else "chat"

    @property
    def spec(self) -> str:
        """What ``gptterm models pull`` is given for this entry."""
        return f"{self.repo}/{self.file}" if self.file else f"{self.repo}:{self.quant}"

    @property
    def billions(self) -> float:
        number = float(self.params[:-1])
        return number / 1000 if self.params.endswith("M") else number

    def speaks(self, code: str) -> bool:
        return "*" in self.languages or code in self.languages

    def covers(self, task: str, languages: tuple[str, ...] = ()) -> bool:
        return task in self.tasks and all(self.speaks(c) for c in languages)


E = CatalogEntry
CATALOG: tuple[CatalogEntry, ...] = (
    E("smollm2-135m", "SmolLM2", "135M", "tiny", "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
      "smollm2-135m-instruct-q8_0.gguf", "Q8_0", 145 * MB, 30, 3, 64, 8192,
      "fast on any machine; English chat and short summaries", EN, BUNDLED_TASKS, rank=1),
    E("gemma3-270m", "Gemma 3", "270M", "tiny", "ggml-org/gemma-3-270m-it-GGUF", "", "Q8_0", 292 * MB,
      18, 1, 256, 32768, "made to be fine-tuned; simple instructions", EN, CHAT, "Gemma", rank=2),
    E("smollm2-360m", "SmolLM2", "360M", "tiny", "HuggingFaceTB/SmolLM2-360M-Instruct-GGUF",
      "smollm2-360m-instruct-q8_0.gguf", "Q8_0", 386 * MB, 32, 5, 64, 8192, "", EN, CHAT, rank=2),
    E("qwen2.5-0.5b", "Qwen2.5", "0.5B", "small", "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
      "qwen2.5-0.5b-instruct-q4_k_m.gguf", "Q4_K_M", 491 * MB, 24, 2, 64, 32768,
      "multilingual; good for translation at this size", QWEN25, SMALL_ML, rank=3, tool_calls=True),
    E("qwen3-0.6b", "Qwen3", "0.6B", "small", "Qwen/Qwen3-0.6B-GGUF", "", "Q8_0", 639 * MB, 28, 8, 128, 32768,
      "thinks before answering (/no_think turns it off)", MANY, SMALL_ML, thinking=True, rank=4, tool_calls=True),
    E("gemma3-1b", "Gemma 3", "1B", "small", "ggml-org/gemma-3-1b-it-GGUF", "", "Q4_K_M", 806 * MB,
      26, 1, 256, 32768, "", EN, SMALL, "Gemma", rank=4, tool_calls=True),
    E("llama3.2-1b", "Llama 3.2", "1B", "small", "bartowski/Llama-3.2-1B-Instruct-GGUF",
      "Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M", 808 * MB, 16, 8, 64, 131072, "", LLAMA3, SMALL_ML,
      "Llama 3.2 Community", rank=4, tool_calls=True),
    E("smollm2-1.7b", "SmolLM2", "1.7B", "small", "HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF",
      "smollm2-1.7b-instruct-q4_k_m.gguf", "Q4_K_M", 1060 * MB, 24, 32, 64, 8192, "", EN, SMALL, rank=4),
    E("qwen2.5-1.5b", "Qwen2.5", "1.5B", "small", "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
      "qwen2.5-1.5b-instruct-q4_k_m.gguf", "Q4_K_M", 1120 * MB, 28, 2, 128, 32768,
      "a good default on a laptop", QWEN25, SMALL_ML, rank=5, tool_calls=True),
    E("qwen3-1.7b", "Qwen3", "1.7B", "small", "Qwen/Qwen3-1.7B-GGUF", "", "Q8_0", 1830 * MB, 28, 8, 128, 32768,
      "thinks before answering (/no_think turns it off)", MANY, MEDIUM, thinking=True, rank=6, tool_calls=True),
    E("smollm3-3b", "SmolLM3", "3B", "medium", "ggml-org/SmolLM3-3B-GGUF", "", "Q4_K_M", 1920 * MB,
      36, 4, 128, 65536, "thinks when asked (/think)", SMOLLM3, MEDIUM, thinking=True, rank=7, tool_calls=True),
    E("llama3.2-3b", "Llama 3.2", "3B", "medium", "bartowski/Llama-3.2-3B-Instruct-GGUF",
      "Llama-3.2-3B-Instruct-Q4_K_M.gguf", "Q4_K_M", 2020 * MB, 28, 8, 128, 131072, "", LLAMA3, MEDIUM,
      "Llama 3.2 Community", rank=6, tool_calls=True),
    E("qwen2.5-3b", "Qwen2.5", "3B", "medium", "Qwen/Qwen2.5-3B-Instruct-GGUF",
      "qwen2.5-3b-instruct-q4_k_m.gguf", "Q4_K_M", 2100 * MB, 36, 2, 128, 32768, "", QWEN25, MEDIUM,
      "Qwen Research", rank=6, tool_calls=True),
    E("phi4-mini", "Phi-4", "3.8B", "medium", "bartowski/microsoft_Phi-4-mini-instruct-GGUF", "", "Q4_K_M",
      2490 * MB, 32, 8, 128, 131072, "strong at reasoning and code for its size", PHI4, MEDIUM, "MIT", rank=7, tool_calls=True),
    E("gemma3-4b", "Gemma 3", "4B", "medium", "ggml-org/gemma-3-4b-it-GGUF", "", "Q4_K_M", 2490 * MB,
      34, 4, 256, 131072, "", MANY, MEDIUM, "Gemma", rank=8, tool_calls=True),
    E("qwen3-4b", "Qwen3", "4B", "medium", "Qwen/Qwen3-4B-GGUF", "", "Q4_K_M", 2500 * MB, 36, 8, 128, 32768,
      "thinks before answering (/no_think turns it off)", MANY, MEDIUM, thinking=True, rank=8, tool_calls=True),
    E("qwen2.5-7b", "Qwen2.5", "7B", "large", "Qwen/Qwen2.5-7B-Instruct-GGUF",
      "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M", 4680 * MB, 28, 4, 128, 32768,
      "split in two files on the Hub; pulled and loaded as one model", QWEN25, MEDIUM, rank=8, tool_calls=True),
    E("llama3.1-8b", "Llama 3.1", "8B", "large", "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
      "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf", "Q4_K_M", 4920 * MB, 32, 8, 128, 131072,
      "Llama 3.2 has no 8B; this is its 3.1 sibling", LLAMA3, MEDIUM, "Llama 3.1 Community", rank=8, tool_calls=True),
    E("qwen3-8b", "Qwen3", "8B", "large", "Qwen/Qwen3-8B-GGUF", "", "Q4_K_M", 5030 * MB, 36, 8, 128, 32768,
      "thinks before answering (/no_think turns it off)", MANY, MEDIUM, thinking=True, rank=9, tool_calls=True),
    E("gemma3-12b", "Gemma 3", "12B", "large", "ggml-org/gemma-3-12b-it-GGUF", "", "Q4_K_M", 7300 * MB,
      48, 8, 256, 131072, "", MANY, MEDIUM, "Gemma", rank=10, tool_calls=True),
    # embedding models, for 'gptterm ask --embed-model ID'
    E("bge-small-en", "BGE", "33M", "tiny", "CompendiumLabs/bge-small-en-v1.5-gguf", "", "Q8_0", 36 * MB,
      12, 12, 32, 512, "embeddings for ask --embed-model", EN, EMBED, "MIT", rank=2),
    E("nomic-embed", "Nomic Embed", "137M", "tiny", "nomic-ai/nomic-embed-text-v1.5-GGUF", "", "Q8_0",
      146 * MB, 12, 12, 64, 2048, "embeddings for ask --embed-model", EN, EMBED, rank=3),
    E("qwen3-embed-0.6b", "Qwen3", "0.6B", "small", "Qwen/Qwen3-Embedding-0.6B-GGUF", "", "Q8_0", 639 * MB,
      28, 8, 128, 32768, "multilingual embeddings for ask --embed-model", MANY, EMBED, rank=4),
)

BY_ID = {e.id: e for e in CATALOG}


@dataclass(frozen=True)
class Profile:
    """What a model is good for: a catalog entry's claims, or those of the bundled model or a family."""

    name: str
    languages: tuple[str, ...]
    tasks: tuple[str, ...]
    size_class: str
    context: int | None = None
    licence: str | None = None
    thinking: bool = False
    entry: CatalogEntry | None = None

    def speaks(self, code: str) -> bool:
        return "*" in self.languages or code in self.languages

    def summary(self) -> str:
        """'English; chat' — languages and tasks, as the welcome and the advice say them."""
        return f"{languages_text(self.languages, long=True)}; good for {', '.join(self.tasks)}"


def profile_of(entry: CatalogEntry) -> Profile:
    return Profile(entry.id, entry.languages, entry.tasks, entry.size_class, entry.ctx_train, entry.licence,
                   entry.thinking, entry)


#: the model that ships with gptterm (SmolLM2-135M-Instruct, Q4_1): English only, and its
#: tasks are those bench/quality.py measured it doing acceptably (bench/README.md)
BUNDLED = Profile("SmolLM2-135M-Instruct (the bundled model)", EN, BUNDLED_TASKS, "tiny", 8192, "Apache-2.0")

# Families recognised from a file's or a server model's name, for models not pulled from the catalog:
# (pattern, languages, thinking).
FAMILIES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    (r"smollm3", SMOLLM3, True),
    (r"smollm", EN, False),
    (r"qwen3", MANY, True),
    (r"qwq|deepseek-r1", ("en", "zh"), True),
    (r"qwen", QWEN25, False),
    (r"gemma-?3-?(270m|1b)", EN, False),
    (r"gemma", MANY, False),
    (r"llama", LLAMA3, False),
    (r"phi-?4", PHI4, False),
)


def size_class(n_params: int | None) -> str | None:
    if not n_params:
        return None
    b = n_params / 1e9
    return "tiny" if b < 0.45 else "small" if b < 2.5 else "medium" if b < 5.5 else "large"


TASKS_BY_CLASS = {"tiny": CHAT, "small": SMALL, "medium": MEDIUM, "large": MEDIUM}


def family_profile(name: str, n_params: int | None) -> Profile | None:
    """What a model of a known family is good for, from its name (file, GGUF or server model name)."""
    key = name.lower()
    for pattern, langs, thinking in FAMILIES:
        if re.search(pattern, key):
            cls = size_class(n_params) or "small"
            tasks = TASKS_BY_CLASS[cls]
            if cls != "tiny" and langs != EN:
                tasks = tuple(dict.fromkeys((*tasks[:2], "translate", *tasks[2:])))
            return Profile(name, langs, tasks, cls, thinking=thinking)
    return None


def find_entry(name: str) -> CatalogEntry | None:
    return BY_ID.get(name.strip().lower())


def entry_for_file(repo: str, file: str) -> CatalogEntry | None:
    """The entry a Hub file belongs to: its file, or (an entry resolved at pull time) its repo and quantization."""
    for e in CATALOG:
        if e.repo.lower() != repo.lower():
            continue
        if e.file.lower() == file.lower() if e.file else (parse_quant(file) or "").upper() == e.quant:
            return e
    return None


def languages_text(languages: tuple[str, ...], *, long: bool = False) -> str:
    """'en', 'en fr es de it pt', '13 languages', '100+ languages' (long: English names for few)."""
    if "*" in languages:
        return "100+ languages"
    if long and len(languages) <= 3:
        return " and ".join(language_name(c) for c in languages) + (" only" if len(languages) == 1 else "")
    return " ".join(languages) if len(languages) <= 6 else f"{len(languages)} languages"


def context_text(n: int) -> str:
    return f"{n // 1024}K" if n >= 1024 else str(n)


def rows(machine: Machine, ctx: int | None = None, *, entries: tuple[CatalogEntry, ...] = CATALOG) -> list[dict]:
    """The catalog with memory needs and fit on ``machine``, as plain data (CLI table, --json, TUI)."""
    out = []
    for e in entries:
        need = e.memory_needed(ctx)
        out.append({"id": e.id, "family": e.family, "params": e.params, "class": e.size_class, "repo": e.repo,
                    "file": e.file or None, "quant": e.quant, "size": e.size, "memory": need,
                    "fits": machine.fits(need), "note": e.note, "languages": list(e.languages),
                    "tasks": list(e.tasks), "context": e.ctx_train, "licence": e.licence, "gated": e.gated,
                    "thinking": e.thinking, "tool_calls": e.tool_calls, "kind": e.kind, "spec": e.spec})
    return out
