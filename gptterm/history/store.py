"""Conversations and messages in SQLite, shared by every face.

Opened by ``gptterm.sqlite`` (private, WAL so a TUI and a CLI can use the
file at once, the schema brought up to date by the ordered scripts in
``MIGRATIONS``); each write is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from gptterm import paths, sqlite
from gptterm.errors import HistoryError

MIGRATIONS: tuple[str, ...] = (
    # 1: initial schema
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL DEFAULT 'chat',
        model TEXT,
        system TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        created_at REAL NOT NULL,
        model TEXT,
        params TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        ttft_s REAL,
        tokens_per_s REAL,
        total_s REAL,
        finish_reason TEXT
    );
    CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
    CREATE INDEX conversations_by_update ON conversations(updated_at);
    """,
    # 2: a reasoning model's <think> block, kept apart from its reply (which is what the model sees again)
    """
    ALTER TABLE messages ADD COLUMN thinking TEXT;
    """,
    # 3: tools: the calls an assistant message makes (JSON, OpenAI's shape), and each result as a message of
    # its own (role 'tool', the call it answers, the tool's name, whether it failed). SQLite cannot widen a
    # CHECK constraint in place: the table is made again.
    """
    CREATE TABLE messages_v3 (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
        content TEXT NOT NULL,
        created_at REAL NOT NULL,
        model TEXT,
        params TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        ttft_s REAL,
        tokens_per_s REAL,
        total_s REAL,
        finish_reason TEXT,
        thinking TEXT,
        tool_calls TEXT,
        tool_call_id TEXT,
        tool_name TEXT,
        tool_error INTEGER
    );
    INSERT INTO messages_v3 (id, conversation_id, role, content, created_at, model, params, prompt_tokens,
        completion_tokens, ttft_s, tokens_per_s, total_s, finish_reason, thinking)
        SELECT id, conversation_id, role, content, created_at, model, params, prompt_tokens, completion_tokens,
        ttft_s, tokens_per_s, total_s, finish_reason, thinking FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_v3 RENAME TO messages;
    CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
    """,
)

KINDS = ("chat", "oneshot", "generate")
STAT_COLUMNS = ("prompt_tokens", "completion_tokens", "ttft_s", "tokens_per_s", "total_s", "finish_reason")
#: what a message of a tool loop carries besides its text: the calls it makes, or the call it answers
TOOL_COLUMNS = ("tool_call_id", "tool_name", "tool_error")


@dataclass
class StoredMessage:
    id: int
    role: str
    content: str
    created_at: float
    model: str | None = None
    params: dict[str, Any] | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    #: what a reasoning model thought before this reply (None: nothing)
    thinking: str | None = None
    #: an assistant message's tool calls, in OpenAI's shape ({"id", "type": "function", "function": {...}})
    tool_calls: list[dict[str, Any]] | None = None
    #: a tool result: the call it answers, the tool, whether the tool failed
    tool_call_id: str | None = None
    tool_name: str | None = None
    tool_error: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "content": self.content, "created_at": self.created_at,
                "model": self.model, "params": self.params, **self.stats,
                **({"thinking": self.thinking} if self.thinking else {}),
                **({"tool_calls": self.tool_calls} if self.tool_calls else {}),
                **({"tool_call_id": self.tool_call_id, "name": self.tool_name, "error": self.tool_error}
                   if self.role == "tool" else {})}


@dataclass
class Conversation:
    id: int
    title: str
    kind: str
    model: str | None
    system: str
    created_at: float
    updated_at: float
    message_count: int = 0
    messages: list[StoredMessage] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "kind": self.kind, "model": self.model,
                "system": self.system, "created_at": self.created_at, "updated_at": self.updated_at,
                "messages": [m.as_dict() for m in self.messages]}


