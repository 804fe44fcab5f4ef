"""Which catalog model suits a task on this machine, and one word when the loaded model does not.

Every face asks the same two things: ``profile_for(info)`` says what the
loaded model is good for (the bundled model, a catalog download, or a model
of a known family by its name), and ``check(profile, task, languages)``
returns an ``Advice`` when it does not cover the task or a language: a
line naming the best catalog model for this machine and the exact
``gptterm models pull`` command. "Best for this machine" means the highest
ranked entry that covers the task and languages, fits the free memory and
the disk, and runs at a usable speed: without a GPU that llama.cpp can use,
up to 2B parameters on 4 cores or fewer, 4B up to 8 cores, 8B beyond.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gptterm.assets import language_name
from gptterm.models import bundled
from gptterm.models import machine as host  # the module, not this_machine: "machine" is a Machine here
from gptterm.models.catalog import BUNDLED, CATALOG, CatalogEntry, Profile, entry_for_file, family_profile, profile_of
from gptterm.models.names import human_size
from gptterm.models.store import hub_cache_dir

if TYPE_CHECKING:
    from gptterm.types import ModelInfo
    from gptterm.models.machine import Machine

#: what each task is called in a sentence ("too small to ...")
VERBS = {"chat": "chat", "summarize": "summarize", "translate": "translate", "ask": "answer from documents",
         "code": "write code", "embed": "embed passages"}


@dataclass(frozen=True)
class Advice:
    #: why the loaded model falls short, and what would do better
    text: str
    #: the catalog model recommended for this machine (None: none fits)
    entry: CatalogEntry | None = None

    @property
    def pull(self) -> str | None:
        """The exact command that downloads the recommended model."""
        return f"gptterm models pull {self.entry.id}" if self.entry is not None else None

    def line(self) -> str:
        """One line for stderr or a notification."""
        return self.text


def hub_file(path: str | Path) -> tuple[str, str] | None:
    """(repo, file in the repo) of a model in the Hugging Face cache, read from its path."""
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if part.startswith("models--") and i + 2 < len(parts) and parts[i + 1] == "snapshots":
            owner, _, name = part[len("models--"):].partition("--")
            return f"{owner}/{name}", "/".join(parts[i + 3:])
    return None


def profile_for(info: ModelInfo) -> Profile | None:
    """What the loaded model is good for; None for a model gptterm knows nothing about."""
    if not info.remote and info.path:
        path = bundled.bundled_model_path()
        if path is not None and _same(path, info.path):
            return BUNDLED
        found = hub_file(info.path)
        if found is not None:
            entry = entry_for_file(*found)
            if entry is not None:
                return profile_of(entry)
    for name in (info.name, Path(info.path or "").name):
        if name:
            profile = family_profile(name, info.n_params)
            if profile is not None:
                return profile
    return None


def _same(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def practical_billions(machine: Machine) -> float:
    """The largest model (in billions of parameters) this machine runs at a usable speed."""
    if machine.gpu_usable:
        return float("inf")
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return 2.0 if cores <= 4 else 4.0 if cores <= 8 else 8.0


def disk_free() -> int | None:
    probe = hub_cache_dir()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def ranked(task: str, languages: tuple[str, ...] = (), *, entries: tuple[CatalogEntry, ...] = CATALOG
           ) -> list[CatalogEntry]:
    """The entries that cover ``task`` in ``languages``, best first (rank, then the smaller download)."""
    return sorted((e for e in entries if e.covers(task, languages)), key=lambda e: (-e.rank, e.size))


def suits_machine(entry: CatalogEntry, machine: Machine, free: int | None) -> bool:
    return (machine.fits(entry.memory_needed()) == "yes" and (free is None or entry.size <= free)
            and entry.billions <= practical_billions(machine))


def recommend(task: str, languages: tuple[str, ...] = (), *, machine: Machine | None = None,
              free: int | None = None) -> CatalogEntry | None:
    """The best catalog model for ``task`` in ``languages`` that suits this machine (None: none does)."""
    machine = machine or host.this_machine()
    free = disk_free() if free is None else free
    return next((e for e in ranked(task, languages) if suits_machine(e, machine, free)), None)


def check(profile: Profile | None, task: str, languages: tuple[str, ...] = (), *,
          machine: Machine | None = None, free: int | None = None) -> Advice | None:
    """An Advice when ``profile`` does not cover ``task`` (its size handles it badly) or one of
    ``languages`` (codes); None when it does, or when nothing is known about the model."""
    if profile is None:
        return None
    missing = [c for c in dict.fromkeys(languages) if not profile.speaks(c)]
    if not missing and task in profile.tasks:
        return None
    if missing:
        named = [language_name(c) for c in profile.languages if c != "*"]
        known = (f"{named[0]} only" if len(named) == 1 else ", ".join(named[:6]) + (", …" if len(named) > 6 else "")
                 ) if named else "few languages"
        names = " or ".join(language_name(c) for c in missing)
        why = f"{profile.name} knows {known}, not {names}: expect a poor {_noun(task)}"
    else:
        why = f"{profile.name} is too small to {VERBS.get(task, task)} well (it is good for {', '.join(profile.tasks)})"
    entry = recommend(task, languages, machine=machine, free=free)
    if entry is None or (profile.entry is not None and entry.id == profile.entry.id):
        hint = f"gptterm models catalog --for {task}" + (f" --lang {languages[0]}" if languages else "")
        return Advice(f"{why}; no catalog model that does better fits this machine (see '{hint}')")
    return Advice(f"{why}. Better on this machine: {entry.id} ({entry.params}, {human_size(entry.size)}): "
                  f"gptterm models pull {entry.id}, then add -m {entry.id}", entry)


def tools_advice(info: ModelInfo, *, machine: Machine | None = None, free: int | None = None) -> Advice | None:
    """An Advice when the loaded model was not trained to call tools (its chat template has no tools section):
    gptterm's fallback asks it for <tool_call> blocks, which such a model rarely writes on its own."""
    if info.remote or info.tools:
        return None
    machine = machine or host.this_machine()
    free = disk_free() if free is None else free
    entry = next((e for e in ranked("chat") if e.tool_calls and suits_machine(e, machine, free)), None)
    why = (f"{info.name}'s chat template has no tools section: it was not trained to call tools, and rarely calls "
           "one unless told to (tool_choice)")
    if entry is None:
        return Advice(f"{why}; no tool-calling catalog model fits this machine ('gptterm models catalog' marks them)")
    return Advice(f"{why}. Better on this machine: {entry.id} ({entry.params}, {human_size(entry.size)}), which calls "
                  f"tools: gptterm models pull {entry.id}, then add -m {entry.id}", entry)


