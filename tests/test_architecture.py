"""Rules of the design that a test can hold: the core never imports a UI,
and the fast paths import nothing heavy."""

from __future__ import annotations

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
