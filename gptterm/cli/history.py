"""``gptterm history``: list, show, search, delete, rename and export conversations."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from gptterm.cli.options import HistoryOptions
from gptterm.cli.io import note
from gptterm.engine.state_cache import StateCache
from gptterm.history import export
from gptterm.history.store import Conversation, HistoryStore
from gptterm.words import plural


def _row(c: Conversation) -> str:
    when = dt.datetime.fromtimestamp(c.updated_at).strftime("%Y-%m-%d %H:%M")
    return f"{c.id:>5}  {when}  {c.kind:<8} {c.message_count:>4}  {c.title or '(untitled)'}"


def _print_list(convs: list[Conversation], as_json: bool) -> None:
    if as_json:
        print(json.dumps([{k: v for k, v in c.as_dict().items() if k != "messages"} | {"messages": c.message_count}
                          for c in convs], ensure_ascii=False))
        return
    if not convs:
        note("no conversations found")
        return
    print(f"{'id':>5}  {'updated':<16}  {'kind':<8} {'msgs':>4}  title")
    for c in convs:
        print(_row(c))


def run_history(opts: HistoryOptions) -> int:
    store = HistoryStore()
    action = opts.action or "list"
    if action == "list":
        _print_list(store.list_conversations(limit=opts.limit or None), opts.json)
    elif action == "search":
        _print_list(store.list_conversations(limit=opts.limit or None, query=opts.text), opts.json)
    elif action == "show":
        sys.stdout.write(export.render(store.get(opts.id), "json" if opts.json else "md"))
    elif action == "delete":
        for cid in opts.ids:
            store.get(cid)  # every id must exist before anything is deleted
        cache = StateCache()
        for cid in opts.ids:
            store.delete_conversation(cid)
            cache.forget(cid)
        note(f"deleted {plural(len(opts.ids), 'conversation')}")
    elif action == "rename":
        store.rename(opts.id, opts.title)
    elif action == "export":
        conv = store.get(opts.id)
        if opts.output:
            export.write(conv, opts.format, Path(opts.output))
            note(f"wrote {opts.output}")
        else:
            sys.stdout.write(export.render(conv, opts.format))
    return 0
