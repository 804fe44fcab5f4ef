"""The document index: passages with line numbers, BM25 with CJK, keeping it up to date, hostile files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gptterm.docs import passages, terms, textfiles
from gptterm.docs.index import DocIndex
from tests.conftest import ROOT

# the document gptterm grew from (a GPT explainer in Chinese), copied from ../shared/seed so that CI has it
SEED = ROOT / "tests" / "fixtures" / "seed_gpt_explainer_zh.txt"

FACTS = {
    "notes/garden.md": ("The tomato seedlings go into the greenhouse on the fourth of May.", 23),
    "notes/office.txt": ("The access code for the north door is 4417.", 41),
    "src/billing.py": ("def late_fee(days):\n    return 12.5 * days  # the late fee is 12.5 euros a day", 30),
}
FILLER = ("This paragraph talks about the weather, the harbour, the old library and the bakery on the corner. "
          "Nothing in it matters for any question.\n\n")


def make_corpus(root: Path) -> dict[str, int]:
    """Files with a fact planted at a known line; returns the fact's line per file."""
    lines = {}
    for name, (fact, line) in FACTS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        before = "".join(f"filler line {i} about nothing much at all\n" for i in range(1, line))
        if name.endswith(".py"):
            before = "".join(f"# comment line {i}\n" for i in range(1, line))
        path.write_text(before + fact + "\n\n" + FILLER * 10)
        lines[name] = line
    (root / "notes" / "other.md").write_text("# Other\n\n" + FILLER * 30)
    return lines


@pytest.fixture
def index(tmp_path):
    idx = DocIndex(tmp_path / "docs.sqlite3")
    yield idx
    idx.close()


def test_passages_cut_at_headings_and_keep_line_numbers():
    text = "# One\n\nfirst para\n\nsecond para\n# Two\n\nthird"
    cut = list(passages.cut(text))
    assert [(p.start_line, p.end_line) for p in cut] == [(1, 5), (6, 8)]
    assert cut[1].text.startswith("# Two")
    code = "import os\n\ndef a():\n    return 1\n\ndef b():\n    return 2\n"
    assert [p.start_line for p in passages.cut(code, code=True)] == [1, 3, 6]


def test_a_single_long_line_is_cut_between_characters():
    cut = list(passages.cut("x" * (passages.MAX_CHARS * 5)))
    assert len(cut) > 5 and all(p.start_line == p.end_line == 1 for p in cut)
    assert all(len(p.text) <= passages.MAX_CHARS for p in cut)


def test_cjk_runs_become_character_pairs():
    assert terms.index_text("一个模型") == " 一个 个模 模型 "
    assert terms.query_terms("What is 过拟合?") == ["过拟", "拟合"]
    assert terms.match_expression(['a"b']) == '"a""b"'


def test_html_keeps_only_text_on_its_own_lines():
    page = "<html><head><title>x</title><style>p{}</style></head>\n<body>\n<p>Hello\nworld</p>\n<script>no</script>\n</body>"
    text = textfiles.html_text(page)
    assert text.split("\n")[2:4] == ["Hello", "world"] and "no" not in text and "p{}" not in text


def test_planted_facts_are_found_at_their_file_and_lines(index, tmp_path):
    lines = make_corpus(tmp_path / "corpus")
    report = index.update([tmp_path / "corpus"])
    assert report.files == 4 and report.read == 4 and not report.skipped
    ids = index.scope([tmp_path / "corpus"])
    for name, question in (("notes/office.txt", "What is the access code for the north door?"),
                           ("notes/garden.md", "When do the tomato seedlings go into the greenhouse?"),
                           ("src/billing.py", "How much is the late fee per day?")):
        best = index.search(question, ids, 3)[0]
        assert best.path.endswith(name), (question, best.path)
        assert best.start_line <= lines[name] <= best.end_line
        assert best.coverage > 0.5


def test_chinese_question_finds_the_passage_that_answers_it(index):
    index.update([SEED])
    hits = index.search("GPT模型的训练过程分为哪几个步骤？", index.scope([SEED]), 3)
    assert any("训练过程可以分为以下几个步骤" in h.text for h in hits)
    two_chars = index.search("缺点", index.scope([SEED]), 3)  # a two-character word: trigram FTS finds nothing
    assert two_chars and all("缺点" in h.text for h in two_chars)


