"""Writing the user's templates: a new one from a starter (or a copy of a built-in), imported fabric patterns.

Written into ``<config dir>/templates/`` (private, atomic); what is written
is read back first, so a file gptterm wrote always loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gptterm import atomic, paths
from gptterm.errors import GpttermError, UsageError
from gptterm.templates import fabric
from gptterm.templates.library import find_path, is_name, user_dir
from gptterm.templates.parse import parse

STARTER = '''# A gptterm template: 'gptterm -t {name} < input.txt' (see 'gptterm templates show {name}').
# {{input}} is the text the template is applied to (stdin or the prompt); {{name}} a variable
# declared below; write {{{{ and }}}} for literal braces. Nothing else is evaluated.
description = "What this template does, in one line"

system = """
You are a careful assistant.
"""

user = """
Do this with the text below, in a {{tone}} tone.

{{input}}
"""

[variables]
tone = {{ default = "neutral", description = "how the reply sounds" }}
# name = {{ description = "a variable without a default must be given: -V name=…" }}

[params]
temperature = 0.5
# max_tokens = 400

# A JSON Schema the reply must match (a table, a file next to this one, or 'name, age int'):
# schema = "title, summary, tags"
'''


def _check_new_name(name: str) -> None:
    if not is_name(name):
        raise UsageError(f"{name!r} cannot be a template name (letters, digits, '-', '_', '.')")


def write_user(name: str, text: str, *, replace: bool = False) -> Path:
    """Write template ``name`` into the user's templates folder (private, atomic); refuses to overwrite."""
    _check_new_name(name)
    path = user_dir() / f"{name}.toml"
    if path.exists() and not replace:
        raise UsageError(f"template {name} exists already: {path}")
    paths.private_dir(path.parent)
    atomic.write_text(path, text)
    return path


def new(name: str) -> Path:
    """A commented starter file for template ``name``; a built-in of that name is copied instead."""
    found = find_path(name) if is_name(name) else None
    if found is not None and found[1] == "user":
        raise UsageError(f"template {name} exists already: {found[0]}")
    text = found[0].read_text("utf-8") if found is not None else STARTER.format(name=name)
    return write_user(name, text)


@dataclass
class Imported:
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def import_patterns(folder: Path, *, replace: bool = False) -> Imported:
    """Import fabric patterns: ``folder`` is one pattern (it holds system.md) or a folder of them."""
    out = Imported()
    for pattern in fabric.patterns_in(folder.expanduser()):
        name = pattern.name
        if not is_name(name):
            out.failed.append(f"{pattern}: {name!r} cannot be a template name")
            continue
        if (user_dir() / f"{name}.toml").exists() and not replace:
            out.skipped.append(name)
            continue
        try:
            text = fabric.to_toml(fabric.from_fabric(pattern))
            parse(text, name)  # what is written reads back
            out.written.append(write_user(name, text, replace=True))
        except GpttermError as err:
            out.failed.append(str(err))
    return out
