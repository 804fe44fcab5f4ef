"""What a pane may ask of the app: the engine to generate with now, advice, the session's settings.

The session (gptterm.session) owns the engine, the parameters and the lease;
the app lends the engine through it (``acquire_engine`` tells the user why
not, when it cannot) and mirrors who holds it in its reactive ``busy`` for
the status line. Esc reaches the holder through its ``stop()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from gptterm.session import Busy, Lease, Session, User


class EngineHost(Protocol):
    session: Session
    #: who holds the engine now (None: it is free)
    busy: Busy | None

    def acquire_engine(self, owner: User, verb: str) -> Lease | None: ...

    def release_engine(self, owner: User) -> None: ...

    def advise(self, task: str, languages: tuple[str, ...] = ()) -> None: ...


def host(node: DOMNode) -> EngineHost:
    """The app of ``node``, as the one place a pane asks for the engine."""
    return cast("EngineHost", node.app)