def title_from(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _inserted_id(cur: sqlite3.Cursor) -> int:
    """The id of the row an INSERT just added (``lastrowid`` is None only after other statements)."""
    row_id = cur.lastrowid
    assert row_id is not None
    return row_id


class HistoryStore:
    def __init__(self, path: Path | None = None):
        self.path = path or paths.history_db()
        # One connection shared by a face's threads; the lock keeps a
        # transaction from interleaving with another thread's statements.
        self._lock = threading.RLock()
        self._db = sqlite.connect(self.path, MIGRATIONS, what="history database", error=HistoryError,
                                  pragmas={"synchronous": "NORMAL"})
        self._db.row_factory = sqlite3.Row

    # -- plumbing -------------------------------------------------------------

    def _tx(self) -> "_Transaction":
        return _Transaction(self._db, self._lock)

    def close(self) -> None:
        self._db.close()

    # -- writes ---------------------------------------------------------------

    def new_conversation(self, *, kind: str = "chat", model: str | None = None, system: str = "",
                         title: str = "") -> int:
        now = time.time()
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO conversations (title, kind, model, system, created_at, updated_at) VALUES (?,?,?,?,?,?)",
                (title, kind, model, system, now, now),
            )
        return _inserted_id(cur)

    def add_message(self, conversation_id: int, role: str, content: str, *, model: str | None = None,
                    params: dict[str, Any] | None = None, stats: dict[str, Any] | None = None,
                    thinking: str | None = None, tool_calls: list[dict[str, Any]] | None = None,
                    tool_call_id: str | None = None, tool_name: str | None = None, tool_error: bool = False) -> int:
        """``tool_calls``: the calls an assistant message makes; ``tool_call_id``, ``tool_name``, ``tool_error``:
        what a tool result (role "tool") answers."""
        now = time.time()
        stats = stats or {}
        tool = (tool_call_id, tool_name, int(tool_error)) if role == "tool" else (None, None, None)
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO messages (conversation_id, role, content, created_at, model, params, thinking, "
                "tool_calls, " + ", ".join((*STAT_COLUMNS, *TOOL_COLUMNS)) + ") VALUES (?,?,?,?,?,?,?,?,"
                + ",".join("?" * (len(STAT_COLUMNS) + len(TOOL_COLUMNS))) + ")",
                (conversation_id, role, content, now, model, json.dumps(params) if params else None,
                 thinking or None, json.dumps(tool_calls, ensure_ascii=False) if tool_calls else None,
                 *(stats.get(c) for c in STAT_COLUMNS), *tool),
            )
            self._db.execute(
                "UPDATE conversations SET updated_at=?, "
                "title=CASE WHEN title='' AND ?='user' THEN ? ELSE title END, model=COALESCE(?, model) WHERE id=?",
                (now, role, title_from(content), model, conversation_id),
            )
        return _inserted_id(cur)

    def delete_messages_from(self, conversation_id: int, message_id: int) -> int:
        """Delete message ``message_id`` and every later one of the conversation (regenerate, edit)."""
        with self._tx():
            cur = self._db.execute("DELETE FROM messages WHERE conversation_id=? AND id>=?",
                                   (conversation_id, message_id))
        return cur.rowcount

    def fork(self, conversation_id: int, before_message_id: int | None) -> tuple[int, list[int]]:
        """Copy a conversation up to (not including) ``before_message_id`` into a new one.

        Editing an earlier message continues in the copy, so the original
        conversation stays as it was. Returns the new id and the copied messages' ids.
        """
        now = time.time()
        with self._tx():
            src = self._db.execute("SELECT * FROM conversations WHERE id=?", (conversation_id,)).fetchone()
            if src is None:
                raise HistoryError(f"no conversation {conversation_id}")
            title = src["title"] if src["title"].endswith("(edited)") else f"{src['title']} (edited)".strip()
            cur = self._db.execute(
                "INSERT INTO conversations (title, kind, model, system, created_at, updated_at) VALUES (?,?,?,?,?,?)",
                (title, src["kind"], src["model"], src["system"], now, now))
            new_id = _inserted_id(cur)
            limit = before_message_id if before_message_id is not None else -1
            cols = "role, content, created_at, model, params, thinking, tool_calls, " + ", ".join(
                (*STAT_COLUMNS, *TOOL_COLUMNS))
            ids = []
            for row in self._db.execute(
                    "SELECT id FROM messages WHERE conversation_id=? AND (?<0 OR id<?) ORDER BY id",
                    (conversation_id, limit, limit)).fetchall():
                cur = self._db.execute(
                    f"INSERT INTO messages (conversation_id, {cols}) SELECT ?, {cols} FROM messages WHERE id=?",
                    (new_id, row["id"]))
                ids.append(_inserted_id(cur))
        return new_id, ids

    def set_system(self, conversation_id: int, system: str) -> None:
        with self._tx():
            self._db.execute("UPDATE conversations SET system=? WHERE id=?", (system, conversation_id))

    def rename(self, conversation_id: int, title: str) -> None:
        with self._tx():
            cur = self._db.execute("UPDATE conversations SET title=? WHERE id=?", (title, conversation_id))
        if cur.rowcount == 0:
            raise HistoryError(f"no conversation {conversation_id}")

    def delete_conversation(self, conversation_id: int) -> None:
        with self._tx():
            cur = self._db.execute("DELETE FROM conversations WHERE id=?", (conversation_id,))
        if cur.rowcount == 0:
            raise HistoryError(f"no conversation {conversation_id}")

    # -- reads ----------------------------------------------------------------

    def _conversation(self, row: sqlite3.Row) -> Conversation:
        return Conversation(id=row["id"], title=row["title"], kind=row["kind"], model=row["model"],
                            system=row["system"], created_at=row["created_at"], updated_at=row["updated_at"],
                            message_count=row["n"] if "n" in row.keys() else 0)

    def list_conversations(self, *, limit: int | None = 50, query: str | None = None,
                           kinds: Iterable[str] = KINDS) -> list[Conversation]:
        kinds = tuple(kinds)
        sql = ("SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id=c.id) AS n "
               "FROM conversations c WHERE c.kind IN (%s)" % ",".join("?" * len(kinds)))
        args: list[Any] = list(kinds)
        if query:
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql += (" AND (c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m "
                    "WHERE m.conversation_id=c.id AND m.content LIKE ? ESCAPE '\\'))")
            args += [like, like]
        sql += " ORDER BY c.updated_at DESC, c.id DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            return [self._conversation(r) for r in self._db.execute(sql, args)]

    def get(self, conversation_id: int) -> Conversation:
        with self._lock:
            return self._get(conversation_id)

    def _get(self, conversation_id: int) -> Conversation:
        row = self._db.execute("SELECT * FROM conversations WHERE id=?", (conversation_id,)).fetchone()
        if row is None:
            raise HistoryError(f"no conversation {conversation_id}")
        conv = self._conversation(row)
        conv.messages = [
            StoredMessage(id=m["id"], role=m["role"], content=m["content"], created_at=m["created_at"],
                          model=m["model"], params=json.loads(m["params"]) if m["params"] else None,
                          stats={c: m[c] for c in STAT_COLUMNS if m[c] is not None}, thinking=m["thinking"],
                          tool_calls=json.loads(m["tool_calls"]) if m["tool_calls"] else None,
                          tool_call_id=m["tool_call_id"], tool_name=m["tool_name"], tool_error=bool(m["tool_error"]))
            for m in self._db.execute("SELECT * FROM messages WHERE conversation_id=? ORDER BY id",
                                      (conversation_id,))
        ]
        conv.message_count = len(conv.messages)
        return conv

    def latest(self, kinds: Iterable[str] = ("chat", "oneshot")) -> Conversation | None:
        found = self.list_conversations(limit=1, kinds=kinds)
        return self.get(found[0].id) if found else None


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (including Ctrl+C)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock):
        self.db = db
        self.lock = lock

    def __enter__(self) -> None:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()
