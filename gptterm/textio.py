"""Bytes to text, the one way every input is read: files, stdin, pipes, REPL lines, arguments.

UTF-8 (with or without a BOM) and UTF-16/32 with a BOM are read as such.
Text that is almost all UTF-8 stays UTF-8, its few bad bytes replaced and
counted. Anything else is detected among the legacy encodings people still
save text in (GB18030, Big5, Shift-JIS, Windows-125x, …) with
charset-normalizer, and the caller says which one was assumed. What still
cannot be read as text (binary files, random bytes) is an ``InputError``:
never replacement characters handed to the model, never a surrogate that
breaks the tokenizer later.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from gptterm.errors import InputError, UsageError

# Byte-order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32 LE"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32 BE"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16 BE"),
)

# What a detected text may be, most likely first: detection scores ties
# (a Latin-1 text is "equally good" as cp1250 and cp1257) go to the earlier.
# UTF-16/32 without a BOM are left out: random bytes pass as them.
LEGACY = ("cp1252", "gb18030", "big5", "cp932", "euc_jp", "cp949", "cp1251", "cp1250", "koi8_r", "cp1253",
          "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "iso8859_15", "latin_1")

# How to call a codec to a user, by the name ``codecs.lookup`` gives it.
NAMES = {"cp1252": "Windows-1252", "gb18030": "GB18030", "big5": "Big5", "cp932": "Shift-JIS (cp932)",
         "euc_jp": "EUC-JP", "cp949": "EUC-KR (cp949)", "cp1251": "Windows-1251", "cp1250": "Windows-1250",
         "koi8-r": "KOI8-R", "cp1253": "Windows-1253", "cp1254": "Windows-1254", "cp1255": "Windows-1255",
         "cp1256": "Windows-1256", "cp1257": "Windows-1257", "cp1258": "Windows-1258",
         "iso8859-15": "ISO-8859-15", "iso8859-1": "ISO-8859-1", "utf-8": "UTF-8", "shift_jis": "Shift-JIS",
         "gbk": "GBK", "utf-16": "UTF-16", "utf-16-le": "UTF-16 LE", "utf-16-be": "UTF-16 BE"}
_RANK = {codecs.lookup(name).name: i for i, name in enumerate(LEGACY)}
_HIGH_BYTES = bytes(range(0x80, 0x100))

# Detection reads this much; the rest is decoded with what it found.
SAMPLE_BYTES = 256 * 1024
# Mostly-UTF-8 text: at least this share of its non-ASCII bytes form valid UTF-8.
UTF8_SHARE = 0.9
# Control characters (not tab, newline, carriage return, form feed, escape) in
# a decoded text beyond this share mean the bytes were not text after all.
MAX_CONTROL_SHARE = 0.02
CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")

ENCODINGS_HINT = ("names Python knows, e.g. utf-8, gb18030, gbk, big5, shift_jis, euc-kr, cp1252, latin-1, "
                  "utf-16; the full list: https://docs.python.org/3/library/codecs.html#standard-encodings")


@dataclass(frozen=True)
class Decoded:
    text: str
    #: the codec used (a name ``codecs`` knows)
    encoding: str
    #: how to call it to a user ("GB18030", "UTF-16 LE")
    label: str
    #: chosen by detection, not by a BOM, UTF-8 validity or the user
    detected: bool = False
    #: bytes that were not valid in ``encoding`` and became U+FFFD
    replaced: int = 0
    first_bad_offset: int | None = None

    def note(self, name: str) -> str | None:
        """The one line a user should see about how ``name`` was read, or None when nothing was guessed."""
        if self.replaced:
            return (f"{name} is not valid {self.label}: {self.replaced} bad byte{'s' if self.replaced > 1 else ''} "
                    f"(the first at offset {self.first_bad_offset}) replaced with \ufffd")
        if self.detected:
            return f"read {name} as {self.label}"
        return None


def check_encoding(name: str) -> str:
    """The codec ``name`` stands for; a UsageError that says how to find valid names."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise UsageError(f"unknown encoding {name!r}: {ENCODINGS_HINT}") from None


