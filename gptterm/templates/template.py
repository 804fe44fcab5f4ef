"""A template and its language: plain substitution, which cannot run code; binding its variables.

``{name}`` is a declared variable (or ``{input}``, the text the template is
applied to), ``{{`` and ``}}`` are literal braces, and any other brace is text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from gptterm.errors import UsageError

#: what a template's text may hold besides its variables: the text it is applied to
INPUT = "input"
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_]\w*)\}")


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
            # only a template with a schema needs it (this module is on the completion path)
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
