"""fabric patterns as templates: a folder holding ``system.md`` (and maybe ``user.md``).

A pattern is used by its path, or imported into the user's templates as TOML
(``gptterm templates import DIR``, ``create.import_patterns``). fabric's
``{{name}}`` becomes a variable; every other brace stays text.
"""

from __future__ import annotations

import re
from pathlib import Path

from gptterm.errors import ConfigError, UsageError
from gptterm.templates.parse import decode
from gptterm.templates.template import INPUT, Template, Variable, uses_input

_FABRIC_VAR = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")


def _from_fabric_text(text: str) -> tuple[str, list[str]]:
    """fabric's ``{{name}}`` as ``{name}``; every other brace made literal."""
    names: list[str] = []
    out: list[str] = []
    pos = 0
    for m in _FABRIC_VAR.finditer(text):
        out.append(text[pos:m.start()].replace("{", "{{").replace("}", "}}"))
        out.append("{" + m[1] + "}")
        if m[1] != INPUT and m[1] not in names:
            names.append(m[1])
        pos = m.end()
    out.append(text[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(out), names


def _fabric_description(system: str, name: str) -> str:
    for line in system.splitlines():
        line = line.strip().lstrip("#").strip()
        if line and not line.upper().startswith(("IDENTITY", "# ")):
            return line[:100]
    return f"fabric pattern {name}"


def from_fabric(folder: Path, name: str | None = None, origin: str = "path") -> Template:
    """A fabric pattern: ``system.md`` is the system prompt, the input the user message (after ``user.md``)."""
    name = name or folder.name
    system_path = folder / "system.md"
    if not system_path.is_file():
        raise ConfigError(f"template {folder}: a pattern folder needs a system.md (fabric's layout)")
    try:
        system_raw = decode(system_path.read_bytes(), system_path)
        user_path = folder / "user.md"
        user_raw = decode(user_path.read_bytes(), user_path) if user_path.is_file() else ""
    except OSError as err:
        raise ConfigError(f"cannot read template {folder}: {err.strerror}") from None
    system, names = _from_fabric_text(system_raw.strip())
    user, more = _from_fabric_text(user_raw.strip())
    if not uses_input(user):
        user = f"{user}\n\n{{input}}".strip()
    variables = tuple(Variable(n, None) for n in dict.fromkeys(names + more))
    return Template(name, _fabric_description(system_raw, name), system, user, variables, {}, None, system_path,
                    origin)


def patterns_in(folder: Path) -> list[Path]:
    """The pattern folders ``folder`` is or holds (sorted); a UsageError when it is neither."""
    if not folder.is_dir():
        raise UsageError(f"not a folder: {folder} (give a fabric patterns folder, or one pattern's folder)")
    patterns = [folder] if (folder / "system.md").is_file() else sorted(
        p for p in folder.iterdir() if p.is_dir() and (p / "system.md").is_file())
    if not patterns:
        raise UsageError(f"no patterns in {folder}: a pattern is a folder holding system.md")
    return patterns


def _toml_text(value: str) -> str:
    """``value`` as a TOML multi-line literal-free basic string."""
    import tomlkit  # heavy: tomlkit (only converting a Fabric pattern pays for it)

    return tomlkit.string(value, multiline="\n" in value).as_string()


def to_toml(template: Template) -> str:
    """A template (one imported from a fabric pattern) as the TOML ``parse`` reads back."""
    lines = [f"# imported from {template.source.parent if template.source else template.name}",
             f"description = {_toml_text(template.description)}", "",
             f"system = {_toml_text(template.system)}", "", f"user = {_toml_text(template.user)}"]
    if template.variables:
        lines += ["", "[variables]"]
        lines += [f"{v.name} = {{ description = {_toml_text('fabric variable ' + v.name)} }}"
                  for v in template.variables]
    return "\n".join(lines) + "\n"