def test_second_update_reads_nothing_and_changes_are_seen(index, tmp_path):
    root = tmp_path / "corpus"
    make_corpus(root)
    index.update([root])
    again = index.update([root])
    assert again.read == 0 and again.unchanged == 4 and again.passages == 0
    # change one, delete one, add one, touch one
    office = root / "notes" / "office.txt"
    office.write_text("The access code for the north door is now 9000.\n")
    (root / "notes" / "garden.md").unlink()
    (root / "new.txt").write_text("The canteen opens at half past eleven.\n")
    os.utime(root / "src" / "billing.py", (time.time() + 5, time.time() + 5))
    report = index.update([root])
    assert (report.read, report.removed, report.passages) == (3, 1, 2)  # billing.py read, same bytes: kept
    ids = index.scope([root])
    paths = {p for p, _, _ in index.files(ids)}
    assert str(root / "new.txt") in paths and str(root / "notes" / "garden.md") not in paths
    assert "9000" in index.search("north door access code", ids, 1)[0].text
    assert not index.search("tomato seedlings greenhouse", ids, 3) or \
        all("tomato" not in h.text for h in index.search("tomato seedlings greenhouse", ids, 3))


def test_binary_unreadable_empty_and_huge_files_never_crash(index, tmp_path):
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10)
    (root / "blob.dat").write_bytes(b"\x00\x01\x02" * 1000)
    (root / "noise.txt").write_bytes(bytes((i * 37 + 11) % 255 + 1 for i in range(3000)))
    secret = root / "secret.txt"
    secret.write_text("hidden")
    secret.chmod(0)
    (root / "empty.md").write_text("")
    (root / "one-line.txt").write_text("word " * (10 * 1024 * 1024 // 5))  # 10 MB on one line: read in blocks
    (root / "empty-dir").mkdir()
    report = index.update([root])
    reasons = "\n".join(report.skipped)
    assert "image.png: binary file" in reasons and "blob.dat: binary file" in reasons
    assert "noise.txt" in reasons
    if os.geteuid() != 0:  # root reads anything
        assert "secret.txt: cannot read it" in reasons
    assert all("\n" not in line for line in report.skipped)
    ids = index.scope([root])
    assert str(root / "one-line.txt") in {p for p, _, _ in index.files(ids)}
    assert index.update([tmp_path / "nowhere"]).skipped == [f"{tmp_path / 'nowhere'}: no such file or folder"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert index.update([empty]).files == 0 and index.scope([empty]) == []


def test_walk_takes_each_file_once_at_its_real_path(index, tmp_path):
    root = tmp_path / "tree"
    (root / "b").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "node_modules").mkdir()
    (root / "a.md").write_text("The ferry leaves at seven.\n")
    (root / "b" / "c.txt").write_text("The canteen opens at noon.\n")
    (root / ".git" / "config").write_text("ignored\n")
    (root / "node_modules" / "x.js").write_text("ignored\n")
    (root / "alias.md").symlink_to(root / "a.md")  # the same file twice: indexed once
    (root / "loop").symlink_to(root, target_is_directory=True)  # a link to a folder is not followed
    (root / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    found = [f[0] for f in textfiles.walk([root, root / "a.md"])]
    assert found == [root / "a.md", root / "b" / "c.txt"]
    report = index.update([root])
    assert (report.files, report.read, report.skipped) == (2, 2, [])
    again = index.update([root])
    assert (again.files, again.unchanged, again.read) == (2, 2, 0)


def test_a_child_process_reads_as_the_thread_does(tmp_path, monkeypatch):
    """Much text is read by ``python -m gptterm.docs.read_worker``: the same passages as the thread makes,
    hostile files skipped the same way, and a cancelled update keeps what it wrote and stops the child."""
    import threading

    from gptterm.docs import read_worker

    root = tmp_path / "docs"
    make_corpus(root)
    (root / "blob.dat").write_bytes(b"\x00\x01" * 500)
    (root / "zh.txt").write_bytes(SEED.read_text(encoding="utf-8").encode("gb18030"))

    def contents(index: DocIndex) -> list:
        return index._db.execute("SELECT f.path, p.start_line, p.end_line, p.text FROM passages p "
                                 "JOIN files f ON f.id = p.file_id ORDER BY f.path, p.start_line").fetchall()

    threaded = DocIndex(tmp_path / "thread.sqlite3")
    by_thread = threaded.update([root])
    monkeypatch.setattr(read_worker, "PROCESS_BYTES", 0)
    started = []
    real_popen = read_worker.subprocess.Popen
    monkeypatch.setattr(read_worker.subprocess, "Popen", lambda *a, **k: started.append(a) or real_popen(*a, **k))
    child = DocIndex(tmp_path / "child.sqlite3")
    by_child = child.update([root])
    assert started, "the child process was not used"
    assert (by_child.files, by_child.read, by_child.passages, by_child.skipped, by_child.notes) == \
        (by_thread.files, by_thread.read, by_thread.passages, by_thread.skipped, by_thread.notes)
    assert contents(child) == contents(threaded) and contents(child)
    assert "缺点" in child.search("缺点", child.scope([root]), 1)[0].text  # the GB18030 file, decoded in the child
    # cancelled after the first file: what was written stays, the child is gone
    for i in range(30):
        (root / f"more{i}.txt").write_text(FILLER * 20)
    cancel = threading.Event()
    stopped = child.update([root], cancel=cancel, progress=lambda report, path: report.read and cancel.set())
    assert stopped.stopped and 0 < stopped.read < 30
    ids = child.scope([root])
    complete = {p for p, _, n in child.files(ids) if n > 0}
    assert all(n > 0 for _, _, n in child.files(ids))  # the file stopped halfway is not kept as if indexed
    again = child.update([root])  # the rest, and only the rest
    assert not again.stopped and again.read == 30 - len({p for p in complete if "more" in p})
    assert contents(child) and all(n > 0 for _, _, n in child.files(child.scope([root])))


def test_collections_and_text_not_kept(index, tmp_path):
    make_corpus(tmp_path / "corpus")
    index.update([tmp_path / "corpus"])
    index.add_collection("work", [str(tmp_path / "corpus")])
    (c,) = index.collections()
    assert (c.name, c.files) == ("work", 4) and c.passages > 0
    assert index.remove_collection("work") == 4 and index.collections() == []
    memory = DocIndex(":memory:")
    memory.add_text("stdin", "The ferry leaves at seven.\n\nOther things.")
    assert memory.search("when does the ferry leave", memory.scope(["stdin"]), 1)[0].path == "stdin"


# The schema and set-up of the index as gptterm wrote it before its opener was shared (user_version 1).
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS files(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, size INTEGER, mtime_ns INTEGER,
    sha256 TEXT, encoding TEXT, passages INTEGER, indexed_at REAL);
CREATE TABLE IF NOT EXISTS passages(id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files(id)
    ON DELETE CASCADE, start_line INTEGER, end_line INTEGER, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS passages_file ON passages(file_id);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(terms, content='', tokenize='porter unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS collections(name TEXT PRIMARY KEY, roots TEXT NOT NULL, created_at REAL);
CREATE TABLE IF NOT EXISTS vectors(passage_id INTEGER NOT NULL REFERENCES passages(id) ON DELETE CASCADE,
    model TEXT NOT NULL, part INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY(passage_id, model, part));
"""


def test_an_index_written_by_the_old_code_opens_unchanged(tmp_path):
    import sqlite3

    from gptterm.errors import DocsError

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO fts(fts, rank) VALUES('automerge', 16)")
    db.execute("PRAGMA user_version=1")
    text = "The ferry to the island leaves at seven."
    db.execute("INSERT INTO files(id, path, size, mtime_ns, sha256, passages, indexed_at) "
               "VALUES(1, '/old/notes.txt', 41, 1, 'x', 1, 1)")
    db.execute("INSERT INTO passages(id, file_id, start_line, end_line, text) VALUES(1, 1, 3, 3, ?)", (text,))
    db.execute("INSERT INTO fts(rowid, terms) VALUES(1, ?)", (terms.index_text(text),))
    db.execute("INSERT INTO collections(name, roots, created_at) VALUES('old', '[\"/old\"]', 1)")

    def schema() -> list:
        return db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()

    before = schema()
    db.close()
    index = DocIndex(path)
    (hit,) = index.search("when does the ferry leave", index.scope(index.roots_for(["@old"])), 3)
    assert (hit.path, hit.start_line, hit.text) == ("/old/notes.txt", 3, text)
    index.close()
    db = sqlite3.connect(path)
    assert schema() == before and db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    with pytest.raises(DocsError, match=f"the document index {path} was written by a newer gptterm"):
        DocIndex(path)
    (tmp_path / "bad.sqlite3").write_bytes(b"\x01" * 4096)
    with pytest.raises(DocsError, match="cannot open the document index .*bad.sqlite3: file is not a database"):
        DocIndex(tmp_path / "bad.sqlite3")
