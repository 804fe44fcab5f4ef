"""Templates (-t NAME -V VAR=VALUE) and JSON output (--schema, --json-object) for the generating commands.

With a schema, stdout is the JSON itself: streamed on a terminal, and written only once it has been
checked when stdout is a pipe or a file (a reader never gets half an object, or one that does not match).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Any

from gptterm import schema as schemas
from gptterm import textio
from gptterm.cli.io import note
from gptterm.errors import SchemaError, UsageError
from gptterm.templates import library

if TYPE_CHECKING:
    from gptterm.cli.options import ReplyOptions
    from gptterm.engine.base import Engine
    from gptterm.types import Reply
    from gptterm.settings import Params
    from gptterm.templates.template import Bound


def variables(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """-V NAME=VALUE flags as a mapping (the last of a name wins)."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = textio.clean(pair, "-V").partition("=")
        if not sep or not name.strip():
            raise UsageError(f"-V takes NAME=VALUE, not {pair!r} (e.g. -V tone=formal)")
        out[name.strip()] = value
    return out


def template(opts: ReplyOptions, extra: str | None = None) -> Bound | None:
    """The template -t names, bound to the -V values; parameters given as flags win over the template's.
    ``extra``: an instruction added after the template's prompt (the PROMPT words when stdin is the input)."""
    values = variables(opts.var)
    if not opts.template:
        if values:
            raise UsageError("-V sets a template's variables: give the template with -t NAME")
        return None
    bound = library.load(opts.template).bind(values)
    return dataclasses.replace(bound, params={k: v for k, v in bound.params.items() if k not in opts.params},
                               extra=extra or "")


def schema(opts: ReplyOptions) -> dict[str, Any] | None:
    """--schema's JSON Schema, or --json-object's any-object one; None without them."""
    if opts.json_object:
        return schemas.ANY_OBJECT
    return schemas.load(textio.clean(opts.schema, "--schema")) if opts.schema else None


def warn_unsupported(engine: Engine, schema: dict[str, Any] | None) -> None:
    """Say which keywords the local grammar cannot enforce (a server's own converter may differ: it is not asked)."""
    if schema is not None and not engine.info.remote:
        line = schemas.unsupported_note(schema)
        if line:
            note(line)


def held(opts: ReplyOptions, schema: dict[str, Any] | None) -> bool:
    """Whether the reply is held back until it is checked: JSON output to a pipe or a file."""
    return schema is not None and not opts.json and not sys.stdout.isatty()


def check(reply: Reply, schema: dict[str, Any] | None, params: Params, *, logged: bool) -> tuple[Any, str] | None:
    """The reply's JSON value and text when it matches ``schema`` (None without one); a SchemaError else."""
    if schema is None:
        return None
    try:
        return schemas.check_reply(reply, schema, params.max_tokens)
    except SchemaError as err:
        kept = "; the reply is kept in history ('gptterm history show')" if logged and reply.text else ""
        raise SchemaError(f"{err}{kept}") from None


def json_fields(checked: tuple[Any, str] | None) -> dict[str, Any]:
    """What --json adds for a checked reply: its JSON value."""
    return {} if checked is None else {"json": checked[0]}


def write_held(checked: tuple[Any, str] | None) -> None:
    """Write a held-back reply's JSON, once checked."""
    if checked is not None:
        print(checked[1], flush=True)
