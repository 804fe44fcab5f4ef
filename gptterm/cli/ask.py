"""``gptterm ask``: a question answered from files, folders, collections or stdin, with its sources."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from gptterm import textio
from gptterm.cli import setup
from gptterm.cli.docs import embed_scope, index_roots, load_embedder
from gptterm.cli.io import TurnWriter, keeping_partial, note, read_stdin, run_turn
from gptterm.cli.options import AskOptions
from gptterm.docs.index import DocIndex
from gptterm.errors import InputError, UsageError
from gptterm.session.turn import turn
from gptterm.tasks.ask import Asker, sources_text
from gptterm.tasks.chat import ChatSession

if TYPE_CHECKING:
    from gptterm.docs.index import Hit


def hit_json(i: int, h: Hit) -> dict[str, object]:
    return {"n": i, "path": h.path, "start_line": h.start_line, "end_line": h.end_line, "score": round(h.score, 5),
            "bm25": h.bm25, "similarity": h.similarity, "coverage": round(h.coverage, 3), "text": h.text}


def run_ask(opts: AskOptions) -> int:
    *items, question = opts.items
    question = textio.clean(question, "the question").strip()
    if not question:
        raise UsageError("the question is empty")
    if opts.k < 1:
        raise UsageError("-k must be at least 1")
    session = opts.session()
    piped = read_stdin(session.config.encoding)
    if piped is not None and not piped.strip():
        piped = None  # an empty pipe (or /dev/null) is no document
    if not items and piped is None:
        raise InputError("give files, folders or @COLLECTION before the question, or pipe a document on stdin")
    # The model loads while the index is brought up to date and searched: over a folder already indexed,
    # the answer then starts as soon as a plain prompt's would.
    loading = None if opts.sources else ThreadPoolExecutor(1, "gptterm-load").submit(session.load)
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
    params = session.params
    embedder = load_embedder(opts.embed_model, params.threads) if opts.embed_model else None
    if embedder is not None:
        embed_scope(index, embedder, ids)
    if opts.sources:
        hits = index.search(question, ids, opts.k, embedder=embedder)
        if opts.json:
            print(json.dumps({"question": question, "sources": [hit_json(i, h) for i, h in enumerate(hits, 1)]},
                             ensure_ascii=False))
        elif not hits:
            note("no passage matches the question")
        for i, h in enumerate(hits if not opts.json else [], start=1):
            print(f"[{i}] {h.where()}  (coverage {h.coverage:.0%})\n{h.text}\n")
        return 0
    assert engine is not None
    setup.advise(session, "ask", ())
    grounding = Asker(engine, params, index, ids, k=opts.k, embedder=embedder).find(question)
    chat = ChatSession(engine, params, store=session.store, kind="ask")
    logged = chat.store is not None
    current = turn(chat, question, grounding=grounding)
    if not current.found:
        if opts.json:
            print(json.dumps({"question": question, "answer": None, "found": False, "text": current.text,
                              "sources": [hit_json(i, h) for i, h in enumerate(grounding.hits, 1)]},
                             ensure_ascii=False))
        else:
            print(current.text)
            if opts.verbose and grounding.hits:
                note("nearest passages: " + "; ".join(h.where() for h in grounding.hits))
        return 0
    if grounding.dropped:
        note(f"{grounding.dropped} of the passages found did not fit the context (a bigger --ctx holds more)")
    reply = current.reply
    assert reply is not None
    writer = TurnWriter(setup.reply_writer(opts, reply), show=opts.show_thinking)
    with keeping_partial(reply, writer, logged=logged):
        interrupted = run_turn(current, None if opts.json else writer)
    if opts.json:
        print(json.dumps({"question": question, "answer": reply.text, "thinking": reply.thinking or None,
                          "found": True, "model": engine.info.name,
                          "finish_reason": reply.finish_reason, **reply.stats.as_dict(),
                          "sources": [hit_json(i, h) for i, h in enumerate(grounding.hits, 1)],
                          **setup.logprobs_json(reply)}, ensure_ascii=False))
    else:
        writer.end_line()
        print("\nSources:\n" + sources_text(grounding.hits))
    if opts.verbose:
        note(setup.stats_line(reply))
    return 130 if interrupted else 0
