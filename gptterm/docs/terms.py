"""What is searched for: words, and Chinese, Japanese and Korean text as character bigrams.

SQLite's ``unicode61`` tokenizer keeps a whole run of CJK characters as one
token, and ``trigram`` cannot match two-character words (NOTES.md), so CJK
runs are rewritten as their overlapping character pairs (一个模型 → 一个 个模
模型) both in what is indexed and in the question: a two-character word then
matches wherever it occurs. Everything else is left to ``unicode61``.
"""

from __future__ import annotations

import re

# Kana, CJK ideographs (with extension A and compatibility), Hangul syllables.
CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Words too common to say anything about a question (English; CJK pairs are weighed by rarity instead).
STOPWORDS = frozenset("""
a about an and are as at be been but by can could did do does for from had has have how i if in into is it its
of on or should so than that the their them then there these they this to was we were what when where which who
whom why will with would you your me my our tell please explain give
""".split())


def _pairs(run: str) -> str:
    if len(run) == 1:
        return run
    return " ".join(run[i:i + 2] for i in range(len(run) - 1))


def index_text(text: str) -> str:
    """``text`` as the index should tokenize it: CJK runs as their character pairs."""
    if text.isascii() or not CJK_RUN.search(text):
        return text
    return CJK_RUN.sub(lambda m: f" {_pairs(m.group())} ", text)


def query_terms(question: str) -> list[str]:
    """The terms of a question, lower-cased, without stopwords, each once, in order."""
    seen: dict[str, None] = {}
    for word in WORD.findall(index_text(question).lower()):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit() or CJK_RUN.fullmatch(word)):
            seen.setdefault(word, None)
    return list(seen)


def match_expression(terms: list[str]) -> str:
    """An FTS5 query matching any of ``terms`` (each quoted: no term is read as query syntax)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
