"""Opening gptterm's own SQLite databases (the history, the document index): private, WAL, schema up to date.

A database's schema is an ordered tuple of migration scripts: script ``n``
takes it from version ``n - 1`` to ``n``, and ``PRAGMA user_version`` says
which it is at. Each script runs in one transaction with the version it
reaches, so a crash or a failing statement leaves the database at the version
before. A script, once released, never changes: a new schema is a new script.

The database file is made 0600 before SQLite opens it (SQLite gives its
``-wal`` and ``-shm`` files the database's mode). One connection, used by any
of a face's threads (the caller keeps them apart), in autocommit mode: callers
write their own ``BEGIN`` ... ``COMMIT``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from gptterm import paths
from gptterm.errors import GpttermError

MEMORY = ":memory:"
BUSY_TIMEOUT_S = 10  # another process's write transaction (an index update commits every 10,000 passages)


def connect(path: Path | str, migrations: Sequence[str], *, what: str, error: type[GpttermError],
            pragmas: Mapping[str, str | int] | None = None) -> sqlite3.Connection:
    """The database at ``path`` (``":memory:"``: one that is not kept), with WAL, foreign keys,
    ``pragmas`` (name → value) and its schema brought up to ``len(migrations)``.

    ``what`` names the database in errors ("history database"); every failure is one ``error``:
    a file that is not a database (or is damaged), one written by a newer gptterm, a folder that
    cannot be made."""
    memory = str(path) == MEMORY
    where = MEMORY if memory else Path(path)
    try:
        if not memory:
            paths.private_file(where)
        db = sqlite3.connect(str(where), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except OSError as err:
        raise error(f"cannot create {what} in {Path(path).parent}: {err.strerror or err}") from None
    except sqlite3.DatabaseError as err:
        raise error(f"cannot open {what} {where}: {err}") from None
    try:
        db.execute("PRAGMA journal_mode=WAL")  # a TUI and a CLI can use the file at once
        db.execute("PRAGMA foreign_keys=ON")
        for name, value in (pragmas or {}).items():
            db.execute(f"PRAGMA {name}={value}")
        _migrate(db, migrations, what=f"{what} {where}", error=error)
    except sqlite3.DatabaseError as err:
        db.close()
        raise error(f"cannot open {what} {where}: {err}") from None
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, migrations: Sequence[str], *, what: str, error: type[GpttermError]) -> None:
    latest = len(migrations)
    # Read outside a transaction first: a database that is up to date opens while another process writes.
    if _version(db, latest, what, error) == latest:
        return
    while True:
        # BEGIN IMMEDIATE, then the version again: two processes opening a new file migrate it once.
        db.execute("BEGIN IMMEDIATE")
        try:
            version = _version(db, latest, what, error)
            if version == latest:
                db.execute("COMMIT")
                return
            for statement in statements(migrations[version]):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={version + 1}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


def _version(db: sqlite3.Connection, latest: int, what: str, error: type[GpttermError]) -> int:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > latest:
        raise error(f"{what} was written by a newer gptterm (schema {version}, this one knows up to {latest}); "
                    "upgrade gptterm")
    return version


def statements(script: str) -> Iterator[str]:
    """The statements of ``script`` one at a time (``executescript`` would commit the open transaction
    first); a ``;`` inside a string, a comment or a trigger's body does not end one."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\r\n;"):
        yield pending
