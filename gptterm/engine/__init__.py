"""Engines: the one place that knows how text is generated."""

from __future__ import annotations

from typing import Any


def load_engine(model: str | None, params: Any) -> Any:
    """Load the model named by ``model`` (a path or a local model's name; None: the bundled model)."""
    from gptterm.engine.local import LocalEngine
    from gptterm.models import store
    from gptterm.models.resolve import resolve_model

    engine = LocalEngine(resolve_model(model), **params.load())
    store.mark_in_use(engine.info.path)  # so 'gptterm models rm' elsewhere refuses this model
    return engine
