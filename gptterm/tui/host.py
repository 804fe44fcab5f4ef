"""What a pane may ask of the app: the engine to generate with, now.

The app owns the engine, the parameters and the one "busy" flag; a pane
that wants to generate asks ``acquire_engine`` (which tells the user why
not, when it cannot) and hands the engine back with ``release_engine``.
Esc reaches the pane that holds the engine through its ``stop()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from gptterm.engine.base import Engine
    from gptterm.settings import Params


class Generating(Protocol):
    """A pane that generates with the engine it was lent."""

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Lease:
    engine: Engine
    params: Params


@dataclass(frozen=True)
class Busy:
    """Who holds the engine, and what it is doing ("generating", "summarizing", …)."""

    owner: Generating
    verb: str


class EngineHost(Protocol):
    #: who holds the engine now (None: it is free)
    busy: Busy | None

    def acquire_engine(self, owner: Generating, verb: str) -> Lease | None: ...

    def release_engine(self, owner: Generating) -> None: ...


def host(node: DOMNode) -> EngineHost:
    """The app of ``node``, as the one place a pane asks for the engine."""
    return cast("EngineHost", node.app)
