"""Text in any encoding on every input path, never a traceback on bytes that are not UTF-8 (issue 17).

What the model sees is observed where it is handed over: every string the
local engine tokenizes passes through ``gptterm.engine.local._utf8``, which
these tests record. A legacy-encoded input must give exactly the strings its
UTF-8 original gives.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import json
import os
import random
import subprocess
import sys

import pytest

from gptterm import textio
from gptterm.cli import main
from gptterm.cli.args import PARSERS, arguments, prompt_parser
from gptterm.errors import InputError
from gptterm.history.store import HistoryStore
from gptterm.tasks.chat import ChatSession, compose_prompt
from tests.conftest import ROOT, run_cli, write_config
from tests.test_textio import TRADITIONAL, seed_text

# -- what the model sees -----------------------------------------------------------------------------


@pytest.fixture
def seen(monkeypatch):
    """Every string the local engine tokenizes, in order."""
    import gptterm.engine.local as local

    texts: list[str] = []
    real = local._utf8

    def record(text: str) -> bytes:
        texts.append(text)
        return real(text)

    monkeypatch.setattr(local, "_utf8", record)
    return texts


def stdin_of(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))


def takes(parser, flag: str) -> bool:
    return any(flag in a.option_strings for a in arguments(parser))


def parser_of(command: str | None):
    return prompt_parser() if command is None else PARSERS[command]()


# Every command that reads text input has --encoding (cli/args.py gives it to each): those read stdin.
STDIN_COMMANDS = [None] + [name for name in PARSERS if takes(PARSERS[name](), "--encoding")]
WORDS = {None: ["Summarize:"], "translate": ["--to", "de"]}


def cli(capsys, tiny_model, command: str | None, *extra: str) -> tuple[int, str, str]:
    """``main`` in this process (fast: the tiny model loads in milliseconds), short and greedy."""
    parser = parser_of(command)
    argv = [command] if command else []
    argv += ["-m", str(tiny_model), "--ctx", "1024"]
    for flag, value in (("--max-tokens", "4"), ("--temperature", "0")):
        if takes(parser, flag):
            argv += [flag, value]
    if takes(parser, "--no-log"):
        argv.append("--no-log")
    code = main([*argv, *WORDS.get(command, []), *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("gptterm: error: ")]


# One line of text in each encoding the issue names; what it decodes to is the line itself.
LINES = {
    "latin-1": "Le café est très bon. Ça coûte trois euros? Non, deux.\n",
    "cp1252": "He said “hello” – it’s fine… a naïve café.\n",
    "gb18030": "GPT是一种基于Transformer架构的预训练语言模型，它通过在大规模文本上进行无监督学习，学会了语言的规律。\n",
    "shift_jis": "日本語のテキストです。これはテストです。東京は大きい都市です。\n",
    "big5": "這是一個測試。台灣的繁體中文文件常用大五碼編碼。我們希望正確地讀取它，而且不要出錯。\n",
    "utf-16-le": "UTF-16 小端，带字节顺序标记。\n",
    "utf-16-be": "UTF-16 大端，带字节顺序标记。\n",
    "utf-8-sig": "UTF-8 带字节顺序标记的文本。\n",
}
BOMS = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}
DETECTED = {"latin-1": "Windows-1252", "cp1252": "Windows-1252", "gb18030": "GB18030",
            "shift_jis": "Shift-JIS (cp932)", "big5": "Big5"}


def encoded(encoding: str, text: str) -> bytes:
    return BOMS.get(encoding, b"") + text.encode(encoding)


@pytest.mark.parametrize("encoding", LINES)
@pytest.mark.parametrize("command", STDIN_COMMANDS, ids=[c or "prompt" for c in STDIN_COMMANDS])
def test_every_stdin_path_reads_every_encoding_as_its_text(command, encoding, tiny_model, seen, monkeypatch,
                                                            capsys):
    text = LINES[encoding]
    stdin_of(monkeypatch, encoded(encoding, text))
    extra = ["--sources", text.strip()] if command == "ask" else []  # the passages retrieved show what was read
    code, out, err = cli(capsys, tiny_model, command, *extra)
    assert code == 0, err
    if command == "ask":
        assert text.strip() in out
    else:
        assert any(text.strip() in s for s in seen), (seen, err)
    assert not any("\ufffd" in s for s in seen)
    if encoding in DETECTED:
        assert f"read stdin as {DETECTED[encoding]}" in err
    else:
        assert "read stdin as" not in err  # a byte-order mark is not a guess: nothing to say


def _noise(seed: int, nul: bool) -> bytes:
    data = random.Random(seed).randbytes(3000).replace(b"\n", b"")
    return (data if nul else data.replace(b"\x00", b"\x01")) + b"\n"


NOT_TEXT = {
    "random bytes": _noise(17, nul=True),
    "random bytes, no NUL": _noise(18, nul=False),
    "NUL bytes": b"hello\x00\x00world\n",
    "UTF-16 mark, then not UTF-16": codecs.BOM_UTF16_LE + b"a\x00\x00\xdc\n\x00",
}


@pytest.mark.parametrize("payload", NOT_TEXT)
@pytest.mark.parametrize("command", STDIN_COMMANDS, ids=[c or "prompt" for c in STDIN_COMMANDS])
def test_every_stdin_path_refuses_bytes_that_are_not_text_in_one_line(command, payload, tiny_model, seen,
                                                                       monkeypatch, capsys):
    stdin_of(monkeypatch, NOT_TEXT[payload])
    code, out, err = cli(capsys, tiny_model, command, *(["what is it?"] if command == "ask" else []))
    assert code == InputError.exit_code, (code, err)
    [line] = error_lines(err)
    assert "stdin" in line, line
    assert not any("\ufffd" in s for s in seen)  # nothing reached the model as replacement characters


@pytest.mark.parametrize("command", STDIN_COMMANDS, ids=[c or "prompt" for c in STDIN_COMMANDS])
def test_mostly_utf8_stdin_stays_utf8_and_the_bad_bytes_are_reported(command, tiny_model, seen, monkeypatch,
                                                                    capsys):
    text = "Café au lait, crème brûlée, 你好世界. " * 4
    data = text.encode() + b"\xff" + text.encode() + b"\n"
    stdin_of(monkeypatch, data)
    code, _, err = cli(capsys, tiny_model, command, *(["what is it?"] if command == "ask" else []))
    assert code == 0, err
    where = "stdin line 1" if command == "chat" else "stdin"  # the REPL reads (and names) a line at a time
    assert f"{where} is not valid UTF-8: 1 bad byte (the first at offset {len(text.encode())})" in err
    if command == "translate":  # sentence by sentence
        assert any("\ufffd" in s for s in seen)
    elif command != "ask":
        assert any((text + "\ufffd" + text).strip() in s for s in seen)


# -- files: the model sees what it sees for the UTF-8 original ------------------------------------------


def run_on_file(capsys, tiny_model, seen, command: str, path, *extra: str) -> tuple[list[str], str]:
    seen.clear()
    code, _, err = cli(capsys, tiny_model, command, str(path), *extra)
    assert code == 0, err
    return list(seen), err


FILE_COMMANDS = ["perplexity", "summarize", "translate"]


@pytest.mark.parametrize("encoding", ["gb18030", "big5"])
@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_a_chinese_legacy_file_is_what_its_utf8_original_is(command, encoding, tiny_model, seen, tmp_path,
                                                            capsys, monkeypatch):
    stdin_of(monkeypatch, b"")
    # Big5 cannot hold every simplified character: a traditional text for it
    text = seed_text() if encoding == "gb18030" else "\n".join([TRADITIONAL] * 10)
    if command != "perplexity":  # a few parts are enough, and keep it fast
        text = text[:700]
    original, legacy = tmp_path / "doc-utf8.txt", tmp_path / f"doc-{encoding}.txt"
    original.write_bytes(text.encode())
    legacy.write_bytes(text.encode(encoding))
    want, quiet = run_on_file(capsys, tiny_model, seen, command, original)
    got, err = run_on_file(capsys, tiny_model, seen, command, legacy)
    assert got == want
    # translate sends a paragraph at a time, without its Markdown marker
    longest = max((p for p in text.split("\n\n") if p[:1] not in "#-*>0123456789"), key=len)
    assert any(longest[:15] in s for s in got)
    assert f"read {legacy} as {'GB18030' if encoding == 'gb18030' else 'Big5'}" in err
    assert "gptterm: read " not in quiet


@pytest.mark.parametrize("encoding, text, label", [
    ("latin-1", "Le café est très bon. Ça coûte trois euros? Non, deux. À bientôt, garçon!\n" * 6, "Windows-1252"),
    ("cp1252", "He said “hello” – it’s fine… a naïve café, isn’t it? ‘Quite’ so.\n" * 6, "Windows-1252"),
    ("utf-16-le", "UTF-16 小端，带字节顺序标记。\n" * 6, None),
    ("utf-16-be", "UTF-16 大端，带字节顺序标记。\n" * 6, None),
    ("utf-8-sig", "UTF-8 带字节顺序标记的文本。\n" * 6, None),
])
def test_western_and_utf16_files(encoding, text, label, tiny_model, seen, tmp_path, capsys, monkeypatch):
    stdin_of(monkeypatch, b"")
    original, other = tmp_path / "utf8.txt", tmp_path / f"{encoding}.txt"
    original.write_bytes(text.encode())
    other.write_bytes(encoded(encoding, text))
    want, _ = run_on_file(capsys, tiny_model, seen, "perplexity", original)
    got, err = run_on_file(capsys, tiny_model, seen, "perplexity", other)
    assert got == want == [text]
    assert (f"read {other} as {label}" in err) if label else ("gptterm: read " not in err)


def test_a_mostly_utf8_file_is_read_as_utf8_with_the_bad_bytes_reported(tiny_model, seen, tmp_path, capsys,
                                                                       monkeypatch):
    stdin_of(monkeypatch, b"")
    text = seed_text()[:2000]
    cut = len(text) // 3
    data = text[:cut].encode() + b"\xff" + text[cut:2 * cut].encode() + b"\xfe\xc3" + text[2 * cut:].encode()
    path = tmp_path / "log.txt"
    path.write_bytes(data)
    [got], err = run_on_file(capsys, tiny_model, seen, "perplexity", path)
    assert got == text[:cut] + "\ufffd" + text[cut:2 * cut] + "\ufffd\ufffd" + text[2 * cut:]
    assert f"{path} is not valid UTF-8: 3 bad bytes (the first at offset {len(text[:cut].encode())})" in err


def test_a_binary_file_is_refused_by_every_file_command(tiny_model, tmp_path, capsys, monkeypatch):
    stdin_of(monkeypatch, b"")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(_noise(3, nul=False))
    for command in FILE_COMMANDS:
        code, _, err = cli(capsys, tiny_model, command, str(blob))
        assert code == 5 and len(error_lines(err)) == 1 and "blob.bin" in err, err


# -- one-shot, the REPL and arguments, as a user runs them ------------------------------------------------


def stored_user_messages() -> list[str]:
    store = HistoryStore()
    convs = store.list_conversations(limit=None, kinds=("chat", "oneshot", "generate"))
    return [m.content for c in convs for m in store.get(c.id).messages if m.role == "user"]


def test_a_gb18030_file_asked_through_stdin_is_stored_as_its_text(tiny_model, tmp_path):
    text = seed_text()[:250]
    proc = run_cli("-m", str(tiny_model), "--max-tokens", "4", "--ctx", "1024", "Summarize:",
                   input=text.encode("gb18030"))
    assert proc.returncode == 0, proc.stderr
    assert "gptterm: read stdin as GB18030" in proc.stderr.splitlines()
    assert stored_user_messages() == [compose_prompt("Summarize:", text)]


def test_a_latin1_line_piped_into_the_repl(tiny_model):
    proc = run_cli("chat", "-m", str(tiny_model), "--max-tokens", "4", "--ctx", "512", input=b"caf\xe9 ok\n")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "gptterm: read stdin as Windows-1252" in proc.stderr
    assert stored_user_messages() == ["café ok"]


def test_repl_lines_in_a_legacy_encoding_and_in_utf16(tiny_model):
    lines = "你好，世界。\n今天天气很好。\n/exit\n"
    for data in (lines.encode("gb18030"), codecs.BOM_UTF16_LE + lines.encode("utf-16-le")):
        proc = run_cli("chat", "-m", str(tiny_model), "--max-tokens", "4", "--ctx", "512", "--no-log", input=data)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    proc = run_cli("chat", "-m", str(tiny_model), "--max-tokens", "4", "--ctx", "512",
                   input=lines.encode("gb18030"))
    assert stored_user_messages()[-2:] == ["你好，世界。", "今天天气很好。"]


def test_an_argument_with_bytes_that_are_not_utf8(tiny_model):
    proc = run_cli("-m", str(tiny_model), "--max-tokens", "4", "--ctx", "512",
                   os.fsdecode(b"caf\xe9 ok"))  # passed to the process as the bytes b"caf\xe9 ok"
    assert proc.returncode == 0, proc.stderr
    assert "gptterm: read the prompt as Windows-1252" in proc.stderr
    assert stored_user_messages() == ["café ok"]


def test_nothing_that_is_not_text_reaches_the_tokenizer_or_the_history(tiny_engine):
    from gptterm.settings import Params

    with pytest.raises(InputError):
        tiny_engine.completion_tokens("caf\udce9")  # the last guard: one clear line, not a traceback
    session = ChatSession(tiny_engine, Params().replace(max_tokens=2))
    with pytest.raises(InputError):
        session.send("lone \ud800 surrogate")
    with pytest.raises(InputError):
        session.set_system("\udfff")
    reply = session.send(b"caf\xe9 ok".decode("utf-8", "surrogateescape"))  # smuggled bytes: decoded
    list(reply)
    assert session.messages[0]["content"] == "café ok"


# -- --encoding and the config key -----------------------------------------------------------------------


@pytest.mark.parametrize("command", STDIN_COMMANDS, ids=[c or "prompt" for c in STDIN_COMMANDS])
def test_a_wrong_encoding_name_is_one_line_with_exit_2(command, monkeypatch, capsys):
    stdin_of(monkeypatch, b"text\n")
    code = main([*([command] if command else []), "--encoding", "klingon", *WORDS.get(command, []),
                 *(["what is it?"] if command == "ask" else [])])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert err.splitlines() == error_lines(err) and len(err.splitlines()) == 1
    assert "unknown encoding 'klingon'" in err and "gb18030" in err and "standard-encodings" in err


def token_text(out: str) -> str:
    tokens = json.loads(out)["tokens"]
    return b"".join(bytes(t["bytes"]) for t in tokens if not t["special"]).decode()


def test_the_config_encoding_is_used_and_the_flag_overrides_it(tiny_model, isolated_dirs, monkeypatch, capsys):
    data = "café 中文\n".encode("utf-8")
    write_config(isolated_dirs, 'encoding = "latin-1"\n')
    stdin_of(monkeypatch, data)
    code, out, _ = cli(capsys, tiny_model, "tokens", "--json")
    assert code == 0 and token_text(out) == data.decode("latin-1")  # as told, even though it is UTF-8
    stdin_of(monkeypatch, data)
    code, out, _ = cli(capsys, tiny_model, "tokens", "--json", "--encoding", "utf-8")
    assert code == 0 and token_text(out) == "café 中文\n"
    stdin_of(monkeypatch, "中文".encode("gb18030"))
    code, _, err = cli(capsys, tiny_model, "tokens", "--json", "--encoding", "utf-8")
    assert code == 5 and "stdin is not UTF-8 text (byte 0" in err and "leave out --encoding" in err


def test_config_set_encoding_is_validated(isolated_dirs, capsys):
    assert main(["config", "set", "encoding", "klingon"]) == 2
    _, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and "unknown encoding 'klingon'" in err
    assert main(["config", "set", "encoding", "gb18030"]) == 0
    assert main(["config", "show"]) == 0
    out, _ = capsys.readouterr()
    assert any(line.split()[:3] == ["encoding", "gb18030", "config"] for line in out.splitlines())
    write_config(isolated_dirs, 'encoding = "klingon"\n')
    assert main(["config", "show"]) == 3  # a bad config file: its own exit code, one line
    _, err = capsys.readouterr()
    assert len(err.splitlines()) == 1 and "encoding" in err and "klingon" in err


# -- output: UTF-8, or --output-encoding --------------------------------------------------------------------


def run_bytes(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gptterm", *args], capture_output=True, timeout=300, cwd=ROOT,
                          stdin=subprocess.DEVNULL)


DOC = "這是一個測試。\n\n```\n程式碼不翻譯：繁體中文\n```\n"


def translate(tiny_model, path, *extra: str) -> subprocess.CompletedProcess:
    proc = run_bytes("translate", "--from", "en", "--to", "fr", "-m", str(tiny_model), "--max-tokens", "6",
                     "--ctx", "512", str(path), *extra)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr
    return proc


def test_output_is_utf8_or_the_inputs_encoding(tiny_model, tmp_path):
    utf8, big5, utf16 = tmp_path / "utf8.md", tmp_path / "big5.md", tmp_path / "utf16.md"
    utf8.write_bytes(DOC.encode())
    big5.write_bytes(DOC.encode("big5"))
    utf16.write_bytes(codecs.BOM_UTF16_LE + DOC.encode("utf-16-le"))
    want = translate(tiny_model, utf8).stdout.decode("utf-8")
    assert "程式碼不翻譯" in want  # the code block is copied: the output holds Chinese
    assert translate(tiny_model, big5).stdout.decode("utf-8") == want  # UTF-8 unless asked
    assert translate(tiny_model, big5, "--output-encoding", "same").stdout.decode("big5") == want
    same16 = translate(tiny_model, utf16, "--output-encoding", "same").stdout
    assert same16.startswith(codecs.BOM_UTF16_LE) and same16[2:].decode("utf-16-le") == want
    gbk = translate(tiny_model, utf8, "--output-encoding", "GBK").stdout
    assert gbk.decode("gbk") == want


def test_characters_the_output_encoding_cannot_hold_become_question_marks_counted_once(tiny_model, tmp_path):
    utf8 = tmp_path / "utf8.md"
    utf8.write_bytes(DOC.encode())
    want = translate(tiny_model, utf8).stdout.decode("utf-8")
    proc = translate(tiny_model, utf8, "--output-encoding", "latin-1")
    lost = sum(1 for ch in want if ord(ch) > 0xFF)
    assert lost and proc.stdout.decode("latin-1") == "".join("?" if ord(ch) > 0xFF else ch for ch in want)
    notes = [line for line in proc.stderr.decode().splitlines() if "cannot hold" in line]
    assert notes == [f"gptterm: {lost} characters that ISO-8859-1 cannot hold were written as ?"]


def test_output_encoding_refusals(tiny_model, tmp_path, monkeypatch, capsys):
    doc = tmp_path / "doc.txt"
    doc.write_text("hello\n")
    stdin_of(monkeypatch, b"")
    for extra in (["--output-encoding", "klingon"], ["--output-encoding", "same", "--json"]):
        code, _, err = cli(capsys, tiny_model, "summarize", str(doc), *extra)
        assert code == 2 and len(error_lines(err)) == 1, err


def test_encoder_streams_and_counts():
    enc = textio.Encoder("big5")
    out = b"".join(enc.encode(piece) for piece in ["這是", "简体", "字"]) + enc.encode("", final=True)
    assert out.decode("big5") == "這是?体字" and enc.replaced == 1
    assert enc.note() == "1 character that Big5 cannot hold was written as ?"
    assert textio.Encoder("utf-8", bom=True).encode("x") == codecs.BOM_UTF8 + b"x"
    assert textio.Encoder("utf-16", bom=True).encode("x") == "x".encode("utf-16")  # one mark, not two


# -- the app: a file opened in a pane, pasted text --------------------------------------------------------


def test_tui_opens_a_gb18030_file_and_names_the_encoding(tmp_path, tiny_model):
    from tests.test_tui import open_task_pane
    from tests.tui_helpers import make_app, running

    text = seed_text()
    path = tmp_path / "seed-gbk.txt"
    path.write_bytes(text.encode("gb18030"))

    async def run():
        async with running(make_app(model=str(tiny_model), ctx=512)) as t:
            await open_task_pane(t, "f3", "#summarize-pane")
            field = t.app.query_one("#sum-file")
            field.value = str(path)
            field.focus()
            await t.pilot.press("enter")
            await t.pilot.pause()
            assert t.app.query_one("#sum-source").text == text
            assert any(f"as GB18030 ({len(text):,} characters)" in n for n in t.notifications()), t.notifications()
            t.app.query_one("#sum-source").load_text("pasted \ud800 text")  # str, but not text
            await t.pilot.press("ctrl+g")
            await t.pilot.pause()
            assert any("not text" in n for n in t.notifications())
            assert t.app.busy is None  # nothing was sent to the engine
    asyncio.run(run())
