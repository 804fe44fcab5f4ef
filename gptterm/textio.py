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
import functools
import re
import threading
from dataclasses import dataclass
from typing import BinaryIO, Callable

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


@functools.lru_cache(maxsize=1)
def _rank() -> dict[str, int]:
    """LEGACY's order by codec name; looked up when first needed (each lookup imports a codec module:
    ~35 ms for all of them, which every start-up would pay)."""
    return {codecs.lookup(name).name: i for i, name in enumerate(LEGACY)}

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
    #: the bytes began with a byte-order mark (written back by ``--output-encoding same``)
    bom: bool = False

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
        if "\x00" in text or _mostly_controls(text):  # Latin-1 decodes any bytes: a binary file too
            raise InputError(f"{name} does not look like {label(codec)} text (binary data?)")
        return Decoded(text.removeprefix("\ufeff"), codec, label(codec), bom=text.startswith("\ufeff"))
    for bom, codec, shown in BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data[len(bom):].decode(codec), codec, shown, bom=True)
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


# The bad bytes of the decode running in this thread (a handler is registered once, by name, for every thread).
_bad_bytes = threading.local()
# One stray byte is still "a few" when this many high bytes around it are valid UTF-8 (two CJK characters):
# a short line ("\xe9你好", a byte held back by a terminal) is UTF-8, not the Windows-1251 its bytes also are.
MIN_VALID_AROUND_ONE = 4


def _count_bad_byte(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeDecodeError)
    _bad_bytes.offsets.append(err.start)
    if len(_bad_bytes.offsets) > _bad_bytes.limit:
        raise _TooMany  # another encoding: stop counting (a legacy text fails on every other byte)
    return "\ufffd", err.start + 1


codecs.register_error("gptterm-count-bad-bytes", _count_bad_byte)


def _mostly_utf8(data: bytes) -> Decoded | None:
    """UTF-8 with a few bad bytes (a log cut mid-character, one pasted Latin-1 word) stays UTF-8."""
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    share = (1 - UTF8_SHARE) * high
    _bad_bytes.offsets, _bad_bytes.limit = [], max(share, 1.0)
    try:
        text = data.decode("utf-8", "gptterm-count-bad-bytes")
    except _TooMany:
        return None
    bad: list[int] = _bad_bytes.offsets
    if len(bad) > share and high - len(bad) < MIN_VALID_AROUND_ONE:
        return None  # "caf\xe9": one bad byte and nothing valid around it is a legacy encoding
    return Decoded(text, "utf-8", "UTF-8", replaced=len(bad), first_bad_offset=bad[0])


def _detect(data: bytes, name: str) -> Decoded:
    import charset_normalizer  # heavy: charset_normalizer (only text that is not UTF-8 pays for it)

    sample = data[:SAMPLE_BYTES]
    matches = list(charset_normalizer.from_bytes(sample, cp_isolation=list(LEGACY)))
    if not matches:
        # A line of ASCII alone reads the same in every candidate, yet in a short text the detector counts
        # lines of punctuation (a Markdown code fence, a rule) as chaos: detect on the other lines.
        informative = b"\n".join(line for line in sample.splitlines() if not line.isascii())
        if informative and len(informative) < len(sample):
            matches = list(charset_normalizer.from_bytes(informative, cp_isolation=list(LEGACY)))
    if not matches:
        raise InputError(f"{name} is not text in any encoding gptterm knows (binary data?); "
                         "if it is text, name its encoding with --encoding")
    least = min(m.chaos for m in matches)
    close = [m for m in matches if m.chaos <= least + 0.02]

    def rank(match: object) -> int:
        # a match stands for every codec that decodes the sample the same way ('café' is cp1250 and cp1252 alike)
        names = [match.encoding, *getattr(match, "could_be_from_charset", [])]  # type: ignore[attr-defined]
        return min(_rank().get(codecs.lookup(n).name, len(LEGACY)) for n in names)

    best = max(close, key=lambda m: (round(m.coherence, 2), -rank(m)))
    codec = LEGACY[rank(best)] if rank(best) < len(LEGACY) else codecs.lookup(best.encoding).name
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as err:  # past the sample: not that encoding after all
        raise InputError(f"{name} looked like {label(codec)} but byte {err.start} is not; "
                         "name its encoding with --encoding") from None
    if _mostly_controls(text):
        raise InputError(f"{name} does not look like text (binary data?); if it is, name its encoding with --encoding")
    return Decoded(text, codec, label(codec), detected=True)


