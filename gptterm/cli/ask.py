"""``gptterm ask``: a question answered from files, folders, collections or stdin, with its sources."""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from gptterm import textio
from gptterm.cli import setup
from gptterm.cli.docs import embed_scope, index_roots, load_embedder
from gptterm.cli.io import ThinkingWriter, keeping_partial, note, read_stdin, run_reply
from gptterm.errors import GpttermError, InputError, UsageError
from gptterm.tasks.ask import sources_text

if TYPE_CHECKING:
    from gptterm.docs.index import Hit
    from gptterm.tasks.ask import Asked


def hit_json(i: int, h: Hit) -> dict[str, object]:
    return {"n": i, "path": h.path, "start_line": h.start_line, "end_line": h.end_line, "score": round(h.score, 5),
            "bm25": h.bm25, "similarity": h.similarity, "coverage": round(h.coverage, 3), "text": h.text}


def run_ask(ns: argparse.Namespace) -> int:
    from gptterm.docs.index import DocIndex
    from gptterm.tasks.ask import NOT_FOUND, Asker

    *items, question = ns.items
    question = textio.clean(question, "the question").strip()
    if not question:
        raise UsageError("the question is empty")
    if ns.k < 1:
        raise UsageError("-k must be at least 1")
    piped = read_stdin(setup.input_encoding(ns))
    if piped is not None and not piped.strip():
        piped = None  # an empty pipe (or /dev/null) is no document
    if not items and piped is None:
        raise InputError("give files, folders or @COLLECTION before the question, or pipe a document on stdin")
    config, params = setup.settings(ns)
    # The model loads while the index is brought up to date and searched: over a folder already indexed,
    # the answer then starts as soon as a plain prompt's would.
    loading = None if ns.sources else ThreadPoolExecutor(1, "gptterm-load").submit(setup.engine, ns, config, params)
    index = DocIndex(":memory:") if not items else DocIndex()
    roots = index.roots_for(items)
    report = index_roots(index, roots) if roots else None
    if report is not None and report.stopped:
        return 130
    if piped is not None:
        index.add_text("stdin", piped)
        roots.append("stdin")
    ids = index.scope(roots)
    if not ids:
        raise InputError("nothing to search: none of the files given holds readable text")
    engine = loading.result() if loading is not None else None  # before the embedder: one model loads at a time
    embedder = load_embedder(ns.embed_model, params.threads) if ns.embed_model else None
    if embedder is not None:
        embed_scope(index, embedder, ids)
    if ns.sources:
        hits = index.search(question, ids, ns.k, embedder=embedder)
        if ns.json:
            print(json.dumps({"question": question, "sources": [hit_json(i, h) for i, h in enumerate(hits, 1)]},
                             ensure_ascii=False))
        elif not hits:
            note("no passage matches the question")
        for i, h in enumerate(hits if not ns.json else [], start=1):
            print(f"[{i}] {h.where()}  (coverage {h.coverage:.0%})\n{h.text}\n")
        return 0
    assert engine is not None
    setup.advise(ns, config, engine, "ask", ())
    asked = Asker(engine, params, index, ids, k=ns.k, embedder=embedder).ask(question)
    store = setup.store(ns)
    if asked.reply is None:
        if ns.json:
            print(json.dumps({"question": question, "answer": None, "found": False, "text": NOT_FOUND,
                              "sources": [hit_json(i, h) for i, h in enumerate(asked.hits, 1)]}, ensure_ascii=False))
        else:
            print(NOT_FOUND)
            if ns.verbose and asked.hits:
                note("nearest passages: " + "; ".join(h.where() for h in asked.hits))
        _record(store, engine.info.name, question, NOT_FOUND, asked)
        return 0
    if asked.dropped:
        note(f"{asked.dropped} of the passages found did not fit the context (a bigger --ctx holds more)")
    reply = asked.reply
    writer = ThinkingWriter(setup.reply_writer(ns, reply), reply, show=ns.show_thinking)
    try:
        with keeping_partial(reply, writer, logged=store is not None):
            interrupted = run_reply(reply, engine.cancel, (lambda _t: None) if ns.json else writer)
    except GpttermError:
        _record(store, engine.info.name, question, reply.text, asked)
        raise
    _record(store, engine.info.name, question, reply.text, asked)
    if ns.json:
        print(json.dumps({"question": question, "answer": reply.text, "thinking": reply.thinking or None,
                          "found": True, "model": engine.info.name,
                          "finish_reason": reply.finish_reason, **reply.stats.as_dict(),
                          "sources": [hit_json(i, h) for i, h in enumerate(asked.hits, 1)],
                          **setup.logprobs_json(reply)}, ensure_ascii=False))
    else:
        writer.end_line()
        print("\nSources:\n" + sources_text(asked.hits))
    if ns.verbose:
        note(setup.stats_line(reply))
    return 130 if interrupted else 0


def _record(store: object, model: str, question: str, answer: str, asked: Asked) -> None:
    """The question and the answer with its sources, as an 'ask' conversation in the history."""
    if store is None:
        return
    from gptterm.history.store import HistoryStore

    assert isinstance(store, HistoryStore)
    cid = store.new_conversation(kind="ask", model=model)
    store.add_message(cid, "user", question)
    reply = asked.reply
    stats = {**reply.stats.as_dict(), "finish_reason": reply.finish_reason} if reply is not None else None
    store.add_message(cid, "assistant", answer + ("\n\nSources:\n" + sources_text(asked.hits) if asked.hits else ""),
                      model=model, stats=stats)
