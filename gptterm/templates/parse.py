"""A template from its TOML text, checked when it is read.

A TOML error, an unknown key, a ``{name}`` that is not declared, a bad
parameter or schema is one line (a ConfigError) naming the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from gptterm import textio
from gptterm.errors import ConfigError, InputError, UsageError
from gptterm.settings import OUTPUT, SAMPLING, check_values, find_param
from gptterm.templates.template import INPUT, Template, Variable, placeholders

KEYS = {"description", "system", "user", "variables", "params", "schema"}


def decode(data: bytes, path: Path) -> str:
    """A template file's text (any encoding the one decoder reads); a ConfigError naming ``path``."""
    try:
        return textio.decode(data, str(path)).text
    except InputError as err:
        raise ConfigError(f"template {path}: {err}") from None


def parse(text: str, name: str, source: Path | None = None, origin: str = "path") -> Template:
    """A template from TOML text; a ConfigError naming ``source`` and what is wrong."""
    import tomllib  # heavy: tomllib (only reading a template pays for it)

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
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: params must be a table ([params])")
    values = check_values(table, f"{where}: params")
    for name in values:
        if find_param(name).kind not in (SAMPLING, OUTPUT):
            raise ConfigError(f"{where}: params.{name} is not a sampling parameter (a template sets temperature, "
                              "max_tokens, …; its system prompt is 'system')")
    return values


def _schema(schema: Any, where: str, source: Path | None) -> dict[str, Any] | str:
    # only a template with a schema needs it (this module is on the completion path)
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
