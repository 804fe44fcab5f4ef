"""The command grammar, walked from the parsers themselves: every command and subcommand with no
arguments, --help and each flag left without its value; shared options before the command name;
no abbreviations; shell completion generated from the same parsers."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import pytest

from gptterm import errors
from gptterm.cli import main
from gptterm.cli.args import COMMANDS, PARSERS, arguments, parse, prompt_parser, subcommands

EXIT_CODES = {0} | {c.exit_code for c in vars(errors).values()
                    if isinstance(c, type) and issubclass(c, errors.GpttermError)}


def walk(path, parser):
    yield path, parser
    for name, (sub, _) in subcommands(parser).items():
        yield from walk((*path, name), sub)


PLACES = [((), prompt_parser())] + [place for name in PARSERS for place in walk((name,), PARSERS[name]())]
IDS = [" ".join(path) or "gptterm" for path, _ in PLACES]
# With no arguments these would start something instead of failing or listing: `chat` a REPL on the
# bundled model (waiting for lines), `serve` a server. Their options are still swept below.
STARTS_SOMETHING = {("chat",), ("serve",)}


@pytest.fixture(autouse=True)
def empty_stdin(monkeypatch):
    # piped and empty, as from </dev/null: nothing waits for a terminal
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code in EXIT_CODES, (argv, code, err)
    assert "Traceback" not in out + err, (argv, err)
    error_lines = [line for line in err.splitlines() if line.startswith("gptterm: error: ")]
    assert len(error_lines) <= 1, (argv, err)
    if code == 2:  # a usage error is that one line and nothing else
        assert err.splitlines() == error_lines, (argv, err)
    return code, out, err


def test_commands_are_declared_once():
    assert set(PARSERS) == set(COMMANDS)  # every command has a parser and a line in --help
    assert all(parser.allow_abbrev is False for _, parser in PLACES), "prefix matching is off everywhere"


@pytest.mark.parametrize("path,parser", PLACES, ids=IDS)
def test_every_place_with_help_no_arguments_and_flags_without_values(path, parser, capsys):
    code, out, _ = run(capsys, *path, "--help")
    assert code == 0 and out.startswith(f"usage: {parser.prog}")
    if path not in STARTS_SOMETHING:
        run(capsys, *path)
    for action in arguments(parser):
        if action.option_strings and action.nargs != 0:
            for flag in action.option_strings:
                code, _, err = run(capsys, *path, flag)
                assert code == 2 and "expected one argument" in err, (path, flag, err)


def test_group_without_action_runs_its_listing(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "bundled" in out
    assert run(capsys, "history")[0] == 0
    code, out, _ = run(capsys, "config")
    assert code == 0 and out.startswith("temperature")


def test_shared_options_before_the_command_name(tiny_model, tmp_path, capsys):
    code, out, _ = run(capsys, "-m", str(tiny_model), "generate", "Once upon a time", "--max-tokens", "5")
    assert code == 0 and out.startswith("Once upon a time")  # generate echoes its prompt; chat would not
    notes = tmp_path / "notes.md"
    notes.write_text("Hello world.\n")
    command, ns = parse(["-m", str(tiny_model), "translate", "--to", "fr", str(notes)])
    assert (command, ns.model, ns.to, ns.files) == ("translate", str(tiny_model), "fr", (str(notes),))
    code, _, err = run(capsys, "-m", str(tiny_model), "translate", "--to", "fr", str(notes), "--max-tokens", "8")
    assert code == 0, err
    command, ns = parse(["--temperature=0.2", "-vm", "bundled", "-ngl", "0", "chat"])
    # the parameter flags arrive parsed, in one mapping (cli/options.py)
    assert (command, ns.params, ns.verbose, ns.model) == ("chat", {"temperature": 0.2, "gpu_layers": 0}, True,
                                                          "bundled")
    command, ns = parse(["--json", "models", "ls"])
    assert command == "models" and ns.json  # given to the subcommand, which takes --json
    code, out, _ = run(capsys, "--temperature", "0.1", "chat", "--help")
    assert code == 0 and out.startswith("usage: gptterm chat")


@pytest.mark.parametrize("argv,needle", [
    (("--max", "5", "hi"), "unrecognized arguments: --max"),  # no longer --max-tokens
    (("generate", "--max", "5", "hi"), "unrecognized arguments: --max"),
    (("models", "ls", "--js"), "unrecognized arguments: --js"),  # subparsers too
    (("--on-overflow", "truncate", "models"), "--on-overflow is not an option of 'gptterm models'"),
    (("--server", "http://x", "models", "ls"), "--server is not an option of 'gptterm models ls'"),
    (("completion",), "name a shell"),
    (("completion", "tcsh"), "invalid choice: 'tcsh'"),
])
def test_usage_errors_are_one_line(argv, needle, capsys):
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err, err


@pytest.mark.parametrize("argv", [["--", "chat", "about", "cats"], ["chat about cats"], ["hello", "chat"],
                                  ["-v", "--", "chat", "-m", "x", "--cid"]])
def test_a_prompt_that_starts_like_a_command_stays_a_prompt(argv):
    command, ns = parse(argv)
    words = argv[argv.index("--") + 1:] if "--" in argv else argv  # after "--" even -m is a word
    assert command is None and list(ns.prompt) == words and ns.model is None


# -- completion --------------------------------------------------------------------


def script(shell: str, capsys) -> str:
    code, out, _ = run(capsys, "completion", shell)
    assert code == 0
    return out


@pytest.mark.parametrize("shell,check", [("bash", ["bash", "-n"]), ("zsh", ["zsh", "-n"]),
                                         ("fish", ["fish", "--no-execute"])])
def test_completion_scripts_are_valid(shell, check, capsys, tmp_path):
    if shutil.which(check[0]) is None:
        pytest.skip(f"{check[0]} is not installed")
    path = tmp_path / f"gptterm.{shell}"
    path.write_text(script(shell, capsys))
    proc = subprocess.run([*check, str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_completion_values(tiny_model, capsys):
    run(capsys, "models", "import", str(tiny_model), "--name", "mytiny")
    code, out, _ = run(capsys, "completion", "--values", "models")
    assert code == 0 and out.splitlines() == ["bundled", "mytiny"]
    code, out, _ = run(capsys, "completion", "--values", "languages")
    assert code == 0 and {"fr", "zh", "de"} <= set(out.splitlines())


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_completes(capsys, tmp_path):
    path = tmp_path / "gptterm.bash"
    path.write_text(script("bash", capsys))
    shim = tmp_path / "bin" / "gptterm"  # the script asks `gptterm completion --values` for languages
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m gptterm "$@"\n')
    shim.chmod(0o755)

    def complete(*words: str) -> list[str]:
        code = 'source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _gptterm; printf "%s\\n" "${COMPREPLY[@]}"'
        proc = subprocess.run(["bash", "-c", code, str(path), "gptterm", *words], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "PATH": f"{shim.parent}:/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert complete("mod") == ["models"]
    assert set(complete("")) >= set(COMMANDS)
    assert "pull" in complete("models", "")
    assert complete("-m", "x", "--temperature", "0.2", "tr") == ["translate"]  # values of shared options skipped
    assert "fr" in complete("translate", "--to", "")
    assert complete("summarize", "--form", "b") == ["bullets"]
    assert complete("models", "ls", "--j") == ["--json"]
