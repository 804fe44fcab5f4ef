"""The one decoder every input goes through: BOMs, UTF-8, mostly-UTF-8, legacy encodings, binary refused."""

from __future__ import annotations

import codecs
import os

import pytest

from gptterm import textio
from gptterm.errors import InputError, UsageError
from tests.conftest import ROOT

SEED = next((ROOT.parent / "shared" / "seed").glob("*.txt"), None) if (ROOT.parent / "shared" / "seed").exists() \
    else None
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
    b"PK\x03\x04" + os.urandom(2000),
    b"abc\x00def",
])
def test_binary_is_refused_with_one_line(data):
    with pytest.raises(InputError) as err:
        textio.decode(data, "blob.bin")
    assert "blob.bin" in str(err.value) and "\n" not in str(err.value)


def test_random_bytes_without_nul_are_refused():
    for seed in range(20):
        data = bytes((b * 7 + seed * 13) % 255 + 1 for b in os.urandom(400))
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
