"""The one decoder every input goes through: BOMs, UTF-8, mostly-UTF-8, legacy encodings, binary refused."""

from __future__ import annotations

import codecs
import random

import pytest

from gptterm import textio
from gptterm.errors import InputError, UsageError
from tests.conftest import ROOT

SEED = ROOT / "tests" / "fixtures" / "seed_gpt_explainer_zh.txt"  # the Chinese seed document
CHINESE = ("## 背景介绍\n\nGPT（Generative Pre-trained Transformer）是一种基于Transformer架构的预训练语言模型。"
           "它通过在大规模文本上进行无监督学习，学会了语言的规律。\n\n可以用于机器翻译、文本摘要和问答系统。\n")
TRADITIONAL = "這是一個測試。台灣的繁體中文文件常用大五碼編碼。我們希望正確地讀取它，而且不要出錯。\n"


def seed_text() -> str:
    return SEED.read_text("utf-8") if SEED is not None else CHINESE * 20


@pytest.mark.parametrize("encoding, label", [("gb18030", "GB18030"), ("big5", "Big5")])
def test_chinese_legacy_encodings_are_detected_and_decode_to_the_original(encoding, label):
    original = seed_text() if encoding == "gb18030" else TRADITIONAL * 10
    decoded = textio.decode(original.encode(encoding), "doc.txt")
    assert decoded.text == original
    assert decoded.label == label and decoded.detected
    assert decoded.note("doc.txt") == f"read doc.txt as {label}"


@pytest.mark.parametrize("text, encoding, label", [
    ("Le café est très bon. Ça coûte trois euros? Non, deux.\n", "latin-1", "Windows-1252"),
    ("He said “hello” – it’s fine… a naïve café.\n", "cp1252", "Windows-1252"),
    ("caf\xe9 ok\n", "latin-1", "Windows-1252"),
    ("Příliš žluťoučký kůň úpěl ďábelské ódy.\n", "cp1250", "Windows-1250"),
    ("Привет, как дела? Это тестовый текст на русском языке.\n", "cp1251", "Windows-1251"),
    ("日本語のテキストです。これはテストです。東京は大きい都市です。\n", "shift_jis", "Shift-JIS (cp932)"),
])
def test_western_cyrillic_and_japanese_legacy_text(text, encoding, label):
    decoded = textio.decode(text.encode(encoding), "f")
    assert (decoded.text, decoded.label) == (text, label)


@pytest.mark.parametrize("bom_encoding, label", [("utf-16-le", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE"),
                                                 ("utf-32-le", "UTF-32 LE"), ("utf-32-be", "UTF-32 BE"),
                                                 ("utf-8", "UTF-8")])
def test_a_byte_order_mark_decides(bom_encoding, label):
    boms = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE, "utf-32-le": codecs.BOM_UTF32_LE,
            "utf-32-be": codecs.BOM_UTF32_BE, "utf-8": codecs.BOM_UTF8}
    data = boms[bom_encoding] + CHINESE.encode(bom_encoding)
    decoded = textio.decode(data, "f")
    assert decoded.text == CHINESE and decoded.label == label
    assert not decoded.detected and decoded.note("f") is None  # nothing guessed, nothing said


def test_plain_utf8_is_read_silently():
    decoded = textio.decode(CHINESE.encode(), "f")
    assert decoded.text == CHINESE and decoded.note("f") is None


def test_mostly_utf8_keeps_utf8_and_reports_the_bad_bytes():
    text = seed_text()
    data = text[:300].encode() + b"\xff\xfe" + text[300:900].encode() + b"\xc3"
    decoded = textio.decode(data, "log.txt")
    assert decoded.label == "UTF-8" and not decoded.detected
    assert decoded.replaced == 3 and decoded.first_bad_offset == len(text[:300].encode())
    assert decoded.text.startswith(text[:300]) and decoded.text.count("\ufffd") == 3
    assert "3 bad bytes (the first at offset" in decoded.note("log.txt")


@pytest.mark.parametrize("data", [
    b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)),
    b"PK\x03\x04" + random.Random(4).randbytes(2000),  # seeded: a failure can be replayed
    b"abc\x00def",
], ids=["elf", "zip", "nul"])
def test_binary_is_refused_with_one_line(data):
    with pytest.raises(InputError) as err:
        textio.decode(data, "blob.bin")
    assert "blob.bin" in str(err.value) and "\n" not in str(err.value)


