"""LoRA adapters: what ``--lora PATH[:SCALE]`` names, and whether an adapter fits a model.

An adapter is a GGUF file with ``general.type = adapter`` and ``adapter.type =
lora``, made for one architecture (``general.architecture``) and one size of
it: each pair ``blk.N.NAME.weight.lora_a`` / ``.lora_b`` adds a low-rank
product to the model's ``blk.N.NAME.weight``, so their shapes must agree with
that tensor's. Checked here from the headers, before llama.cpp loads anything,
so a mismatch is one line that says which and why (llama.cpp itself would only
say that loading failed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptterm.adapter_spec import MAX_SCALE, LoraSpec, parse_list, parse_spec
from gptterm.errors import ModelError, ParamError
from gptterm.models.gguf_meta import GGUFMetadata, read_metadata

__all__ = ["MAX_SCALE", "LoraSpec", "parse_list", "parse_spec"]  # the specs' grammar lives at the bottom layer

def resolve(spec: LoraSpec) -> Path:
    """The adapter's file: a path, or the name of a local model ('gptterm models ls' lists adapters too)."""
    # only resolving an adapter needs it (this module is on the path of 'models ls')
    from gptterm.models.resolve import resolve_model

    try:
        return resolve_model(spec.adapter)
    except ModelError as err:
        raise ModelError(f"LoRA adapter: {err}") from None


def _read(path: Path) -> GGUFMetadata:
    try:
        return read_metadata(path)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read the LoRA adapter {path}: {err}") from None


def adapter_for(path: Path) -> str | None:
    """The base architecture of the LoRA adapter at ``path`` ('?' when its header does not say); None for a
    model (or a file that cannot be read: the model listings say that themselves)."""
    try:
        meta = read_metadata(path)
    except (OSError, ValueError):
        return None
    return (meta.architecture or "?") if meta.is_adapter else None


def describe(meta: GGUFMetadata) -> dict[str, Any]:
    """What an adapter's header says: its kind, base architecture, rank, alpha, base model (when recorded)."""
    pairs = _pairs(meta)
    ranks = sorted({shape_a[1] for shape_a, _ in pairs.values() if len(shape_a) == 2})
    base = meta.values.get("general.base_model.0.name") or meta.values.get("general.base_model.0.repo_url")
    return {"adapter_type": meta.values.get("adapter.type"), "base_architecture": meta.architecture,
            "alpha": meta.values.get("adapter.lora.alpha"), "rank": ranks[0] if len(ranks) == 1 else ranks or None,
            "tensors": len(pairs), "base_model": base}


def _pairs(meta: GGUFMetadata) -> dict[str, tuple[list[int], list[int]]]:
    """base tensor name -> (lora_a dims, lora_b dims)."""
    out: dict[str, tuple[list[int], list[int]]] = {}
    for name, dims in meta.tensors.items():
        if name.endswith(".lora_a"):
            base = name.removesuffix(".lora_a")
            out[base] = (dims, meta.tensors.get(base + ".lora_b", []))
    return out


def _dims(d: list[int]) -> str:
    return "×".join(map(str, d))


def mismatch(adapter: GGUFMetadata, model: GGUFMetadata) -> str | None:
    """Why ``adapter`` cannot be applied to ``model`` (one line), or None when it fits."""
    name = adapter.path.name
    if not adapter.is_adapter:
        kind = adapter.values.get("general.type") or "model"
        return f"{name} is not a LoRA adapter (its general.type is {kind!r}): load a model with -m, not --lora"
    if adapter.values.get("adapter.type") != "lora":
        return f"{name} is a {adapter.values.get('adapter.type') or 'unknown'} adapter, not a LoRA adapter"
    model_name = model.name or model.path.name
    if adapter.architecture != model.architecture:
        return (f"the LoRA adapter {name} is for {adapter.architecture or 'an unknown architecture'} models; "
                f"{model_name} is {model.architecture or 'of an unknown architecture'}")
    pairs = _pairs(adapter)
    if not pairs:
        return f"the LoRA adapter {name} holds no lora_a/lora_b tensor pairs"
    for base, (a, b) in sorted(pairs.items()):
        target = model.tensors.get(base)
        if len(a) != 2 or len(b) != 2:
            return f"the LoRA adapter {name} is damaged: the tensor pair of {base} is incomplete"
        if target is None:
            return (f"the LoRA adapter {name} does not fit {model_name}: the model has no tensor {base} "
                    f"(an adapter for another model of the {model.architecture} architecture)")
        # llama.cpp's own checks (src/llama-adapter.cpp): token_embd's pair is stored flipped
        if base.endswith("token_embd.weight"):
            expected = [b[1], a[1]]
        else:
            expected = [a[0], b[1]] if a[1] == b[0] else []
        if expected != target[:2]:
            return (f"the LoRA adapter {name} does not fit {model_name}: {base} is {_dims(target[:2])} in the model "
                    f"but {_dims(expected or a + b)} in the adapter (an adapter for another size of "
                    f"{model.architecture})")
    return None


@dataclass(frozen=True)
class Adapter:
    spec: LoraSpec
    path: Path


def check(specs: tuple[str, ...] | list[str], model_path: Path) -> list[Adapter]:
    """The adapters ``specs`` name, each checked against the model; a ModelError (one line) for the first
    that is missing, not an adapter, or made for another architecture or size."""
    if not specs:
        return []
    model = _read(model_path)
    out: list[Adapter] = []
    for text in specs:
        spec = parse_spec(text)
        path = resolve(spec)
        reason = mismatch(_read(path), model)
        if reason:
            raise ModelError(reason)
        out.append(Adapter(spec, path))
    return out


def fits(adapter_path: Path, models: list[tuple[str, Path]]) -> list[str]:
    """The names among ``models`` (name, path) that ``adapter_path`` fits."""
    adapter = _read(adapter_path)
    found = []
    for name, path in models:
        try:
            meta = read_metadata(path)
        except (OSError, ValueError):
            continue
        if not meta.is_adapter and mismatch(adapter, meta) is None:
            found.append(name)
    return found
