"""Translate documents of any length, keeping their shape.

The document is cut into paragraphs; blank lines and fenced code blocks are
copied verbatim, Markdown markers (headings, list bullets, quotes,
indentation) are kept out of what the model sees and put back, and each
paragraph keeps its line count: a multi-line paragraph is translated whole
and accepted only if the line count matches, else line by line. A paragraph
too long for the context is cut at sentence boundaries. The system prompt
is identical for every piece, so its KV cache is reused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable, Generator, Iterator, TYPE_CHECKING

from gptterm.assets import language_name, load_prompt
from gptterm.errors import InputError, TaskError, UsageError
from gptterm.tasks.chunking import chunk_text, paragraphs, split_in_two
from gptterm.tasks.inputs import read_text_file
from gptterm.tasks.job import Job, TaskEvent, strip_preamble, stream_reply

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.types import Message
    from gptterm.settings import Params

_MARKER = re.compile(r"^(\s*(?:#{1,6}\s+|[-*+]\s+(?:\[[ xX]\]\s+)?|\d{1,9}[.)]\s+|>\s?)*)")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
SAFETY_TOKENS = 16
# Languages both offered by gptterm (assets/languages.tsv) and known to py3langid's model.
_KNOWN_TO_LANGID = ["af", "am", "ar", "az", "be", "bg", "bn", "bs", "ca", "cs", "cy", "da", "de", "el", "en", "eo",
                    "es", "et", "eu", "fa", "fi", "fr", "ga", "gl", "gu", "ha", "he", "hi", "hr", "ht", "hu", "hy",
                    "id", "ig", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "ku", "ky", "la", "lb", "lo",
                    "lt", "lv", "mg", "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "no", "pa", "pl", "ps",
                    "pt", "ro", "ru", "si", "sk", "sl", "so", "sq", "sr", "sv", "sw", "ta", "te", "tg", "th", "tl",
                    "tr", "tt", "ug", "uk", "ur", "uz", "vi", "xh", "yo", "zh", "zu"]


def _marker(line: str) -> str:
    """The Markdown markers ``line`` starts with, possibly none."""
    match = _MARKER.match(line)
    assert match is not None  # every part of the pattern is optional: it matches any line
    return match.group(1)


def detect_language(text: str) -> str:
    """Language code of ``text`` (py3langid, restricted to the languages gptterm offers)."""
    import py3langid.langid as langid  # heavy: py3langid (only detecting a language pays for it)

    sample = "\n".join(p for p in paragraphs(text) if not p.lstrip().startswith(("```", "~~~")))[:4000]
    if not _LETTER.search(sample):
        raise InputError("cannot tell the language of the input (no letters); pass --from")
    langid.set_languages(_KNOWN_TO_LANGID)
    code, _score = langid.classify(sample)
    return code


def source_language(text: str) -> tuple[str, ...]:
    """``(code,)`` of the language ``text`` is in, or ``()`` when it cannot be told (no letters)."""
    try:
        return (detect_language(text),)
    except InputError:
        return ()


def load_glossary(path: str | Path, notify: Callable[[str], None] | None = None) -> dict[str, str]:
    """Term -> translation from a JSON object, or lines ``term<TAB>translation`` / ``term = translation``;
    read in any encoding (``gptterm.textio``; ``notify`` hears how, when it was a guess)."""
    p = Path(path)
    text = read_text_file(p, notify=notify).text
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"glossary {p} is not valid JSON: {err}") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise InputError(f"glossary {p} must be a JSON object of term: translation strings")
        return dict(data)
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        for sep in ("\t", " = ", " -> ", " → ", "="):
            if sep in line:
                term, translation = (part.strip() for part in line.split(sep, 1))
                break
        else:
            raise InputError(f"glossary {p} line {n}: expected 'term<TAB>translation' or 'term = translation'")
        if term and translation:
            out[term] = translation
    return out


class Translator(Job):
    def __init__(self, engine: Engine, params: Params, *, target: str, source: str | None = None,
                 glossary: dict[str, str] | None = None):
        super().__init__(engine, params)
        self.target = language_name(target)
        self.source = language_name(source) if source else None
        self.glossary = glossary or {}
        self.text = ""
        self.prompt = load_prompt("translate")

    # -- prompt ------------------------------------------------------------------

    def _messages(self, text: str, lines: int = 1) -> list[Message]:
        terms = {k: v for k, v in self.glossary.items() if k.lower() in text.lower()}
        glossary = ("Always translate these terms exactly as given: "
                    + "; ".join(f"{k} → {v}" for k, v in terms.items()) + ".") if terms else ""
        keep = f"The text has {lines} lines: keep exactly {lines} lines, line by line." if lines > 1 else ""
        return self.prompt.messages(text=text, source=self.source or "the source language", target=self.target,
                                    glossary=glossary, lines=keep)

    def _apply_glossary(self, source: str, out: str) -> str:
        # A term the model left untranslated is replaced by the required translation.
        for term, translation in self.glossary.items():
            if term in source and term in out and translation not in out:
                out = out.replace(term, translation)
        return out

    def budget(self) -> int:
        overhead = self.engine.count_chat_tokens(self._messages(""))
        # the reply needs about as many tokens as the input (more for some scripts)
        return max(16, (self.engine.n_ctx - overhead - SAFETY_TOKENS) // 3)

    # -- running -------------------------------------------------------------------

    def run(self, text: str) -> Iterator[TaskEvent]:
        if not text.strip():
            raise InputError("nothing to translate: the input is empty")
        if self.source is None:
            self.source = language_name(detect_language(text))
        if self.source == self.target:
            raise TaskError(f"the text is already in {self.target}: choose another target language")
        units = paragraphs(text)
        self._budget = self.budget()
        self.count.total = sum(self._planned(u) for u in units if self._translatable(u))
        out: list[str] = []
        for unit in units:
            if not self._translatable(unit):
                out.append(unit)
                yield TaskEvent("text", unit)
                continue
            if self.stopping or self.cancelled:
                self.cancelled = True
                break
            translated = yield from self._paragraph(unit)
            out.append(translated)
            if self.cancelled:
                break
        self.text = "".join(out)

    @staticmethod
    def _translatable(unit: str) -> bool:
        stripped = unit.lstrip()
        return bool(_LETTER.search(unit)) and not stripped.startswith(("```", "~~~"))

    def _whole(self, body: str, lines: list[str]) -> bool:
        """Whether a multi-line paragraph is tried whole: it has lines that are not list items, and it fits
        one model call (a longer one goes line by line, each line cut at sentences if it must be)."""
        return (len(lines) > 1 and not all(_marker(line) for line in lines)
                and self.engine.count_tokens(body) <= self._budget)

    def _line_parts(self, content: str) -> int:
        if not _LETTER.search(content):
            return 0
        if self.engine.count_tokens(content) <= self._budget:
            return 1
        return len(chunk_text(content, self._budget, self.engine.count_tokens))

    def _planned(self, unit: str) -> int:
        """The model calls a paragraph is expected to take (the count grows if one must be redone)."""
        body = unit.rstrip("\n")
        lines = body.split("\n")
        if self._whole(body, lines):
            return 1
        return sum(self._line_parts(line[len(_marker(line)):].rstrip()) for line in lines)

    def _paragraph(self, unit: str) -> Generator[TaskEvent, None, str]:
        body = unit.rstrip("\n")
        tail = unit[len(body):]  # the blank lines after the paragraph, copied
        lines = body.split("\n")
        if self._whole(body, lines):
            number = self.count.done + 1
            attempt, complete = yield from self._piece(body, lines=len(lines), emit=False)
            if complete and attempt is not None and attempt.count("\n") == body.count("\n"):
                yield TaskEvent("text", attempt + tail)
                return attempt + tail
            if self.cancelled:
                return ""
            more = sum(self._line_parts(line[len(_marker(line)):].rstrip()) for line in lines)
            why = "reached the token cap" if not complete else "did not keep its lines"
            self.chunks[-1]["redone"] = True  # its output is not in the text: the lines below replace it
            self.count.grow(more, f"part {number} {why}: redone line by line")
        out = []
        for i, line in enumerate(lines):
            prefix = _marker(line)
            content = line[len(prefix):]
            trailing = content[len(content.rstrip()):]
            content = content.rstrip()
            if _LETTER.search(content):
                # the marker goes out with the text: progress on a terminal is drawn at a line's start
                translated = yield from self._long(content, lead=prefix)
            else:
                translated = content
                yield TaskEvent("text", prefix + content)
            end = trailing + ("\n" if i < len(lines) - 1 else "")
            yield TaskEvent("text", end)
            out.append(prefix + translated + end)
            if self.cancelled:
                break
        yield TaskEvent("text", tail)
        return "".join(out) + tail

    def _long(self, content: str, lead: str = "") -> Generator[TaskEvent, None, str]:
        if self.engine.count_tokens(content) <= self._budget:
            pieces = [content]
        else:
            pieces = chunk_text(content, self._budget, self.engine.count_tokens)
        out = []
        for j, piece in enumerate(pieces):
            translated = yield from self._split_if_cut(piece.strip(), lead=lead if j == 0 else " ")
            out.append(translated)
            if self.cancelled:
                break
        return " ".join(out)

    def _split_if_cut(self, text: str, *, lead: str = "", depth: int = 0) -> Generator[TaskEvent, None, str]:
        """Translate one piece; one that reaches the token cap is cut in two at a sentence (else a word) and
        both halves are done again (the total grows); a half that reaches it too is reported incomplete."""
        number = self.count.done + 1
        translated, complete = yield from self._piece(text, emit=False)
        if complete or self.cancelled or self.stopping:
            yield TaskEvent("text", lead + translated)
            return translated
        halves = [h for h in split_in_two(text) if h.strip()] if depth == 0 else []
        if len(halves) < 2:
            self.incomplete.append(number)
            self.chunks[-1]["incomplete"] = True
            yield TaskEvent("text", lead + translated)
            return translated
        self.chunks[-1]["redone"] = True  # its output is not in the text: the halves replace it
        self.count.grow(len(halves), f"part {number} reached the token cap: split in {len(halves)} and done again")
        out = []
        for k, half in enumerate(halves):
            done = yield from self._split_if_cut(half.strip(), lead=lead if k == 0 else " ", depth=depth + 1)
            out.append(done)
            if self.cancelled:
                break
        return " ".join(out)

    def _piece(self, text: str, *, lines: int = 1, emit: bool) -> Generator[TaskEvent, None, tuple[str, bool]]:
        """One model call: the cleaned translation, and whether the reply ended by itself (not at the cap)."""
        part = self.count.done
        yield self.progress()
        need = self.engine.count_tokens(text)
        cap = max(32, min(self.params.max_tokens, 3 * need + 16))
        reply = self.engine.chat(self._messages(text, lines), self.params.replace(max_tokens=cap))
        for _ in stream_reply(self, reply, emit=False):
            pass
        self.count.done += 1
        result_text = self._clean(text, reply.text, lines)
        self.record(reply, index=part, total=self.count.total, source=text, input_tokens=need, max_tokens=cap)
        self.chunks[-1]["output"] = result_text
        if emit:
            yield TaskEvent("text", result_text)
        yield TaskEvent("chunk", index=part, total=self.count.total, result=self.chunks[-1])
        return result_text, reply.finish_reason != "length"

    def _clean(self, source: str, out: str, lines: int = 1) -> str:
        out = strip_preamble(out).strip()
        if lines == 1:
            # Anything after the first line is commentary ("Explanation: ...")
            out = next((line.strip() for line in out.split("\n") if line.strip()), "")
        if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'“”«»" and source[:1] not in "\"'“”«»":
            out = out[1:-1].strip()
        if out.startswith("“") and out.endswith("”") and not source.startswith("“"):
            out = out[1:-1].strip()
        return self._apply_glossary(source, out)


def check_target(code: str | None) -> str:
    if not code:
        raise UsageError("say which language to translate to: --to CODE (e.g. --to zh)")
    return language_name(code)
