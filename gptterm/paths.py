"""Where gptterm keeps its files (platformdirs, overridable for tests and users)."""

from __future__ import annotations

import os
from pathlib import Path

APP = "gptterm"


def _dir(env: str, kind: str) -> Path:
    override = os.environ.get(env)
    if override:
        return Path(override).expanduser()
    import platformdirs  # platformdirs (~5 ms): only a directory without its GPTTERM_ variable needs it

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


# -- private by default ---------------------------------------------------------------
#
# What gptterm keeps for itself (history, saved KV states, the document index,
# in-use records, caches, the config) is its owner's only: every directory it
# creates for it is 0700 and every file it writes there 0600, set exactly
# (chmod after mkdir, os.open with the mode then fchmod), never by changing the
# process umask (other threads create files too). Files the user asks for
# elsewhere (``history export -o FILE``) keep the user's umask: which of the two
# a file gets is decided by where it is (``is_own``), in ``gptterm.atomic``.

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def own_dirs() -> dict[str, Path]:
    """gptterm's own directories by kind (config, data, cache), without repeats (config is data on macOS)."""
    dirs: dict[str, Path] = {}
    for kind, d in (("config", config_dir()), ("data", data_dir()), ("cache", cache_dir())):
        if d not in dirs.values():
            dirs[kind] = d
    return dirs


def chosen(kind: str) -> str | None:
    """The variable that put gptterm's ``kind`` directory where it is, if the user set one."""
    env = f"GPTTERM_{kind.upper()}_DIR"
    return env if os.environ.get(env) else None


def is_own(path: str | Path) -> bool:
    """Whether ``path`` lies in one of gptterm's own directories (the privacy of a file written there)."""
    where = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for d in own_dirs().values():
        root = os.path.realpath(d)
        if where == root or where.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def private_dir(path: str | Path) -> Path:
    """Create directory ``path`` (and missing parents) as 0700, whatever the umask; returns it.

    A directory that exists keeps its mode (an existing install is tightened
    once on start, see ``gptterm.privacy``). The one way gptterm makes a
    directory for its own data."""
    path = Path(path)
    try:
        os.mkdir(path, PRIVATE_DIR)
    except FileNotFoundError:
        private_dir(path.parent)
        try:
            os.mkdir(path, PRIVATE_DIR)
        except FileExistsError:
            return path
    except FileExistsError:
        if not path.is_dir():
            raise
        return path
    os.chmod(path, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: str | Path) -> Path:
    """Create ``path`` empty as 0600 (its directory as ``private_dir``) unless it exists; returns it.

    For files another writer then opens by path and keeps the mode of, such
    as a SQLite database: SQLite gives its ``-wal`` and ``-shm`` files the
    database file's mode."""
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return path
    try:
        exact_mode(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path


def exact_mode(fd: int, mode: int) -> None:
    """Give the open file ``mode`` exactly (the umask may have taken bits off ``os.open``'s)."""
    if hasattr(os, "fchmod"):  # not on Windows, where a mode is only "read-only" or not
        os.fchmod(fd, mode)
