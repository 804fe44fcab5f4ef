"""``gptterm docs``: named collections for ``ask``, and the indexing every face of it shares."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from gptterm.cli.options import DocsOptions
from gptterm.cli.io import Status, note
from gptterm.docs.embed import LocalEmbedder
from gptterm.docs.index import DocIndex
from gptterm.errors import DocsError, InputError, UsageError
from gptterm.models.names import human_size
from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.docs.embed import Embedder
    from gptterm.docs.index import Update

SHOWN_SKIPS = 20  # skipped files listed one line each, up to this many


def index_roots(index: DocIndex, roots: list[str], cancel: threading.Event | None = None) -> Update:
    """Bring the index up to date for ``roots``: progress on stderr, one line per file skipped."""
    with Status() as line:

        def show(report: Update, path: str) -> None:
            if report.read:
                line.show(f"indexing: {report.files} files ({report.read} read), {report.passages:,} passages, "
                          f"{report.mb_per_s:.1f} MB/s")

        report = index.update(roots, progress=show, cancel=cancel)
    for skipped in report.skipped[:SHOWN_SKIPS]:
        note(f"skipped {skipped}")
    if len(report.skipped) > SHOWN_SKIPS:
        note(f"… and {len(report.skipped) - SHOWN_SKIPS} more files skipped")
    for text in report.notes:
        note(text)
    if report.read and report.seconds > 1:
        note(f"indexed {report.read} files ({human_size(report.bytes)}, {report.passages:,} passages) in "
             f"{report.seconds:.1f} s, {report.mb_per_s:.1f} MB/s")
    return report


def embed_scope(index: DocIndex, embedder: Embedder, ids: list[int]) -> int:
    with Status() as line:
        return index.embed_missing(embedder, ids, progress=lambda d, t: line.show(
            f"embedding: {d:,} of {t:,} passages", fraction=d / t if t else None))


def load_embedder(spec: str, threads: int | None) -> Embedder:
    return LocalEmbedder(spec, threads=threads)


def run_docs(opts: DocsOptions) -> int:
    index = DocIndex()
    action = opts.action or "ls"
    if action == "ls":
        collections = index.collections()
        if opts.json:
            print(json.dumps([{"name": c.name, "roots": c.roots, "files": c.files, "passages": c.passages,
                               "bytes": c.bytes} for c in collections], ensure_ascii=False, indent=2))
        elif not collections:
            note("no collections yet: 'gptterm docs add NAME PATH...' makes one, 'gptterm ask @NAME \"…\"' uses it")
        else:
            for c in collections:
                print(f"{c.name}\t{c.files} files\t{c.passages:,} passages\t{human_size(c.bytes)}\t"
                      + ", ".join(c.roots))
        return 0
    if action == "add":
        if not opts.name.strip() or opts.name.startswith("@") or "/" in opts.name:
            raise UsageError(f"a collection name is a plain word, not {opts.name!r}")
        roots = [str(Path(p).expanduser().resolve()) for p in opts.paths]
        missing = [p for p in roots if not Path(p).exists()]
        if missing:
            raise InputError(f"no such file or folder: {missing[0]}")
        try:
            old = index.collection_roots(opts.name)
        except DocsError:  # a new collection
            old = []
        roots = old + [r for r in roots if r not in old]
        report = index_roots(index, roots)
        index.add_collection(opts.name, roots)
        if opts.embed_model:
            embed_scope(index, load_embedder(opts.embed_model, None), index.scope(roots))
        print(f"{opts.name}: {len(index.scope(roots))} files, ask with: gptterm ask @{opts.name} \"QUESTION\"")
        return 130 if report.stopped else 0
    if action == "update":
        names = [opts.name] if opts.name else [c.name for c in index.collections()]
        for name in names:
            report = index_roots(index, index.collection_roots(name))
            print(f"{name}: {report.read} files read again, {report.unchanged} unchanged, {report.removed} gone")
        return 0
    if action == "rm":
        gone = index.remove_collection(opts.name)
        note(f"removed collection {opts.name} ({gone} files no other collection covers dropped from the index)")
        return 0
    files = index.files(index.scope(index.collection_roots(opts.name)))
    if opts.json:
        print(json.dumps([{"path": p, "bytes": s, "passages": n} for p, s, n in files], ensure_ascii=False, indent=2))
    else:
        for p, s, n in files:
            print(f"{p}\t{human_size(s)}\t{plural(n, 'passage')}")
    return 0
