"""Templates: the built-ins, parsing and its one-line errors, user overrides, fabric patterns, and -t / /template
through the real CLI on the tiny model."""

from __future__ import annotations

import json

import pytest

from gptterm import templates
from gptterm.errors import ConfigError, UsageError
from gptterm.history.store import HistoryStore
from tests.conftest import run_cli

BUILTINS = {"commit-message", "email-reply", "explain", "extract", "news", "rewrite", "title"}


def one_line_error(proc, code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def user_template(isolated_dirs, name: str, text: str):
    folder = isolated_dirs["config"] / "templates"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


# -- the built-ins ------------------------------------------------------------------


def test_every_builtin_reads_and_binds_with_its_defaults():
    found, problems = templates.all_templates()
    assert not problems
    assert {t.name for t in found} == BUILTINS
    for t in found:
        assert t.origin == "builtin" and t.description and t.user
        bound = t.bind()
        assert "{" not in bound.message("some text").replace("{{", "")  # every variable filled
    email = templates.load("email-reply").bind({"tone": "formal", "name": "Bob"})
    assert "formal" in email.message("Hello") and "Bob" in email.message("Hello")
    assert email.message("Hello").rstrip().endswith("Hello")
    extract = templates.load("extract").bind({"fields": "title, year int"})
    assert extract.schema == {"type": "object", "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
                              "required": ["title", "year"], "additionalProperties": False}


def test_substitution_is_plain_and_braces_can_be_literal():
    t = templates.parse('user = "a {{x}} {input} {n}"\n[variables]\nn = "3"\n', "t")
    assert t.bind().message("IN") == "a {x} IN 3"
    # a value is inserted verbatim: braces in it are not read again
    assert t.bind({"n": "{input}"}).message("IN") == "a {x} IN {input}"


def test_bind_refuses_unknown_and_missing_variables():
    t = templates.parse('user = "{who}: {input}"\n[variables]\nwho = { description = "a person" }\n', "greet")
    with pytest.raises(UsageError, match="needs a value for who"):
        t.bind()
    with pytest.raises(UsageError, match="has no variable 'whom'"):
        t.bind({"who": "x", "whom": "y"})
    assert t.bind({"who": "Ann"}).message("hi") == "Ann: hi"


@pytest.mark.parametrize("text, wanted", [
    ('user = "x\n', "template "),
    ('prompt = "x"\n', "unknown key 'prompt'"),
    ('user = "{tone} {input}"\n', "uses {tone}, which is not a declared variable"),
    ('system = "{input}"\n', "system uses {input}"),
    ('[params]\ntemperature = 9\n', "temperature"),
    ('[params]\nctx = 100\n', "not a sampling parameter"),
    ('schema = 3\n', "schema must be"),
    ('schema = "{"\n', "schema"),
    ('[variables]\ninput = "x"\n', "'input' cannot be a variable name"),
])
def test_an_invalid_template_is_one_line_naming_the_file(tmp_path, text, wanted):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        templates.read(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and wanted in message


def test_a_user_template_overrides_a_builtin_and_a_bad_one_is_named(isolated_dirs):
    user_template(isolated_dirs, "title", 'description = "mine"\nuser = "Title: {input}"\n')
    bad = user_template(isolated_dirs, "broken", 'user = "{nope}"\n')
    found, problems = templates.all_templates()
    title = next(t for t in found if t.name == "title")
    assert title.origin == "user" and title.description == "mine"
    assert len(problems) == 1 and str(bad) in problems[0]
    listing = run_cli("templates")
    assert listing.returncode == 0 and "Traceback" not in listing.stderr
    assert any(line.split()[:2] == ["title", "user"] for line in listing.stdout.splitlines())
    assert str(bad) in listing.stderr
    line = one_line_error(run_cli("-t", "broken", "--no-log", "hello"), ConfigError.exit_code)
    assert str(bad) in line and "{nope}" in line
    line = one_line_error(run_cli("-t", "nothing-here", "--no-log", "hello"), UsageError.exit_code)
    assert "no template 'nothing-here'" in line
    line = one_line_error(run_cli("-t", "email-reply", "-V", "colour=red", "--no-log", "hi"), UsageError.exit_code)
    assert "no variable 'colour'" in line


def test_templates_new_show_and_edit(isolated_dirs):
    proc = run_cli("templates", "new", "mine")
    assert proc.returncode == 0, proc.stderr
    path = isolated_dirs["config"] / "templates" / "mine.toml"
    assert proc.stdout.strip() == str(path) and path.is_file()
    mine = templates.load("mine")  # the starter file is a valid template
    assert mine.origin == "user" and [v.name for v in mine.variables] == ["tone"]
    assert "exists already" in one_line_error(run_cli("templates", "new", "mine"), UsageError.exit_code)
    shown = json.loads(run_cli("templates", "show", "email-reply", "--json").stdout)
    assert shown["origin"] == "builtin" and [v["name"] for v in shown["variables"]] == ["tone", "language", "name"]
    # edit: a built-in is copied first; the editor here appends a line that breaks the template
    env = {"EDITOR": "sh -c 'echo \"oops = 1\" >> \"$0\"'"}
    proc = run_cli("templates", "edit", "title", env=env)
    assert proc.returncode == ConfigError.exit_code and "Traceback" not in proc.stderr
    copied, line = proc.stderr.strip().splitlines()
    assert "copied the built-in title" in copied
    assert "unknown parameter 'oops'" in line and str(isolated_dirs["config"] / "templates" / "title.toml") in line


# -- fabric patterns ---------------------------------------------------------------------


def make_patterns(root):
    (root / "summarize_it").mkdir(parents=True)
    (root / "summarize_it" / "system.md").write_text(
        "# IDENTITY and PURPOSE\n\nYou summarize texts in {{lang}}.\nOutput JSON like {\"a\": 1}.\n")
    (root / "tag_it").mkdir()
    (root / "tag_it" / "system.md").write_text("# IDENTITY\n\nGive tags for the input.\n")
    (root / "tag_it" / "user.md").write_text("Tags please:\n\n{{input}}\n")
    (root / "not_a_pattern").mkdir()
    return root


def test_fabric_patterns_are_used_directly_and_imported(tmp_path, isolated_dirs):
    root = make_patterns(tmp_path / "patterns")
    direct = templates.load(str(root / "summarize_it"))
    assert [v.name for v in direct.variables] == ["lang"]
    bound = direct.bind({"lang": "French"})
    assert "in French" in bound.system and '{"a": 1}' in bound.system  # literal braces stay literal
    assert bound.message("TEXT") == "TEXT"
    assert templates.load(str(root / "tag_it")).bind().message("x y") == "Tags please:\n\nx y"

    proc = run_cli("templates", "import", str(root))
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split()) == ["summarize_it", "tag_it"]
    imported = templates.load("summarize_it")
    assert imported.origin == "user" and imported.bind({"lang": "German"}).system == bound.system.replace(
        "French", "German")
    again = run_cli("templates", "import", str(root))
    assert again.returncode == 0 and "kept 2 existing" in again.stderr
    assert "no patterns" in one_line_error(run_cli("templates", "import", str(tmp_path)), UsageError.exit_code)


# -- -t and /template on the tiny model ------------------------------------------------------


def test_t_through_the_cli_and_the_repl(tiny_model):
    text = "The printing press made books cheap."
    proc = run_cli("-m", str(tiny_model), "-t", "title", "-V", "words=5", "--temperature", "0", "--json",
                   input=text)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["completion_tokens"] <= 30  # the template's max_tokens
    conv = HistoryStore().latest()
    assert conv.system == templates.load("title").system.strip()
    assert conv.messages[0].content == f"Write a title of at most 5 words for this text.\n\n{text}"
    # the PROMPT words after a template with stdin follow its prompt
    run_cli("-m", str(tiny_model), "-t", "rewrite", "--max-tokens", "4", "in capitals", input=text)
    assert HistoryStore().latest().messages[0].content.endswith(f"{text}\n\nin capitals")
    assert "needs a text" in one_line_error(run_cli("-m", str(tiny_model), "-t", "title", "--no-log"), 5)

    repl = run_cli("chat", "-m", str(tiny_model), "--max-tokens", "4", "--temperature", "0",
                   input=f"/template title words=3\n{text}\nand now plain\n/template nope\n")
    assert repl.returncode == 0 and "Traceback" not in repl.stderr
    assert "template title (words=3): your next message is its input" in repl.stderr
    assert "no template 'nope'" in repl.stderr
    conv = HistoryStore().latest()
    users = [m.content for m in conv.messages if m.role == "user"]
    assert users == [f"Write a title of at most 3 words for this text.\n\n{text}", "and now plain"]
