"""The document index: passages of files in SQLite FTS5 (BM25), kept up to date, and retrieval.

One database in the data dir (``docs.sqlite3``) holds every file ever asked
of, keyed by its path with its size, modification time and content hash:
updating a set of roots re-reads only the files whose size or time changed
(and re-indexes only those whose content did), and drops files that are gone.
Named collections are sets of roots. Retrieval ranks passages by BM25 over
words and CJK character pairs (``terms``), and, where passages have
embeddings, merges that ranking with the vectors' by reciprocal rank fusion.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from gptterm import paths, sqlite
from gptterm.docs import passages as cutter
from gptterm.docs import read_worker, terms, textfiles
from gptterm.errors import DocsError

if TYPE_CHECKING:
    from gptterm.docs.embed import Embedder

MIGRATIONS: tuple[str, ...] = (
    # 1: files, their passages and the FTS5 index of their terms, collections, embeddings
    """
CREATE TABLE IF NOT EXISTS files(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, size INTEGER, mtime_ns INTEGER,
    sha256 TEXT, encoding TEXT, passages INTEGER, indexed_at REAL);
CREATE TABLE IF NOT EXISTS passages(id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files(id)
    ON DELETE CASCADE, start_line INTEGER, end_line INTEGER, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS passages_file ON passages(file_id);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(terms, content='', tokenize='porter unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS collections(name TEXT PRIMARY KEY, roots TEXT NOT NULL, created_at REAL);
CREATE TABLE IF NOT EXISTS vectors(passage_id INTEGER NOT NULL REFERENCES passages(id) ON DELETE CASCADE,
    model TEXT NOT NULL, part INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY(passage_id, model, part));
-- fewer, larger segment merges while indexing (kept in the table's config)
INSERT INTO fts(fts, rank) VALUES('automerge', 16);
""",
)
# An index can be built again from the files: speed over durability
# (measured on 17 MB: 12.9 MB/s with the defaults, 19-21 with these).
PRAGMAS: dict[str, str | int] = {"synchronous": "OFF", "cache_size": -65536}
# Embedding models are trained on sentences and short paragraphs: a passage is embedded in parts of
# about this many characters (the best part's similarity counts). Measured with all-MiniLM-L6-v2: a
# planted fact at the end of a 370-token passage scored 0.001 against its question whole, 0.7 alone.
EMBED_PART_CHARS = 240
RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al.; aichat uses the same)
COMMIT_EVERY = 10_000  # passages: Ctrl+C keeps what was committed


@dataclass(frozen=True)
class Hit:
    passage_id: int
    path: str
    start_line: int
    end_line: int
    text: str
    #: the fused rank score (higher is better); bm25 and vector parts for --json
    score: float
    bm25: float | None = None
    similarity: float | None = None
    #: share of the question's weight (IDF) that the passage's words cover
    coverage: float = 0.0

    def where(self) -> str:
        """``path:first-last`` (the path relative to the working directory when it lies inside it)."""
        lines = f"{self.start_line}" if self.start_line == self.end_line else f"{self.start_line}-{self.end_line}"
        path = self.path
        try:
            path = str(Path(path).relative_to(Path.cwd()))
        except ValueError:
            pass
        return f"{path}:{lines}"


@dataclass
class Update:
    """How an update went; ``skipped`` holds one line per file not indexed, and why."""

    files: int = 0
    read: int = 0
    unchanged: int = 0
    removed: int = 0
    passages: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    #: notes about how files were read (an encoding detected, bad bytes replaced)
    notes: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Collection:
    name: str
    roots: list[str]
    files: int
    passages: int
    bytes: int


ProgressFn = Callable[[Update, str], None]


class DocIndex:
    def __init__(self, path: Path | str | None = None):
        """``path``: the database (default: ``docs.sqlite3`` in the data dir; ":memory:" for text that is
        not kept, such as stdin)."""
        self.path = path if path == ":memory:" else Path(path or paths.data_dir() / "docs.sqlite3")
        self._lock = threading.RLock()
        self._db = sqlite.connect(self.path, MIGRATIONS, what="the document index", error=DocsError, pragmas=PRAGMAS)

    def close(self) -> None:
        self._db.close()

    # -- keeping it up to date ---------------------------------------------------------

    def update(self, roots: Iterable[Path | str], *, progress: ProgressFn | None = None,
               cancel: threading.Event | None = None) -> Update:
        """Index what changed under ``roots`` (files or folders); files gone from a folder drop out.

        Files whose size and time are as indexed are not opened; the others are read beside this thread,
        which writes them to the database (``read_worker``), so both cores index."""
        report = Update()
        start = time.perf_counter()
        root_paths = [Path(r).expanduser() for r in roots]

        def show(path: str) -> None:
            if progress is not None:
                report.seconds = time.perf_counter() - start
                progress(report, path)

        with self._lock:
            known = {row[0]: row[1:] for row in self._db.execute("SELECT path, id, size, mtime_ns, sha256 FROM files")}
            seen: set[str] = set()
            to_read: list[read_worker.ToRead] = []
            for found in textfiles.walk(root_paths):
                if isinstance(found, textfiles.Skipped):
                    seen.add(str(found.path))
                    report.skipped.append(f"{found.path}: {found.reason}")
                    continue
                path, st = found
                seen.add(str(path))
                row = known.get(str(path))
                if row is not None and row[1] == st.st_size and row[2] == st.st_mtime_ns:
                    report.files += 1
                    report.unchanged += 1
                else:
                    to_read.append((str(path), st.st_size, st.st_mtime_ns, row))
            show(str(root_paths[-1]) if root_paths else "")
            steps = read_worker.Reading(to_read) if to_read else None
            file_id: int | None = None
            count = pending = 0
            self._db.execute("BEGIN")
            try:
                for step in steps or ():
                    if cancel is not None and cancel.is_set():
                        report.stopped = True
                        break
                    if isinstance(step, read_worker.Batch):
                        assert file_id is not None
                        n = self._insert_passages(file_id, step.passages, step.terms)
                        count, pending, report.passages = count + n, pending + n, report.passages + n
                        continue
                    if isinstance(step, read_worker.Skip):
                        report.skipped.append(f"{step.path}: {step.reason}")
                        self._drop_unfinished(file_id)  # it failed halfway through (a read error)
                        file_id = None
                        if step.row is not None:
                            self._forget(step.row[0])
                        continue
                    if isinstance(step, read_worker.Same):
                        report.files += 1
                        report.read += 1
                        report.bytes += step.size
                        self._db.execute("UPDATE files SET size=?, mtime_ns=? WHERE id=?",
                                         (step.size, step.mtime_ns, step.row[0]))
                    elif isinstance(step, read_worker.Begin):
                        report.files += 1
                        if step.row is not None:
                            self._forget(step.row[0])
                        file_id = self._db.execute(
                            "INSERT INTO files(path, size, mtime_ns, passages, indexed_at) VALUES(?, ?, ?, 0, ?)",
                            (step.path, step.size, step.mtime_ns, time.time())).lastrowid
                        count = 0
                        report.read += 1
                        report.bytes += step.size
                    elif isinstance(step, read_worker.End):
                        self._db.execute("UPDATE files SET sha256=?, passages=? WHERE id=?",
                                         (step.sha256, count, file_id))
                        file_id = None
                        if step.note:
                            report.notes.append(step.note)
                    show(step.path)
                    if pending >= COMMIT_EVERY:
                        self._db.execute("COMMIT")
                        self._db.execute("BEGIN")
                        pending = 0
                if not report.stopped:
                    report.removed = self._drop_missing(root_paths, seen)
                self._drop_unfinished(file_id)
                self._db.execute("COMMIT")
            except BaseException:
                self._drop_unfinished(file_id)
                self._db.execute("COMMIT")  # what was indexed stays (Ctrl+C, a full disk)
                raise
            finally:
                if steps is not None:
                    steps.close()
        report.seconds = time.perf_counter() - start
        return report

    def _drop_unfinished(self, file_id: int | None) -> None:
        """A file stopped halfway goes: kept, it would pass for indexed (its size and time are recorded)."""
        if file_id is not None:
            self._forget(file_id)

    def add_text(self, name: str, text: str) -> int:
        """Index ``text`` under the pseudo-path ``name`` (stdin); returns its passages."""
        with self._lock:
            self._db.execute("BEGIN")
            row = self._db.execute("SELECT id FROM files WHERE path=?", (name,)).fetchone()
            if row is not None:
                self._forget(row[0])
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            cur = self._db.execute("INSERT INTO files(path, size, sha256, passages, indexed_at) VALUES(?, ?, ?, 0, ?)",
                                   (name, len(text.encode("utf-8")), digest, time.time()))
            found = [(p.start_line, p.end_line, p.text) for p in cutter.cut(text)]
            n = self._insert_passages(cur.lastrowid, found, [terms.index_text(t) for _, _, t in found])
            self._db.execute("UPDATE files SET passages=? WHERE id=?", (n, cur.lastrowid))
            self._db.execute("COMMIT")
        return n

    def _insert_passages(self, file_id: int | None, found: list[tuple[int, int, str]], indexed: list[str]) -> int:
        """Passages (first line, last line, text) of ``file_id``, and their text as indexed."""
        if not found:
            return 0
        # ids given here, so that both tables are written in two executemany calls (not two calls a passage)
        first = self._db.execute("SELECT coalesce(max(id), 0) + 1 FROM passages").fetchone()[0]
        rows = [(first + i, file_id, start, end, text) for i, (start, end, text) in enumerate(found)]
        self._db.executemany("INSERT INTO passages(id, file_id, start_line, end_line, text) VALUES(?, ?, ?, ?, ?)",
                             rows)
        self._db.executemany("INSERT INTO fts(rowid, terms) VALUES(?, ?)", [(r[0], t) for r, t in zip(rows, indexed)])
        return len(found)

    def _forget(self, file_id: int) -> None:
        # a contentless FTS table deletes a row given what it indexed: the terms are made again from the text
        for pid, text in self._db.execute("SELECT id, text FROM passages WHERE file_id=?", (file_id,)).fetchall():
            self._db.execute("INSERT INTO fts(fts, rowid, terms) VALUES('delete', ?, ?)", (pid, terms.index_text(text)))
        self._db.execute("DELETE FROM files WHERE id=?", (file_id,))

    def _drop_missing(self, roots: list[Path], seen: set[str]) -> int:
        removed = 0
        for root in roots:
            for file_id, path in self._files_under(root):
                if path not in seen:
                    self._forget(file_id)
                    removed += 1
        return removed

    def _files_under(self, root: Path) -> list[tuple[int, str]]:
        base = str(root.expanduser().resolve())
        pattern = base.rstrip("/").replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
        return self._db.execute("SELECT id, path FROM files WHERE path=? OR path LIKE ? ESCAPE '\\'",
                                (base, pattern)).fetchall()

    # -- collections ----------------------------------------------------------------------

    def add_collection(self, name: str, roots: list[str]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO collections(name, roots, created_at) VALUES(?, ?, ?)",
                             (name, json.dumps(roots), time.time()))

    def collection_roots(self, name: str) -> list[str]:
        row = self._db.execute("SELECT roots FROM collections WHERE name=?", (name,)).fetchone()
        if row is None:
            known = ", ".join(c.name for c in self.collections()) or "none yet"
            raise DocsError(f"no collection named {name!r} (collections: {known}); "
                            f"'gptterm docs add {name} PATH...' makes one")
        return list(json.loads(row[0]))

    def roots_for(self, items: Iterable[str]) -> list[str]:
        """The roots that ``items`` name: each ``@NAME`` is collection NAME's roots (a DocsError naming the
        collections there are when there is none of that name), any other item a path, made absolute."""
        roots: list[str] = []
        for item in items:
            if item.startswith("@"):
                roots += self.collection_roots(item[1:])
            else:
                roots.append(str(Path(item).expanduser().resolve()))
        return roots

    def collections(self) -> list[Collection]:
        out = []
        for name, roots_json in self._db.execute("SELECT name, roots FROM collections ORDER BY name").fetchall():
            roots = json.loads(roots_json)
            ids = self.scope(roots)
            files, count, size = self._totals(ids)
            out.append(Collection(name, roots, files, count, size))
        return out

    def remove_collection(self, name: str) -> int:
        """Forget the collection and the files only it covered; returns how many files went."""
        roots = self.collection_roots(name)
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM collections WHERE name=?", (name,))
            others = [r for c in self.collections() for r in c.roots]
            keep = set(self.scope(others))
            gone = [fid for fid in self.scope(roots) if fid not in keep]
            for fid in gone:
                self._forget(fid)
            self._db.execute("COMMIT")
        return len(gone)

    def files(self, ids: list[int]) -> list[tuple[str, int, int]]:
        """(path, size, passages) of the files ``ids``, by path."""
        if not ids:
            return []
        with self._lock, self._scope_table(ids):
            return [(str(p), int(s or 0), int(n or 0)) for p, s, n in self._db.execute(
                "SELECT path, size, passages FROM files WHERE id IN (SELECT id FROM scope) ORDER BY path")]

    def _totals(self, ids: list[int]) -> tuple[int, int, int]:
        if not ids:
            return 0, 0, 0
        with self._scope_table(ids):
            row = self._db.execute("SELECT count(*), coalesce(sum(passages), 0), coalesce(sum(size), 0) FROM files "
                                   "WHERE id IN (SELECT id FROM scope)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    # -- retrieval ------------------------------------------------------------------------

    def scope(self, roots: Iterable[Path | str]) -> list[int]:
        """The ids of the indexed files under ``roots``."""
        ids: list[int] = []
        for root in roots:
            ids += [fid for fid, _ in self._files_under(Path(root))] if str(root) != "stdin" else \
                [r[0] for r in self._db.execute("SELECT id FROM files WHERE path='stdin'")]
        return sorted(set(ids))

    class _ScopeTable:
        def __init__(self, db: sqlite3.Connection, ids: list[int]):
            self.db, self.ids = db, ids

        def __enter__(self) -> None:
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS scope(id INTEGER PRIMARY KEY)")
            self.db.execute("DELETE FROM scope")
            self.db.executemany("INSERT INTO scope(id) VALUES(?)", ((i,) for i in self.ids))

        def __exit__(self, *_: object) -> None:
            self.db.execute("DELETE FROM scope")

    def _scope_table(self, ids: list[int]) -> DocIndex._ScopeTable:
        return DocIndex._ScopeTable(self._db, ids)

    def search(self, question: str, file_ids: list[int], k: int, *, embedder: Embedder | None = None,
               candidates: int = 50) -> list[Hit]:
        """The ``k`` passages of ``file_ids`` that best match ``question``, best first."""
        words = terms.query_terms(question)
        if not file_ids or not (words or embedder):
            return []
        weights, frequent = self._weights(words)
        # Terms in a fifth of all passages say little and cost the most (BM25 scores every passage
        # holding one): left out of the search while rarer ones remain, still counted for coverage.
        searched = [w for w in words if w not in frequent] or words
        with self._lock, self._scope_table(file_ids):
            lexical = self._bm25(searched, candidates) if words else []
            semantic = self._vectors(question, embedder, candidates) if embedder is not None else []
            rows = {r[0]: r for r in self._passage_rows(sorted({pid for pid, _ in lexical + semantic}))}
            coverage = self._coverage(weights, list(rows))
        # BM25 favours a rare word said often; coverage, a passage that has all of the question:
        # both rankings (and the vectors', when there are some) are fused.
        by_coverage = sorted(((pid, c) for pid, c in coverage.items() if c > 0), key=lambda item: -item[1])
        ranked = _fuse(lexical, by_coverage, semantic)[:k]
        bm25, sims = dict(lexical), dict(semantic)
        return [Hit(pid, rows[pid][1], rows[pid][2], rows[pid][3], rows[pid][4], score, bm25.get(pid), sims.get(pid),
                    coverage.get(pid, 0.0)) for pid, score in ranked if pid in rows]

    def _bm25(self, words: list[str], limit: int) -> list[tuple[int, float]]:
        rows = self._db.execute(
            "SELECT fts.rowid, bm25(fts) FROM fts JOIN passages p ON p.id = fts.rowid "
            "WHERE fts MATCH ? AND p.file_id IN (SELECT id FROM scope) ORDER BY bm25(fts) LIMIT ?",
            (terms.match_expression(words), limit)).fetchall()
        return [(int(pid), -float(score)) for pid, score in rows]  # bm25() is lower for better matches

    def _vectors(self, question: str, embedder: Embedder, limit: int) -> list[tuple[int, float]]:
        import numpy as np  # heavy: numpy (only a search with embeddings pays for it)

        rows = self._db.execute("SELECT v.passage_id, v.vec FROM vectors v JOIN passages p ON p.id = v.passage_id "
                                "WHERE v.model=? AND p.file_id IN (SELECT id FROM scope)",
                                (embedder.name,)).fetchall()
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        sims = matrix @ embedder.embed([question])[0]
        best: dict[int, float] = {}
        for (pid, _), sim in zip(rows, sims.tolist()):
            if sim > best.get(pid, -2.0):
                best[pid] = sim
        return sorted(best.items(), key=lambda item: -item[1])[:limit]

    def _coverage(self, weights: dict[str, float], ids: list[int]) -> dict[int, float]:
        """For each passage ``ids``, the share of the question's weight its terms hold."""
        total = sum(weights.values())
        have = {pid: 0.0 for pid in ids}
        if total <= 0 or not ids:
            return have
        marks = ",".join("?" * len(ids))
        for w, weight in weights.items():
            for (pid,) in self._db.execute(f"SELECT rowid FROM fts WHERE fts MATCH ? AND rowid IN ({marks})",
                                           (terms.match_expression([w]), *ids)):
                have[pid] += weight / total
        return have

    def _passage_rows(self, ids: list[int]) -> list[tuple[int, str, int, int, str]]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return self._db.execute(f"SELECT p.id, f.path, p.start_line, p.end_line, p.text FROM passages p "
                                f"JOIN files f ON f.id = p.file_id WHERE p.id IN ({marks})", ids).fetchall()

    def _weights(self, words: list[str]) -> tuple[dict[str, float], set[str]]:
        """Each question term's inverse document frequency (a term no passage has weighs the most), and
        the terms found in more than a fifth of the passages. Counted by FTS5 itself, so that its
        stemming applies (a question's "lift" finds "lifts")."""
        total = self._db.execute("SELECT max(id) FROM passages").fetchone()[0] or 1
        out, frequent = {}, set()
        for w in words:
            df = self._db.execute("SELECT count(*) FROM fts WHERE fts MATCH ?", (terms.match_expression([w]),)
                                  ).fetchone()[0]
            out[w] = math.log((total + 1) / (df + 0.5))
            if df > total / 5 and total >= 100:  # a small index is cheap to search whole
                frequent.add(w)
        return out, frequent

    # -- embeddings -----------------------------------------------------------------------

    def embed_missing(self, embedder: Embedder, file_ids: list[int], *,
                      progress: Callable[[int, int], None] | None = None,
                      cancel: threading.Event | None = None, batch: int = 16) -> int:
        """Give every passage of ``file_ids`` a vector from ``embedder`` (those without one); returns how many."""
        import numpy as np  # heavy: numpy (only embedding pays for it)

        with self._lock, self._scope_table(file_ids):
            todo = self._db.execute(
                "SELECT p.id, p.text FROM passages p WHERE p.file_id IN (SELECT id FROM scope) AND NOT EXISTS "
                "(SELECT 1 FROM vectors v WHERE v.passage_id = p.id AND v.model = ?)", (embedder.name,)).fetchall()
        done = 0
        for start in range(0, len(todo), batch):
            if cancel is not None and cancel.is_set():
                break
            chunk = todo[start:start + batch]
            parts = [(pid, k, text) for pid, passage in chunk for k, text in enumerate(_parts(passage))]
            vectors = embedder.embed([text for _, _, text in parts]).astype(np.float32)
            with self._lock:
                self._db.executemany("INSERT OR REPLACE INTO vectors(passage_id, model, part, vec) VALUES(?, ?, ?, ?)",
                                     [(pid, embedder.name, k, vec.tobytes()) for (pid, k, _), vec in zip(parts, vectors)])
            done += len(chunk)
            if progress is not None:
                progress(done, len(todo))
        return done


def _parts(text: str) -> list[str]:
    """A passage in parts of about EMBED_PART_CHARS, cut after a line or a sentence where one is near."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + EMBED_PART_CHARS)
        if end < len(text):
            cut = max(text.rfind("\n", start, end), text.rfind(". ", start, end), text.rfind("。", start, end))
            end = cut + 1 if cut > start + EMBED_PART_CHARS // 2 else end
        if text[start:end].strip():
            out.append(text[start:end])
        start = end
    return out or [text]


def _fuse(*rankings: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: Σ 1/(K + rank) over the rankings a passage appears in."""
    present = [r for r in rankings if r]
    if len(present) == 1:
        return present[0]
    scores: dict[int, float] = {}
    for ranking in present:
        for rank, (pid, _) in enumerate(ranking):
            scores[pid] = scores.get(pid, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(scores.items(), key=lambda item: -item[1])

