"""The layers of the design, held by import-linter's contracts in pyproject.toml: faces on top, the
session core, tasks, engine and stores, plain data at the bottom; the core without Textual; no cycles."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    code = "import sys\nfrom importlinter.cli import lint_imports_command\nsys.exit(lint_imports_command())"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", code, "--no-cache"], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_package_keeps_its_layers():
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 kept, 0 broken" in proc.stdout


def planted(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess:
    """The contracts checked over a copy of the package with ``line`` added to ``module``."""
    shutil.copytree(ROOT / "gptterm", tmp_path / "gptterm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / (module.replace(".", "/") + ".py")
    target.write_text(target.read_text() + f"\n{line}\n")
    return lint_imports(tmp_path)


def test_textual_in_the_core_breaks_a_contract(tmp_path):
    proc = planted(tmp_path, "gptterm.engine.grammar", "import textual.app  # planted")
    assert proc.returncode != 0
    assert "The core never imports Textual or rich" in proc.stdout and "BROKEN" in proc.stdout
    assert "gptterm.engine.grammar -> textual" in proc.stdout


def test_a_face_imported_by_the_core_breaks_the_layers(tmp_path):
    proc = planted(tmp_path, "gptterm.tasks.chat", "from gptterm.cli import io  # planted")
    assert proc.returncode != 0
    assert "Layers: the faces" in proc.stdout and "gptterm.tasks.chat -> gptterm.cli.io" in proc.stdout
