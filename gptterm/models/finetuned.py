"""Fine-tuned models: ``<data dir>/finetuned/NAME.gguf`` with ``NAME.json`` beside it.

The JSON says what the model was made from (base model, data file, settings, final losses, perplexity
before and after); it is written last, atomically, so a model is listed only once it is whole. A GGUF
without its JSON (a run that died between the two) is not a model and is replaced by the next run of
that name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gptterm import atomic, paths
from gptterm.errors import ModelError

SOURCE = "finetune"


def folder() -> Path:
    return paths.data_dir() / "finetuned"


def model_file(name: str) -> Path:
    return folder() / f"{name}.gguf"


def info_file(name: str) -> Path:
    return folder() / f"{name}.json"


def listed() -> list[tuple[str, Path, dict[str, Any]]]:
    """(name, model file, what the JSON says) of every fine-tuned model whose JSON can be read."""
    found = []
    try:
        infos = sorted(folder().glob("*.json"))
    except OSError:
        return []
    for info in infos:
        try:
            data = json.loads(info.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            found.append((info.stem, info.with_suffix(".gguf"), data))
    return found


def register(name: str, info: dict[str, Any]) -> None:
    """Make ``NAME.gguf`` (in place already) a listed model, described by ``info``."""
    path = info_file(name)
    try:
        paths.private_dir(path.parent)
        atomic.write_text(path, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    except OSError as err:
        raise ModelError(f"cannot write {path}: {err.strerror}") from None


def remove(name: str) -> int:
    """Delete a fine-tuned model: its JSON first (it is no longer listed), then its file. Bytes freed."""
    freed = 0
    for path in (info_file(name), model_file(name)):
        try:
            size = path.stat().st_size
            path.unlink()
            freed += size
        except FileNotFoundError:
            pass
        except OSError as err:
            raise ModelError(f"cannot delete {path}: {err.strerror}") from None
    return freed


def describe(info: dict[str, Any]) -> str:
    """One line: 'fine-tuned from BASE on DATA, 2 epochs, loss 1.31 → 0.42 (validation 1.25 → 0.60)'."""
    def losses(first: Any, last: Any) -> str:
        if isinstance(first, (int, float)) and isinstance(last, (int, float)):
            return f"{first:.2f} → {last:.2f}"
        return f"{last:.2f}" if isinstance(last, (int, float)) else "?"

    text = f"fine-tuned from {info.get('base', '?')} on {info.get('data', '?')}"
    epochs = info.get("epochs")
    if isinstance(epochs, int):
        text += f", {epochs} epoch{'s' if epochs != 1 else ''}"
    text += f", loss {losses(info.get('first_train_loss'), info.get('train_loss'))}"
    if info.get("val_loss") is not None:
        text += f" (validation {losses(info.get('first_val_loss'), info.get('val_loss'))})"
    return text
