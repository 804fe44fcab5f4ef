"""A widget made and mounted just after the first frame, for panes that start hidden."""

from __future__ import annotations

from typing import Callable

from textual.widget import MountError, Widget


class AfterFirstFrame(Widget):
    """Stands in for the widget ``make()`` returns until the first frame is drawn, then mounts it
    in its place. ``make`` runs then too, so the imports it does wait as well.

    Like ``textual.lazy.Lazy``, but taking a factory, and quiet when the app
    quits before that moment (Lazy then fails with a MountError traceback).
    """

    DEFAULT_CSS = "AfterFirstFrame { display: none; }"

    def __init__(self, make: Callable[[], Widget]) -> None:
        super().__init__()
        self._make = make

    def on_mount(self) -> None:
        self.call_after_refresh(self._swap)

    async def _swap(self) -> None:
        parent = self.parent
        if not isinstance(parent, Widget) or not parent.is_attached:
            return
        try:
            await parent.mount(self._make(), after=self)
        except MountError:  # the app is closing
            return
        await self.remove()
