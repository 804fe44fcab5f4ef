"""Engines: the one place that knows how text is generated."""

from __future__ import annotations

from typing import Any


def load_engine(model: str | None, params: Any) -> Any:
    """Load the model named by ``model`` (a path; None: the bundled model)."""
    from gptterm.engine.local import LocalEngine
    from gptterm.models.resolve import resolve_model

    return LocalEngine(resolve_model(model), **params.load())
