"""What a GGUF file name says: quantization, split part, and whether it is safe to write.

Pure string work shared by the Hub listing and the local store, so neither
needs the other (or huggingface_hub) to read a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_QUANT = "Q4_K_M"

# Approximate bits per weight, used to find the quantization "closest" to the
# default when a repo lacks Q4_K_M (llama.cpp's quantize table, rounded).
BITS_PER_WEIGHT = {
    "IQ1_S": 1.56, "IQ1_M": 1.75, "IQ2_XXS": 2.06, "IQ2_XS": 2.31, "IQ2_S": 2.5, "IQ2_M": 2.7,
    "Q2_K": 2.96, "Q2_K_S": 2.9, "Q2_K_L": 3.1, "IQ3_XXS": 3.06, "IQ3_XS": 3.3, "IQ3_S": 3.44, "IQ3_M": 3.66,
    "Q3_K_S": 3.41, "Q3_K_M": 3.74, "Q3_K_L": 4.03, "Q3_K_XL": 4.1, "IQ4_XS": 4.25, "IQ4_NL": 4.5,
    "Q4_0": 4.34, "Q4_1": 4.78, "Q4_K_S": 4.58, "Q4_K_M": 4.85, "Q4_K_L": 5.0, "Q4_K_XL": 5.0,
    "Q5_0": 5.21, "Q5_1": 5.65, "Q5_K_S": 5.54, "Q5_K_M": 5.69, "Q5_K_L": 5.8, "Q5_K_XL": 5.8,
    "Q6_K": 6.59, "Q6_K_L": 6.7, "Q6_K_XL": 6.7, "Q8_0": 8.5, "Q8_K_XL": 8.6, "MXFP4": 4.25,
    "F16": 16.0, "BF16": 16.0, "F32": 32.0, "TQ1_0": 1.69, "TQ2_0": 2.06,
}

# A quantization tag standing alone between separators: Q4_K_M, IQ3_XXS,
# q8_0, BF16, UD-Q4_K_XL's Q4_K_XL. "Qwen2" does not match (no digit after Q).
_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Za-z0-9]+)*|BF16|FP16|FP32|F16|F32|MXFP4(?:_MOE)?|TQ\d_\d)"
                    r"(?![A-Za-z0-9])", re.IGNORECASE)
_SPLIT = re.compile(r"^(?P<prefix>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


def parse_quant(filename: str) -> str | None:
    """The quantization named in a GGUF file name (upper case), or None."""
    stem = filename.rsplit("/", 1)[-1]
    split = _SPLIT.match(stem)
    stem = split.group("prefix") if split else re.sub(r"\.gguf$", "", stem, flags=re.IGNORECASE)
    found = _QUANT.findall(stem)
    if not found:
        return None
    quant = found[-1].upper()
    return {"FP16": "F16", "FP32": "F32"}.get(quant, quant)


@dataclass(frozen=True)
class SplitPart:
    prefix: str  # the path without "-0000N-of-0000M.gguf"
    part: int
    count: int


def split_part(path: str) -> SplitPart | None:
    """Which part of a split GGUF (``name-00001-of-00003.gguf``) ``path`` is, if any."""
    head, _, name = path.rpartition("/")
    m = _SPLIT.match(name)
    if not m:
        return None
    prefix = f"{head}/{m.group('prefix')}" if head else m.group("prefix")
    return SplitPart(prefix, int(m.group("part")), int(m.group("count")))


def closest_quant(available: list[str], wanted: str = DEFAULT_QUANT) -> str | None:
    """``wanted`` if available, else the one nearest in bits per weight (ties: the larger)."""
    if not available:
        return None
    by_upper = {q.upper(): q for q in available}
    if wanted.upper() in by_upper:
        return by_upper[wanted.upper()]
    target = BITS_PER_WEIGHT.get(wanted.upper(), 4.85)

    def distance(q: str) -> tuple[float, float]:
        bits = BITS_PER_WEIGHT.get(q.upper())
        if bits is None:  # unknown tag: guess from its first number
            m = re.search(r"\d+", q)
            bits = float(m.group()) if m else 99.0
        return (abs(bits - target), -bits)

    return min(available, key=distance)


def unsafe_repo_path(path: str) -> str | None:
    """Why a file path given by a server must not be written under our directory, or None if it is safe.

    A repo path may have folders ("Q4_K_M/model.gguf"); it may not climb out
    ("..") or be absolute, or carry characters that change meaning on some
    file system (backslash, drive colon, control characters).
    """
    if not path or path.startswith("/"):
        return "it is empty or absolute"
    if "\\" in path or ":" in path or any(ord(c) < 32 for c in path):
        return "it contains a backslash, a colon or a control character"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "it contains '..', '.' or an empty path component"
    return None


def human_size(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):  # decimal, as the Hub and rich's progress bar count
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}" if n < 100 else f"{n:.0f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
