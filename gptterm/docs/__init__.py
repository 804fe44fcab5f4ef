"""The document index behind ``ask``: files read into passages, SQLite FTS5 with BM25, optional embeddings.

It knows no screen and no prompt: ``textfiles`` walks paths and turns files
into text, ``read_worker`` reads the files an update needs into passages
beside the writer (in a thread, or a child process for much text),
``passages`` cuts text at paragraph, heading and function boundaries with
line numbers, ``terms`` makes words and CJK text searchable, ``index`` keeps
it all in SQLite (re-reading only what changed) and retrieves.
"""