def _mostly_controls(text: str) -> bool:
    return len(CONTROL.findall(text)) > MAX_CONTROL_SHARE * max(1, len(text))


def clean(text: str, name: str = "the input", notify: Callable[[str], None] | None = None) -> str:
    """``text`` from the OS (arguments, input()) with any undecodable bytes it smuggled in as surrogates
    (Python's surrogateescape) decoded properly; an InputError when they are not text. ``notify`` hears
    how they were read ("read the prompt as Windows-1252")."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that were never bytes
        raise InputError(f"{name} holds characters that are not text (lone surrogates)") from None
    decoded = decode(raw, name)
    if notify is not None and (line := decoded.note(name)) is not None:
        notify(line)
    return decoded.text


def _splits_on_newline(codec: str) -> bool:
    """Whether a line of ``codec`` text ends at the byte b"\\n" (not so in UTF-16/32 or EBCDIC)."""
    return "\n".encode(codec) == b"\n"


class LineReader:
    """Lines of a byte stream (a pipe, or a terminal read as bytes), each decoded as it arrives.

    Each line is UTF-8 when it is valid UTF-8; else it is tried in the
    encoding an earlier line was found in (a stream is one text), else it
    goes through ``decode``. ``notify`` hears when the encoding assumed
    changes, or a line's bad bytes are replaced. UTF-16/32 (a byte-order
    mark, or ``encoding``) are decoded as a stream before they are cut into
    lines. A line that is not text is an InputError naming it ("stdin line 3 …").
    """

    CHUNK = 64 * 1024

    def __init__(self, stream: BinaryIO, name: str = "stdin", encoding: str | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        self.stream, self.name = stream, name
        self.forced = check_encoding(encoding) if encoding else None
        self.notify = notify or (lambda _line: None)
        #: the legacy encoding the text so far was found in (None: UTF-8, or nothing beyond ASCII yet)
        self.encoding: str | None = None
        self.lines = 0
        self._pending = b""
        self._started = False
        self._wide: codecs.IncrementalDecoder | None = None  # UTF-16/32: decoded before splitting
        self._text = ""
        self._eof = False

    def _read(self) -> bytes:
        read1 = getattr(self.stream, "read1", None)  # what has arrived: a pipe's line is not held back
        chunk: bytes = read1(self.CHUNK) if read1 is not None else self.stream.read(self.CHUNK)
        self._eof = not chunk
        return chunk

    def _start(self) -> None:
        self._started = True
        while len(self._pending) < 4 and b"\n" not in self._pending and not self._eof:
            self._pending += self._read()  # enough to tell a UTF-32 mark from a UTF-16 one
        codec = self.forced
        if codec is None:
            for bom, bom_codec, _shown in BOMS:
                if self._pending.startswith(bom):
                    self._pending = self._pending[len(bom):]
                    codec = None if bom_codec == "utf-8" else bom_codec
                    break
        if codec is not None and not _splits_on_newline(codec):
            self._wide = codecs.getincrementaldecoder(codec)("strict")

    def readline(self) -> str | None:
        """The next line without its line break; None at the end of the stream."""
        if not self._started:
            self._start()
        if self._wide is not None:
            line = self._wide_line()
            if line is not None:
                self.lines += 1
            return None if line is None else line.removesuffix("\r")
        while b"\n" not in self._pending and not self._eof:
            self._pending += self._read()
        if not self._pending:
            return None
        raw, _, self._pending = self._pending.partition(b"\n")
        self.lines += 1
        return self._decode(raw.removesuffix(b"\r"))

    def _wide_line(self) -> str | None:
        assert self._wide is not None
        while "\n" not in self._text and (self._pending or not self._eof):
            chunk, self._pending = self._pending or self._read(), b""
            try:
                self._text += self._wide.decode(chunk, final=self._eof)
            except UnicodeDecodeError as err:
                at = self.lines + self._text.count("\n") + 1
                raise InputError(f"{self.name} line {at} is not {label(err.encoding)} text ({err.reason})") from None
        if not self._text:
            return None
        line, _, self._text = self._text.partition("\n")
        return line

    def _decode(self, raw: bytes) -> str:
        where = f"{self.name} line {self.lines}"
        if self.forced:
            return decode(raw, where, self.forced).text
        if b"\x00" not in raw:
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
            if self.encoding is not None:
                try:
                    return raw.decode(self.encoding)
                except UnicodeDecodeError:
                    pass
        decoded = self._detect(raw, where)
        if decoded.replaced:
            self.notify(decoded.note(where) or "")
        elif decoded.detected and decoded.encoding != self.encoding:
            self.notify(f"read {self.name if self.encoding is None else where} as {decoded.label}")
        self.encoding = decoded.encoding if decoded.detected else self.encoding
        return decoded.text


    def _detect(self, raw: bytes, where: str) -> Decoded:
        """``raw`` decoded by what the lines already here say together: one short line is too little to
        tell GB18030 from Windows-1252, a piped text usually is not."""
        rest = self._pending[:SAMPLE_BYTES]
        rest = rest if self._eof and len(self._pending) <= SAMPLE_BYTES else rest[:rest.rfind(b"\n") + 1]
        if rest.strip():
            try:
                found = decode(raw + b"\n" + rest, where)
                if found.detected:
                    return Decoded(raw.decode(found.encoding), found.encoding, found.label, detected=True)
            except (InputError, UnicodeDecodeError):
                pass  # something later is not text: this line alone decides
        return decode(raw, where)


_unencodable = threading.local()


def _count_unencodable(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeEncodeError)
    _unencodable.count += err.end - err.start
    return "?" * (err.end - err.start), err.end


codecs.register_error("gptterm-count-unencodable", _count_unencodable)


class Encoder:
    """Text to bytes in ``encoding``, piece by piece (a streamed reply), for ``--output-encoding``.

    A character the encoding cannot hold is written as ``?`` and counted in
    ``replaced``: the output stays complete, and the caller says once how
    many were lost (``note``). ``bom`` starts the bytes with the encoding's
    byte-order mark (UTF-8/16/32: what the input began with).
    """

    def __init__(self, encoding: str, *, bom: bool = False) -> None:
        self.encoding = check_encoding(encoding)
        self.label = label(self.encoding)
        self.replaced = 0
        self._encoder = codecs.getincrementalencoder(self.encoding)("gptterm-count-unencodable")
        marks = {"utf-8": codecs.BOM_UTF8, "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE,
                 "utf-32-le": codecs.BOM_UTF32_LE, "utf-32-be": codecs.BOM_UTF32_BE}
        self._head = marks.get(self.encoding, b"") if bom else b""  # "utf-16" and "utf-32" write their own

    def encode(self, text: str, final: bool = False) -> bytes:
        head, self._head = self._head, b""
        _unencodable.count = 0
        data: bytes = self._encoder.encode(text, final)
        self.replaced += _unencodable.count
        return head + data

    def note(self) -> str | None:
        """The one line to show at the end when characters were lost, or None."""
        n = self.replaced
        if not n:
            return None
        return f"{n} character{'s' if n > 1 else ''} that {self.label} cannot hold {'were' if n > 1 else 'was'} " \
               "written as ?"
