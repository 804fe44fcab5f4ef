"""Finding templates: the built-ins, the user's, or one named by its path; listing them all.

Built-ins are TOML files in ``assets/templates/``; a file of the same name in
``<config dir>/templates/`` overrides one, and any other file there adds one.
"""

from __future__ import annotations

import re
from pathlib import Path

from gptterm import paths
from gptterm.assets import assets_dir
from gptterm.errors import ConfigError, GpttermError, UsageError
from gptterm.templates.fabric import from_fabric
from gptterm.templates.parse import decode, parse
from gptterm.templates.template import Template

_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")


def builtin_dir() -> Path:
    return assets_dir() / "templates"


def user_dir() -> Path:
    return paths.config_dir() / "templates"


def is_name(text: str) -> bool:
    """Whether ``text`` can name a template (a file in a templates folder), rather than be a path."""
    return bool(_NAME.match(text))


def read(path: Path, name: str | None = None, origin: str = "path") -> Template:
    """The template in ``path``: a ``.toml`` file, or a fabric pattern folder (``system.md``, ``user.md``)."""
    if path.is_dir():
        return from_fabric(path, name, origin)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read template {path}: {err.strerror}") from None
    return parse(decode(data, path), name or path.stem, path, origin)


def _entries(directory: Path) -> dict[str, Path]:
    try:
        found = sorted(directory.iterdir())
    except OSError:
        return {}
    return {p.stem: p for p in found if p.suffix == ".toml" and p.is_file()}


def all_templates() -> tuple[list[Template], list[str]]:
    """Every template by name (a user's over a built-in of the same name), and one line per unusable file."""
    found: dict[str, Template] = {}
    problems: list[str] = []
    for origin, directory in (("builtin", builtin_dir()), ("user", user_dir())):
        for name, path in _entries(directory).items():
            try:
                found[name] = read(path, name, origin)
            except GpttermError as err:
                problems.append(str(err))
    return [found[n] for n in sorted(found)], problems


def names() -> list[str]:
    return sorted(set(_entries(builtin_dir())) | set(_entries(user_dir())))


def find_path(name: str) -> tuple[Path, str] | None:
    """Where template ``name`` is read from (the user's first), and its origin; None when there is none."""
    for origin, directory in (("user", user_dir()), ("builtin", builtin_dir())):
        path = directory / f"{name}.toml"
        if path.is_file():
            return path, origin
    return None


def load(spec: str) -> Template:
    """Template ``spec``: a name (the user's, else a built-in), or the path of a .toml file or pattern folder."""
    spec = spec.strip()
    found = find_path(spec) if is_name(spec) else None
    if found is not None:
        return read(found[0], spec, found[1])
    path = Path(spec).expanduser()
    if path.exists() and (path.is_dir() or path.suffix == ".toml"):
        return read(path, path.stem if path.is_file() else path.name)
    raise UsageError(f"no template {spec!r}: see 'gptterm templates' (templates are in {builtin_dir()} and "
                     f"{user_dir()}), or give the path of a .toml file or a fabric pattern folder")