def label(encoding: str) -> str:
    return NAMES.get(codecs.lookup(encoding).name, encoding.upper())


def decode(data: bytes, name: str, encoding: str | None = None) -> Decoded:
    """``data`` as text; ``name`` (a file name, "stdin") is what an error calls it.

    ``encoding`` forces a codec (--encoding): then bytes it cannot decode are
    an error, not a guess.
    """
    if encoding:
        codec = check_encoding(encoding)
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as err:
            raise InputError(f"{name} is not {label(codec)} text (byte {err.start}: {err.reason}); "
                             "leave out --encoding to have it detected") from None
        return Decoded(text.removeprefix("\ufeff"), codec, label(codec))
    for bom, codec, shown in BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data[len(bom):].decode(codec), codec, shown)
            except UnicodeDecodeError as err:
                raise InputError(f"{name} starts with a {shown} byte-order mark but is not {shown} text "
                                 f"(byte {err.start + len(bom)})") from None
    if b"\x00" in data:
        raise InputError(f"{name} looks like a binary file, not text (it contains NUL bytes)")
    try:
        return Decoded(data.decode("utf-8"), "utf-8", "UTF-8")
    except UnicodeDecodeError:
        pass
    mostly = _mostly_utf8(data)
    if mostly is not None:
        return mostly
    return _detect(data, name)


class _TooMany(Exception):
    pass


def _mostly_utf8(data: bytes) -> Decoded | None:
    """UTF-8 with a few bad bytes (a log cut mid-character, one pasted Latin-1 word) stays UTF-8."""
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    limit = (1 - UTF8_SHARE) * high
    bad: list[int] = []

    def count(err: UnicodeError) -> tuple[str, int]:
        assert isinstance(err, UnicodeDecodeError)
        bad.append(err.start)
        if len(bad) > limit:
            raise _TooMany  # another encoding: stop counting (a legacy text fails on every other byte)
        return "\ufffd", err.start + 1

    codecs.register_error("gptterm-count-bad-bytes", count)
    try:
        text = data.decode("utf-8", "gptterm-count-bad-bytes")
    except _TooMany:
        return None
    return Decoded(text, "utf-8", "UTF-8", replaced=len(bad), first_bad_offset=bad[0])


def _detect(data: bytes, name: str) -> Decoded:
    import charset_normalizer

    sample = data[:SAMPLE_BYTES]
    matches = list(charset_normalizer.from_bytes(sample, cp_isolation=list(LEGACY)))
    if not matches:
        raise InputError(f"{name} is not text in any encoding gptterm knows (binary data?); "
                         "if it is text, name its encoding with --encoding")
    least = min(m.chaos for m in matches)
    close = [m for m in matches if m.chaos <= least + 0.02]

    def rank(match: object) -> int:
        # a match stands for every codec that decodes the sample the same way ('café' is cp1250 and cp1252 alike)
        names = [match.encoding, *getattr(match, "could_be_from_charset", [])]  # type: ignore[attr-defined]
        return min(_RANK.get(codecs.lookup(n).name, len(LEGACY)) for n in names)

    best = max(close, key=lambda m: (round(m.coherence, 2), -rank(m)))
    codec = LEGACY[rank(best)] if rank(best) < len(LEGACY) else codecs.lookup(best.encoding).name
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as err:  # past the sample: not that encoding after all
        raise InputError(f"{name} looked like {label(codec)} but byte {err.start} is not; "
                         "name its encoding with --encoding") from None
    controls = len(CONTROL.findall(text))
    if controls > MAX_CONTROL_SHARE * max(1, len(text)):
        raise InputError(f"{name} does not look like text (binary data?); if it is, name its encoding with --encoding")
    return Decoded(text, codec, label(codec), detected=True)


def clean(text: str, name: str = "the input") -> str:
    """``text`` from the OS (arguments, input()) with any undecodable bytes it smuggled in as surrogates
    (Python's surrogateescape) decoded properly; an InputError when they are not text."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that were never bytes
        raise InputError(f"{name} holds characters that are not text (lone surrogates)") from None
    return decode(raw, name).text