def _noun(task: str) -> str:
    return {"translate": "translation", "summarize": "summary", "ask": "answer", "chat": "reply"}.get(task, "result")


# Scripts that name their language well enough for advice (a prompt in Latin script is not guessed:
# a short English, French or code prompt looks alike to a language identifier).
_SCRIPTS = ((0x3040, 0x30FF, "ja"), (0xAC00, 0xD7AF, "ko"), (0x1100, 0x11FF, "ko"), (0x4E00, 0x9FFF, "zh"),
            (0x3400, 0x4DBF, "zh"), (0x0400, 0x04FF, "ru"), (0x0600, 0x06FF, "ar"), (0x0900, 0x097F, "hi"),
            (0x0E00, 0x0E7F, "th"), (0x0370, 0x03FF, "el"), (0x0590, 0x05FF, "he"))


def script_language(text: str) -> str | None:
    """The language a prompt's script names (Chinese, Japanese, Korean, Russian, Arabic, Hindi, Thai, Greek,
    Hebrew), when at least a third of its letters (and 4 or more) are in it; else None."""
    counts: dict[str, int] = {}
    letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        code = ord(ch)
        for low, high, lang in _SCRIPTS:
            if low <= code <= high:
                counts[lang] = counts.get(lang, 0) + 1
                break
    if not counts:
        return None
    if counts.get("ja") and counts.get("zh"):  # kana with kanji: Japanese
        counts["ja"] += counts.pop("zh")
    lang, n = max(counts.items(), key=lambda kv: kv[1])
    return lang if n >= 4 and n * 3 >= letters else None
