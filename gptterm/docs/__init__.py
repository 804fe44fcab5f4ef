"""The document index behind ``ask``: files read into passages, SQLite FTS5 with BM25, optional embeddings.

It knows no screen and no prompt: ``reader`` walks paths and turns files into
text, ``passages`` cuts text at paragraph, heading and function boundaries
with line numbers, ``terms`` makes words and CJK text searchable, ``index``
keeps it all in SQLite (re-reading only what changed) and retrieves.
"""