def test_random_bytes_without_nul_are_refused():
    for seed in range(20):
        data = bytes((b * 7 + seed * 13) % 255 + 1 for b in random.Random(seed).randbytes(400))
        with pytest.raises(InputError):
            textio.decode(data, "noise")


def test_forced_encoding_and_a_wrong_name():
    data = "Größe".encode("latin-1")
    assert textio.decode(data, "f", encoding="latin-1").text == "Größe"
    with pytest.raises(InputError, match="is not UTF-8 text"):
        textio.decode(data, "f", encoding="utf-8")
    with pytest.raises(UsageError, match="unknown encoding 'klingon'.*gb18030.*standard-encodings"):
        textio.decode(data, "f", encoding="klingon")


def test_clean_decodes_surrogate_escaped_bytes_and_leaves_text_alone():
    assert textio.clean("plain café") == "plain café"
    smuggled = b"caf\xe9 ok".decode("utf-8", "surrogateescape")
    assert textio.clean(smuggled) == "café ok"
    with pytest.raises(InputError):
        textio.clean("\ud800 lone")


def read_lines(data: bytes, **kwargs) -> tuple[list[str], list[str]]:
    import io

    notes: list[str] = []
    reader = textio.LineReader(io.BytesIO(data), notify=notes.append, **kwargs)
    lines = []
    while (line := reader.readline()) is not None:
        lines.append(line)
    return lines, notes


def test_line_reader_decodes_each_line_and_says_once_what_it_assumed():
    assert read_lines(b"caf\xe9 ok\nplain\nna\xefve\r\n") == (["café ok", "plain", "naïve"],
                                                               ["read stdin as Windows-1252"])
    # a short line says little; the lines already read with it decide together
    assert read_lines("你好\n世界\n".encode("gb18030")) == (["你好", "世界"], ["read stdin as GB18030"])
    assert read_lines(codecs.BOM_UTF8 + "你好\nok".encode()) == (["你好", "ok"], [])
    # a UTF-8 line after legacy ones is still UTF-8, not the legacy encoding's mojibake
    assert read_lines(b"caf\xe9\n" + "café 你好\n".encode())[0] == ["café", "café 你好"]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_line_reader_reads_utf16_and_utf32_with_a_mark_as_a_stream(encoding):
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE, "utf-32-le": codecs.BOM_UTF32_LE}
    assert read_lines(bom[encoding] + "第一行\nsecond\r\n".encode(encoding)) == (["第一行", "second"], [])
    assert read_lines("a\nb".encode("utf-16"), encoding="utf-16") == (["a", "b"], [])


def test_line_reader_refuses_a_line_that_is_not_text_by_its_number():
    with pytest.raises(InputError, match="stdin line 2 looks like a binary file"):
        read_lines(b"fine\nab\x00c\n")
    with pytest.raises(InputError, match="stdin line 1 is not UTF-16 LE text"):
        read_lines(codecs.BOM_UTF16_LE + b"a\x00\x00\xdc")
    with pytest.raises(InputError, match="stdin line 1 is not GB18030 text"):
        read_lines(b"\xff\xff\n", encoding="gb18030")


@pytest.mark.parametrize("encoding, label", [("big5", "Big5"), ("gb18030", "GB18030")])
def test_a_short_markdown_text_with_a_code_fence_is_still_detected(encoding, label):
    # the detector alone finds nothing here: it counts the lines of backticks as chaos
    text = "這是一個測試。\n\n```\n程式碼：繁體\n```\n"
    decoded = textio.decode(text.encode(encoding), "note.md")
    assert (decoded.text, decoded.label) == (text, label)


def test_one_stray_byte_among_a_few_utf8_characters_is_still_utf8():
    decoded = textio.decode(b"\xe9" + "你好".encode(), "the line typed")  # a byte a terminal held back
    assert (decoded.text, decoded.label, decoded.replaced) == ("\ufffd你好", "UTF-8", 1)
    assert textio.decode(b"caf\xe9 ok", "f").text == "café ok"  # nothing valid around it: Windows-1252


def test_a_forced_encoding_still_refuses_binary_data():
    with pytest.raises(InputError, match="does not look like ISO-8859-1 text"):
        textio.decode(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)), "/bin/ls", encoding="latin-1")
    assert textio.decode("第一行".encode("utf-16-le"), "f", encoding="utf-16-le").text == "第一行"
