"""What ``--lora PATH[:SCALE]`` says: an adapter and its scale (whether it fits a model: models/adapters.py).

At the bottom layer: the ``lora`` parameter's declaration (settings.py) parses
its values with these, before anything knows about model files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from gptterm.errors import ParamError

#: how far a scale may go either way (0: the base model; 1: as trained; negative: away from it)
MAX_SCALE = 10.0


@dataclass(frozen=True)
class LoraSpec:
    """One ``--lora`` value: an adapter (a path or a local model's name) and its scale."""

    adapter: str
    scale: float = 1.0

    def text(self) -> str:
        """As the user writes it (``PATH`` or ``PATH:SCALE``)."""
        return self.adapter if self.scale == 1.0 else f"{self.adapter}:{_fmt(self.scale)}"

    def label(self) -> str:
        """Short, for a model's name: the file's stem, and the scale when it is not 1."""
        stem = Path(self.adapter).name.removesuffix(".gguf")
        return stem if self.scale == 1.0 else f"{stem}×{_fmt(self.scale)}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def parse_spec(text: str) -> LoraSpec:
    """``PATH`` or ``PATH:SCALE`` (the last colon, when a number follows it: ``C:\\a.gguf`` stays a path)."""
    raw = text.strip()
    if not raw:
        raise ParamError("lora: an empty adapter name")
    path, sep, tail = raw.rpartition(":")
    scale = 1.0
    if sep and path:
        try:
            scale = float(tail)
        except ValueError:
            path = raw  # a colon inside the path
        else:
            if not math.isfinite(scale) or abs(scale) > MAX_SCALE:
                raise ParamError(f"lora: the scale of {path} must be in -{_fmt(MAX_SCALE)}..{_fmt(MAX_SCALE)}, "
                                 f"not {tail}")
    else:
        path = raw
    return LoraSpec(path.strip(), scale)


def parse_list(text: str) -> tuple[str, ...]:
    """What ``/set lora`` and the Settings field take: adapters separated by commas; empty or 'none' for none."""
    if text.strip().lower() in ("", "none", "off"):
        return ()
    return tuple(parse_spec(part).text() for part in text.split(",") if part.strip())


