"""``gptterm templates``: list, show, create, edit and import templates (gptterm/templates/)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from gptterm.cli.io import note, table
from gptterm.cli.options import TemplatesOptions
from gptterm.errors import ConfigError, UsageError
from gptterm.templates import create, library
from gptterm.templates.template import Template
from gptterm.words import plural


def run_templates(opts: TemplatesOptions) -> int:
    return {"ls": _ls, "show": _show, "new": _new, "edit": _edit, "import": _import}[opts.action or "ls"](opts)


def _variables(t: Template) -> str:
    return ", ".join(v.name + ("" if v.required else f"={v.default}") for v in t.variables)


def as_dict(t: Template) -> dict[str, Any]:
    return {"name": t.name, "origin": t.origin, "path": str(t.source) if t.source else None,
            "description": t.description, "system": t.system, "user": t.user,
            "variables": [{"name": v.name, "default": v.default, "description": v.description} for v in t.variables],
            "params": dict(t.params), "schema": t.schema}


def _ls(opts: TemplatesOptions) -> int:
    found, problems = library.all_templates()
    for line in problems:
        note(line)
    if opts.json:
        print(json.dumps([as_dict(t) for t in found], indent=2, ensure_ascii=False))
        return 0
    rows = [(t.name, t.origin, _variables(t) or "-", t.description) for t in found]
    table(rows, ("NAME", "FROM", "VARIABLES", "DESCRIPTION"))
    note(f"use one: gptterm -t NAME [-V VAR=VALUE] < input.txt; yours go in {library.user_dir()} "
         "('gptterm templates new NAME')")
    return 0


def _show(opts: TemplatesOptions) -> int:
    t = library.load(opts.name)
    if opts.json:
        print(json.dumps(as_dict(t), indent=2, ensure_ascii=False))
        return 0
    out = [f"name         {t.name} ({t.origin}: {t.source})", f"description  {t.description}"]
    for v in t.variables:
        default = "required" if v.required else f"default {v.default!r}"
        out.append(f"variable     {v.name}: {default}" + (f" — {v.description}" if v.description else ""))
    if t.params:
        out.append("params       " + ", ".join(f"{k}={v}" for k, v in t.params.items()))
    if t.schema is not None:
        out.append("schema       " + (t.schema if isinstance(t.schema, str) else json.dumps(t.schema)))
    out += ["", "[system]", t.system.strip() or "(none: the model's default)", "", "[user]", t.user.strip()]
    print("\n".join(out))
    return 0


def _new(opts: TemplatesOptions) -> int:
    path = create.new(opts.name)
    print(path)
    note(f"wrote template {opts.name}: edit it ('gptterm templates edit {opts.name}'), then use it: gptterm -t {opts.name}")
    return 0


def editor_command() -> list[str]:
    """$VISUAL, else $EDITOR, else the first of nano, vi found."""
    for var in ("VISUAL", "EDITOR"):
        value = os.environ.get(var, "").strip()
        if value:
            return shlex.split(value)
    for name in ("nano", "vi"):
        if shutil.which(name):
            return [name]
    raise UsageError("no editor: set $EDITOR (e.g. export EDITOR=nano)")


def _edit(opts: TemplatesOptions) -> int:
    found = library.find_path(opts.name) if not Path(opts.name).exists() else (Path(opts.name), "path")
    if found is None:
        raise UsageError(f"no template {opts.name!r}: 'gptterm templates new {opts.name}' writes one")
    path, origin = found
    if origin == "builtin":
        path = create.new(opts.name)
        note(f"copied the built-in {opts.name} to {path}: your copy is used from now on")
    try:
        subprocess.run([*editor_command(), str(path)], check=False)
    except OSError as err:
        raise UsageError(f"cannot start the editor: {err}") from None
    library.read(path, opts.name)  # a problem is one line (and exit 3): fix it before using the template
    note(f"template {opts.name} is valid ({path})")
    return 0


def _import(opts: TemplatesOptions) -> int:
    result = create.import_patterns(Path(opts.folder), replace=opts.force)
    for path in result.written:
        print(path.stem)
    for line in result.failed:
        note(f"not imported: {line}")
    if result.skipped:
        note(f"kept {plural(len(result.skipped), 'existing template')} of the same name ({', '.join(result.skipped[:5])}"
             + ("…" if len(result.skipped) > 5 else "") + "): --force replaces them")
    if not result.written and not result.skipped:
        raise ConfigError(f"no pattern of {opts.folder} could be imported")
    note(f"imported {plural(len(result.written), 'pattern')} into {library.user_dir()}")
    return 0
