"""Where gptterm keeps its files (platformdirs, overridable for tests and users)."""

from __future__ import annotations

import os
from pathlib import Path

APP = "gptterm"


def _dir(env: str, kind: str) -> Path:
    override = os.environ.get(env)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")(APP, appauthor=False))


def config_dir() -> Path:
    return _dir("GPTTERM_CONFIG_DIR", "config")


def data_dir() -> Path:
    return _dir("GPTTERM_DATA_DIR", "data")


def cache_dir() -> Path:
    return _dir("GPTTERM_CACHE_DIR", "cache")


def config_file() -> Path:
    return config_dir() / "config.toml"


def history_db() -> Path:
    return data_dir() / "history.sqlite3"
