"""Prompt templates and the language list, kept as editable files under ``assets/``.

A user overrides a prompt by putting a file of the same name in
``<config dir>/prompts/`` (``gptterm doctor`` shows the config dir).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from gptterm import paths
from gptterm.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from gptterm.types import Message


def assets_dir() -> Path:
    """``assets/`` of a source checkout or editable install, else the installed data files."""
    here = Path(__file__).resolve().parent.parent / "assets"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "gptterm" / "assets"


@dataclass(frozen=True)
class Prompt:
    name: str
    system: str
    user: str
    source: Path

    def messages(self, **values: str) -> list[Message]:
        """The system (when not empty) and user messages with ``{name}`` placeholders filled.

        Unknown ``{...}`` are left alone; ``{text}`` is inserted verbatim.
        """
        out: list[Message] = []
        system = _tidy(_fill(self.system, values)).strip()
        if system:
            out.append({"role": "system", "content": system})
        head, sep, tail = self.user.partition("{text}")
        out.append({"role": "user", "content": _tidy(_fill(head, values)) + (values.get("text", "") if sep else "")
                    + _fill(tail, values)})
        return out


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def _tidy(text: str) -> str:
    """Collapse the runs of spaces that empty placeholders leave in an instruction."""
    return re.sub(r"[ \t]+\n", "\n", re.sub(r"(?<=\S)[ \t]{2,}", " ", text))


def load_prompt(name: str) -> Prompt:
    override = paths.config_dir() / "prompts" / f"{name}.txt"
    path = override if override.is_file() else assets_dir() / "prompts" / f"{name}.txt"
    try:
        text = path.read_text("utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read prompt template {path}: {err.strerror}") from None
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("#") and current is None:
            continue
        header = line.strip().lower()
        if header in ("[system]", "[user]"):
            current = sections.setdefault(header[1:-1], [])
            continue
        if current is not None:
            current.append(line)
    if "user" not in sections or not any("{text}" in line for line in sections["user"]):
        raise ConfigError(f"prompt template {path} needs a [user] section containing {{text}}")
    return Prompt(name, "\n".join(sections.get("system", [])).strip(), "\n".join(sections["user"]).strip(), path)


@lru_cache(maxsize=1)
def languages() -> dict[str, tuple[str, str]]:
    """Language code -> (English name, native name)."""
    out = {}
    for line in (assets_dir() / "languages.tsv").read_text("utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        code, name, native = (line.split("\t") + ["", ""])[:3]
        out[code] = (name, native or name)
    return out


def language_name(code: str) -> str:
    """English name for a code (or a name typed in full); UsageError listing valid codes otherwise."""
    langs = languages()
    key = code.strip().lower()
    if key in langs:
        return langs[key][0]
    for name, native in langs.values():
        if key in (name.lower(), native.lower()):
            return name
    raise UsageError(f"unknown language {code!r}; valid codes: {', '.join(sorted(langs))}")


def language_code(code_or_name: str) -> str:
    name = language_name(code_or_name)
    return next(c for c, (n, _) in languages().items() if n == name)
