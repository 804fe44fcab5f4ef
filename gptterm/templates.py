"""Templates: a system prompt, a user prompt around ``{input}``, named variables, parameters, a schema.

Built-ins are TOML files in ``assets/templates/``; a file of the same name in
``<config dir>/templates/`` overrides one, and any other file there adds one.
A fabric pattern (a folder holding ``system.md`` and maybe ``user.md``) is
used by its path or imported into TOML (``gptterm templates import DIR``).

The template language is plain substitution, which cannot run code: ``{name}``
is a declared variable (or ``{input}``, the text the template is applied to),
``{{`` and ``}}`` are literal braces, and any other brace is text. A template
is checked when it is read: a TOML error, an unknown key, a ``{name}`` that is
not declared, a bad parameter or schema is one line naming the file.

Every face uses this module: the one-shot command (``-t NAME -V VAR=VALUE``),
the REPL (``/template``), the app (the template picker) and ``gptterm templates``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from gptterm import atomic, paths, textio
from gptterm.errors import ConfigError, GpttermError, InputError, UsageError

#: what a template's text may hold besides its variables: the text it is applied to
INPUT = "input"
KEYS = {"description", "system", "user", "variables", "params", "schema"}
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_]\w*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")


def builtin_dir() -> Path:
    from gptterm.assets import assets_dir

    return assets_dir() / "templates"


def user_dir() -> Path:
    return paths.config_dir() / "templates"


@dataclass(frozen=True)
class Variable:
    name: str
    #: None: the template cannot be used without a value for it
    default: str | None
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    system: str
    user: str
    variables: tuple[Variable, ...] = ()
    #: sampling parameters (validated by gptterm.settings), over the config file's; flags override them
    params: Mapping[str, Any] = field(default_factory=dict)
    #: a JSON Schema, or text naming one (a file, JSON, the short form) that may hold {variables}
    schema: dict[str, Any] | str | None = None
    source: Path | None = None
    #: "builtin", "user" (the config dir) or "path" (named by its path)
    origin: str = "builtin"

    def variable(self, name: str) -> Variable | None:
        return next((v for v in self.variables if v.name == name), None)

    def bind(self, values: Mapping[str, str] | None = None) -> Bound:
        """The template with its variables filled: ``values`` (-V, the app's form) over the defaults.
        A UsageError for a variable it does not have, or a required one left out."""
        values = dict(values or {})
        unknown = [k for k in values if self.variable(k) is None]
        if unknown:
            have = ", ".join(v.name for v in self.variables) or "none"
            raise UsageError(f"template {self.name} has no variable {unknown[0]!r} (its variables: {have})")
        filled: dict[str, str] = {}
        for v in self.variables:
            value = values.get(v.name, v.default)
            if value is None:
                what = f" ({v.description})" if v.description else ""
                raise UsageError(f"template {self.name} needs a value for {v.name}{what}: -V {v.name}=…")
            filled[v.name] = value
        schema = self.schema
        if isinstance(schema, str):
            from gptterm import schema as schemas

            schema = schemas.load(fill(schema, filled), base=self.source.parent if self.source else None)
        return Bound(self, fill(self.system, filled).strip(), self.user, filled, dict(self.params), schema)


@dataclass(frozen=True)
class Bound:
    """A template with its variables filled, waiting for its input."""

    template: Template
    system: str
    user: str
    values: Mapping[str, str]
    params: dict[str, Any]
    schema: dict[str, Any] | None
    #: an instruction added after the prompt (the command line's PROMPT when stdin is the input)
    extra: str = ""

    def message(self, text: str | None) -> str:
        """The user message for the input ``text``: at ``{input}``, else after the prompt."""
        text = (text or "").strip("\n")
        if uses_input(self.user):
            message = fill(self.user, {**self.values, INPUT: text}).strip()
        else:
            prompt = fill(self.user, self.values).strip()
            message = f"{prompt}\n\n{text}".strip() if text else prompt
        return f"{message}\n\n{self.extra.strip()}" if self.extra.strip() else message

    def needs_input(self) -> bool:
        """Whether the template is about a text (an empty input would make no sense)."""
        return uses_input(self.user) or not fill(self.user, self.values).strip()


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{name}`` replaced (values are inserted verbatim) and ``{{``/``}}`` made single."""
    def replace(m: re.Match[str]) -> str:
        if m[0] == "{{":
            return "{"
        if m[0] == "}}":
            return "}"
        return values.get(m[1], m[0])

    return _PLACEHOLDER.sub(replace, text)


def placeholders(text: str) -> list[str]:
    return [m[1] for m in _PLACEHOLDER.finditer(text) if m[1]]


def uses_input(text: str) -> bool:
    return INPUT in placeholders(text)


# -- reading ------------------------------------------------------------------------


def _text(data: bytes, path: Path) -> str:
    try:
        return textio.decode(data, str(path)).text
    except InputError as err:
        raise ConfigError(f"template {path}: {err}") from None


def parse(text: str, name: str, source: Path | None = None, origin: str = "path") -> Template:
    """A template from TOML text; a ConfigError naming ``source`` and what is wrong."""
    import tomllib

    where = f"template {source or name}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where}: {err}") from None
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (a template has {', '.join(sorted(KEYS))})")
    for key in ("description", "system", "user"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{where}: {key} must be text")
    variables = _variables(data.get("variables", {}), where)
    params = _params(data.get("params", {}), where)
    user = data.get("user", "{input}")
    system = data.get("system", "")
    declared = {v.name for v in variables}
    schema = data.get("schema")
    texts = {"system": system, "user": user, **({"schema": schema} if isinstance(schema, str) else {})}
    for key, value in texts.items():
        for found in placeholders(value):
            if found not in declared and not (found == INPUT and key == "user"):
                raise ConfigError(f"{where}: {key} uses {{{found}}}, which is not a declared variable (declare it "
                                  f"under [variables], or write {{{{{found}}}}} for the braces themselves)")
    if schema is not None:
        schema = _schema(schema, where, source)
    return Template(name, data.get("description", ""), system, user, variables, params, schema, source, origin)


def _variables(table: Any, where: str) -> tuple[Variable, ...]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: variables must be a table ([variables])")
    out = []
    for name, spec in table.items():
        if not re.match(r"^[A-Za-z_]\w*$", name) or name == INPUT:
            raise ConfigError(f"{where}: {name!r} cannot be a variable name" + (" ({input} is the text the template "
                              "is applied to)" if name == INPUT else " (letters, digits and _)"))
        if isinstance(spec, str):
            out.append(Variable(name, spec))
        elif isinstance(spec, dict):
            extra = set(spec) - {"default", "description"}
            if extra:
                raise ConfigError(f"{where}: variables.{name} has an unknown key {sorted(extra)[0]!r} "
                                  "(default, description)")
            default, description = spec.get("default"), spec.get("description", "")
            if default is not None and not isinstance(default, (str, int, float)) or isinstance(default, bool):
                raise ConfigError(f"{where}: variables.{name}.default must be text")
            if not isinstance(description, str):
                raise ConfigError(f"{where}: variables.{name}.description must be text")
            out.append(Variable(name, None if default is None else str(default), description))
        else:
            raise ConfigError(f"{where}: variables.{name} must be its default (text) or a table "
                              "{ default = …, description = … }")
    return tuple(out)


def _params(table: Any, where: str) -> dict[str, Any]:
    from gptterm.settings import OUTPUT, SAMPLING, check_values, find_param

    if not isinstance(table, dict):
        raise ConfigError(f"{where}: params must be a table ([params])")
    values = check_values(table, f"{where}: params")
    for name in values:
        if find_param(name).kind not in (SAMPLING, OUTPUT):
            raise ConfigError(f"{where}: params.{name} is not a sampling parameter (a template sets temperature, "
                              "max_tokens, …; its system prompt is 'system')")
    return values


def _schema(schema: Any, where: str, source: Path | None) -> dict[str, Any] | str:
    from gptterm import schema as schemas

    if isinstance(schema, str) and placeholders(schema):
        return schema  # read once its variables are filled
    try:
        if isinstance(schema, str):
            return schemas.load(schema, base=source.parent if source else None)
        if isinstance(schema, dict):
            return schemas.load(json.dumps(schema))
    except UsageError as err:
        raise ConfigError(f"{where}: schema: {err}") from None
    raise ConfigError(f"{where}: schema must be a table (a JSON Schema) or text (a file, JSON, or 'name, age int')")


def read(path: Path, name: str | None = None, origin: str = "path") -> Template:
    """The template in ``path``: a ``.toml`` file, or a fabric pattern folder (``system.md``, ``user.md``)."""
    if path.is_dir():
        return from_fabric(path, name, origin)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read template {path}: {err.strerror}") from None
    return parse(_text(data, path), name or path.stem, path, origin)


# -- fabric patterns ----------------------------------------------------------------------

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
        system_raw = _text(system_path.read_bytes(), system_path)
        user_path = folder / "user.md"
        user_raw = _text(user_path.read_bytes(), user_path) if user_path.is_file() else ""
    except OSError as err:
        raise ConfigError(f"cannot read template {folder}: {err.strerror}") from None
    system, names = _from_fabric_text(system_raw.strip())
    user, more = _from_fabric_text(user_raw.strip())
    if not uses_input(user):
        user = f"{user}\n\n{{input}}".strip()
    variables = tuple(Variable(n, None) for n in dict.fromkeys(names + more))
    return Template(name, _fabric_description(system_raw, name), system, user, variables, {}, None, system_path,
                    origin)


# -- finding ---------------------------------------------------------------------------


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
    found = find_path(spec) if _NAME.match(spec) else None
    if found is not None:
        return read(found[0], spec, found[1])
    path = Path(spec).expanduser()
    if path.exists() and (path.is_dir() or path.suffix == ".toml"):
        return read(path, path.stem if path.is_file() else path.name)
    raise UsageError(f"no template {spec!r}: see 'gptterm templates' (templates are in {builtin_dir()} and "
                     f"{user_dir()}), or give the path of a .toml file or a fabric pattern folder")


# -- writing ---------------------------------------------------------------------------

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
    if not _NAME.match(name):
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
    found = find_path(name) if _NAME.match(name) else None
    if found is not None and found[1] == "user":
        raise UsageError(f"template {name} exists already: {found[0]}")
    text = found[0].read_text("utf-8") if found is not None else STARTER.format(name=name)
    return write_user(name, text)


def _toml_text(value: str) -> str:
    """``value`` as a TOML multi-line literal-free basic string."""
    import tomlkit

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


@dataclass
class Imported:
    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def import_patterns(folder: Path, *, replace: bool = False) -> Imported:
    """Import fabric patterns: ``folder`` is one pattern (it holds system.md) or a folder of them."""
    folder = folder.expanduser()
    if not folder.is_dir():
        raise UsageError(f"not a folder: {folder} (give a fabric patterns folder, or one pattern's folder)")
    patterns = [folder] if (folder / "system.md").is_file() else sorted(
        p for p in folder.iterdir() if p.is_dir() and (p / "system.md").is_file())
    if not patterns:
        raise UsageError(f"no patterns in {folder}: a pattern is a folder holding system.md")
    out = Imported()
    for pattern in patterns:
        name = pattern.name
        if not _NAME.match(name):
            out.failed.append(f"{pattern}: {name!r} cannot be a template name")
            continue
        if (user_dir() / f"{name}.toml").exists() and not replace:
            out.skipped.append(name)
            continue
        try:
            text = to_toml(from_fabric(pattern))
            parse(text, name)  # what is written reads back
            out.written.append(write_user(name, text, replace=True))
        except GpttermError as err:
            out.failed.append(str(err))
    return out
