"""Rules of the design that a test can hold: the core never imports a UI,
the fast paths import nothing heavy, and a function-local import says why it is not at the top."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("llama_cpp", "textual", "huggingface_hub", "rich", "httpx2", "httpx")


def core_modules() -> list[str]:
    """Every module of gptterm outside the TUI, found by walking the package (a new module is covered at once)."""
    import gptterm

    names = [m.name for m in pkgutil.walk_packages(gptterm.__path__, "gptterm.")]
    return [n for n in names if not n.startswith("gptterm.tui") and n != "gptterm.__main__"]


def imported_after(code: str) -> set[str]:
    # The marker keeps words of a printed --help out of the module list.
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('--modules--')\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return {name.split(".")[0] for name in out.rpartition("--modules--")[2].split()}


def test_core_never_imports_textual():
    core = core_modules()
    assert len(core) > 40 and "gptterm.backend" in core and "gptterm.models.part_file" in core
    mods = imported_after("\n".join(f"import {m}" for m in core))
    assert "textual" not in mods


def test_core_sources_do_not_mention_textual():
    for path in (ROOT / "gptterm").rglob("*.py"):
        if "tui" in path.relative_to(ROOT / "gptterm").parts:
            continue
        text = path.read_text()
        assert "import textual" not in text and "from textual" not in text, path


def test_help_and_version_import_nothing_heavy():
    for argv in (["--help"], ["--version"], ["chat", "--help"], ["models", "--help"], ["models", "pull", "--help"],
                 ["serve", "--help"], ["--server", "http://x", "--help"], ["-m", "x", "models", "--help"],
                 ["completion", "bash"], ["completion", "--values", "models"], ["completion", "--values", "languages"]):
        code = ("import sys\nsys.argv = ['gptterm', %r]\nfrom gptterm.cli import main\n"
                "try:\n    main(%r)\nexcept SystemExit:\n    pass" % (argv[0], argv))
        mods = imported_after(code)
        assert not (mods & set(HEAVY)), (argv, mods & set(HEAVY))


def test_local_model_commands_never_import_the_hub_client():
    # `models ls` and name resolution work offline and start fast: no huggingface_hub, rich or UI
    code = ("import sys\nfrom gptterm.cli import main\nmain(['models', 'ls'])\n"
            "from gptterm.models.resolve import resolve_model\nresolve_model('bundled')")
    mods = imported_after(code)
    assert not (mods & set(HEAVY)), mods & set(HEAVY)


# Files the rule does not apply to (none: every function-local import says why).
LOCAL_IMPORTS_EXEMPT: tuple[str, ...] = ()


def unexplained_local_imports(source: str) -> list[tuple[int, str]]:
    """(line, text) of each group of imports inside a function (consecutive import statements of one block)
    whose first line carries no comment and has none on the line above."""
    lines = source.splitlines()
    found = set()
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        blocks = [getattr(node, attr) for node in ast.walk(fn) for attr in ("body", "orelse", "finalbody")
                  if isinstance(getattr(node, attr, None), list)]
        for block in blocks:
            after_import = False
            for stmt in block:
                is_import = isinstance(stmt, (ast.Import, ast.ImportFrom))
                if is_import and not after_import:
                    line = lines[stmt.lineno - 1]
                    above = lines[stmt.lineno - 2].strip() if stmt.lineno >= 2 else ""
                    if "#" not in line and not above.startswith("#"):
                        found.add((stmt.lineno, line.strip()))
                after_import = is_import
    return sorted(found)


def test_the_local_import_rule_finds_an_unexplained_group():
    source = (
        "import os\n"
        "def f():\n"
        "    import json  # only f needs it\n"
        "    import re\n"
        "    if os.sep:\n"
        "        # heavy: numpy\n"
        "        import numpy\n"
        "    try:\n"
        "        import tomllib\n"
        "    except ImportError:\n"
        "        pass\n"
        "    def inner():\n"
        "        from gptterm import paths\n"
    )
    assert unexplained_local_imports(source) == [(9, "import tomllib"), (13, "from gptterm import paths")]


def test_function_local_imports_say_why():
    """A function-local import stays only where it buys start-up time (a heavy module, or one that a fast
    path or the app's first frame does not load), with a comment saying so; elsewhere it goes to the top."""
    for name in LOCAL_IMPORTS_EXEMPT:
        assert (ROOT / name).is_file(), f"{name} is gone: drop it from LOCAL_IMPORTS_EXEMPT"
    found = []
    for path in sorted((ROOT / "gptterm").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name not in LOCAL_IMPORTS_EXEMPT:
            found += [f"{name}:{line}: {text}" for line, text in unexplained_local_imports(path.read_text())]
    assert not found, ("function-local imports with no comment saying why (move each to the top if it buys "
                       "no start-up time):\n" + "\n".join(found))
