"""A widget mounted just after the first frame, for panes that start hidden."""

from __future__ import annotations

from textual.widget import MountError, Widget


class AfterFirstFrame(Widget):
    """Stands in for ``widget`` until the first frame is drawn, then mounts it in its place.

    Like ``textual.lazy.Lazy``, but quiet when the app quits before that
    moment (Lazy then fails with a MountError traceback).
    """

    DEFAULT_CSS = "AfterFirstFrame { display: none; }"

    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self._widget = widget

    def on_mount(self) -> None:
        self.call_after_refresh(self._swap)

    async def _swap(self) -> None:
        parent = self.parent
        if not isinstance(parent, Widget) or not parent.is_attached:
            return
        try:
            await parent.mount(self._widget, after=self)
        except MountError:  # the app is closing
            return
        await self.remove()
