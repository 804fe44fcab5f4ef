"""The one SQLite opener of gptterm's own databases: migrations each in a transaction, clear errors, private files."""

from __future__ import annotations

import sqlite3

import pytest

from gptterm import sqlite
from gptterm.errors import DocsError, HistoryError

MIGRATIONS = (
    "CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT NOT NULL DEFAULT 'a;b');",
    # a ';' in a string and in a trigger's body does not end a statement
    """
    ALTER TABLE notes ADD COLUMN shown INTEGER NOT NULL DEFAULT 0;
    CREATE TRIGGER show AFTER INSERT ON notes BEGIN UPDATE notes SET shown = 1 WHERE id = new.id; END;
    INSERT INTO notes(text) VALUES('x;y');
    """,
)


def open_test_db(path, migrations=MIGRATIONS, **pragmas) -> sqlite3.Connection:
    return sqlite.connect(path, migrations, what="test database", error=HistoryError, pragmas=pragmas)


def test_migrations_run_in_order_and_set_the_version(tmp_path):
    path = tmp_path / "t.sqlite3"
    db = open_test_db(path, MIGRATIONS[:1])
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.execute("INSERT INTO notes(text) VALUES('kept')")
    db.close()
    db = open_test_db(path, synchronous="OFF")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert db.execute("SELECT text, shown FROM notes ORDER BY id").fetchall() == [("kept", 0), ("x;y", 1)]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 0
    db.close()
    assert (path.stat().st_mode & 0o777) == 0o600


def test_a_failing_migration_leaves_the_version_before_it(tmp_path):
    path = tmp_path / "t.sqlite3"
    broken = (MIGRATIONS[0], "ALTER TABLE notes ADD COLUMN half TEXT; INSERT INTO nowhere VALUES(1);")
    with pytest.raises(HistoryError, match=rf"cannot open test database {path}: no such table: nowhere"):
        open_test_db(path, broken)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert [r[1] for r in db.execute("PRAGMA table_info(notes)")] == ["id", "text"]  # the ALTER was rolled back
    db.close()
    open_test_db(path).close()  # the fixed script runs next time


def test_a_newer_database_and_a_damaged_file_are_one_error_naming_the_file(tmp_path):
    path = tmp_path / "t.sqlite3"
    open_test_db(path).execute("PRAGMA user_version=3")
    with pytest.raises(DocsError, match=rf"{path} was written by a newer gptterm \(schema 3, this one knows up "
                                        r"to 2\); upgrade gptterm"):
        sqlite.connect(path, MIGRATIONS, what="test database", error=DocsError)
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"not a database at all " * 200)
    with pytest.raises(DocsError, match=rf"cannot open test database {bad}: file is not a database"):
        sqlite.connect(bad, MIGRATIONS, what="test database", error=DocsError)


def test_an_up_to_date_database_opens_while_another_connection_writes(tmp_path):
    path = tmp_path / "t.sqlite3"
    writer = open_test_db(path)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO notes(text) VALUES('pending')")
    reader = sqlite.connect(path, MIGRATIONS, what="test database", error=HistoryError)  # no wait for the lock
    assert reader.execute("SELECT count(*) FROM notes").fetchone()[0] == 1
    writer.execute("COMMIT")
    reader.close()
    writer.close()


def test_memory_databases_are_migrated_too():
    db = open_test_db(":memory:")
    assert db.execute("SELECT text FROM notes").fetchall() == [("x;y",)]
