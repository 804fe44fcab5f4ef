"""Engines: the one place that knows how text is generated."""

from __future__ import annotations

from typing import Any


def load_engine(model: str | None, params: Any, server: Any = None) -> Any:
    """The engine every face uses.

    With ``server`` (a ``ServerProfile``): a RemoteEngine on that server,
    ``model`` naming the remote model (None: the profile's, else the first
    the server lists). Without: the local model at path ``model`` or the local model named so
    (None: the bundled model).
    """
    if server is not None:
        from gptterm.engine.remote import RemoteEngine

        return RemoteEngine(server, model=model, ctx=params.ctx)
    from gptterm.engine.local import LocalEngine
    from gptterm.models import store
    from gptterm.models.resolve import resolve_model

    engine = LocalEngine(resolve_model(model), **params.load())
    store.mark_in_use(engine.info.path)  # so 'gptterm models rm' elsewhere refuses this model
    return engine
