"""Private by default: gptterm's own directories 0700 and files 0600, older installs tightened once, no secret on disk.

Every test runs under a umask of 022 (the common default, under which a plain
``open`` makes 0644 files), so a mode it sees was set by gptterm.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from gptterm import atomic, paths, privacy
from tests.conftest import run_cli, write_config
from tests.test_cli import ok

TINY = ("--max-tokens", "8", "--temperature", "0", "--ctx", "512")


@pytest.fixture(autouse=True)
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def not_private(*roots: Path) -> list[str]:
    """Everything under ``roots`` (which must exist) that is not a 0700 folder or a 0600 file."""
    wrong = []
    for root in roots:
        assert root.is_dir(), root
        for top, dirs, files in os.walk(root):
            if mode(Path(top)) != 0o700:
                wrong.append(f"{top} {mode(Path(top)):04o}")
            for name in files:
                path = Path(top, name)
                if not path.is_symlink() and mode(path) != 0o600:
                    wrong.append(f"{path} {mode(path):04o}")
    return wrong


def file_count(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


# -- a fresh install -----------------------------------------------------------------------


def test_a_first_chat_leaves_only_private_dirs_and_files(tiny_model, isolated_dirs):
    proc = ok(run_cli("-m", str(tiny_model), *TINY, "hi"))
    assert proc.stdout.strip() and "private" not in proc.stderr  # nothing to tighten on a fresh install
    data, cache = isolated_dirs["data"], isolated_dirs["cache"]
    assert (data / "history.sqlite3").exists() and file_count(cache) >= 2  # in-use record and lock, GGUF header
    assert not_private(data, cache) == []


def test_sqlite_wal_and_shm_files_get_the_database_mode(isolated_dirs):
    from gptterm.history.store import HistoryStore

    store = HistoryStore()
    store.add_message(store.new_conversation(), "user", "hello")
    db = paths.history_db()
    wal, shm = db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")
    assert wal.exists() and shm.exists()  # while the store is open
    assert (mode(db), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
    store.close()


def test_an_export_into_the_data_dir_is_private_and_one_elsewhere_keeps_the_umask(tiny_model, isolated_dirs,
                                                                                  tmp_path):
    ok(run_cli("-m", str(tiny_model), *TINY, "hi"))
    inside = isolated_dirs["data"] / "chat.md"
    elsewhere = tmp_path / "exports" / "chat.json"
    elsewhere.parent.mkdir()
    ok(run_cli("history", "export", "1", "-o", str(inside)))
    ok(run_cli("history", "export", "1", "-f", "json", "-o", str(elsewhere)))
    assert "## User" in inside.read_text() and json.loads(elsewhere.read_text())["messages"]
    assert mode(inside) == 0o600
    assert mode(elsewhere) == 0o644  # the user's file: 0666 less the umask
    assert not_private(isolated_dirs["data"]) == []


def test_atomic_writes_decide_by_where_the_file_is(isolated_dirs, tmp_path):
    paths.private_dir(paths.cache_dir() / "a" / "b")
    atomic.write_text(paths.cache_dir() / "a" / "b" / "x.json", "{}")
    with atomic.replacing(paths.cache_dir() / "state.bin") as tmp:
        assert mode(tmp) == 0o600  # exists already: a writer that opens it by path keeps the mode
        tmp.write_bytes(b"state")
    atomic.write_text(tmp_path / "out.txt", "x")
    assert not_private(paths.cache_dir()) == []
    assert mode(tmp_path / "out.txt") == 0o644
    os.umask(0o077)  # a stricter umask is the user's to have
    atomic.write_text(tmp_path / "strict.txt", "x")
    assert mode(tmp_path / "strict.txt") == 0o600


def test_a_saved_kv_state_is_private(tiny_model, isolated_dirs):
    from gptterm.engine.local import LocalEngine
    from gptterm.engine.state_cache import StateCache
    from gptterm.history.store import HistoryStore
    from tests.test_state_cache import long_conversation

    engine = LocalEngine(tiny_model, ctx=1024, gpu_layers=0, threads=1)
    try:
        cache = StateCache()
        long_conversation(engine, HistoryStore(), cache)
    finally:
        engine.close()
    [state] = cache.directory.glob("*.kvstate")
    assert state.with_suffix(".json").exists()
    assert not_private(isolated_dirs["cache"], isolated_dirs["data"]) == []


def test_an_index_build_is_private(isolated_dirs, tmp_path):
    from gptterm.docs import index as index_module

    docs = tmp_path / "notes"
    docs.mkdir()
    (docs / "a.md").write_text("# Penguins\n\nPenguins live in the southern hemisphere.\n")
    index = index_module.DocIndex()
    index.update([docs])
    assert paths.data_dir().joinpath("docs.sqlite3").exists()
    assert not_private(isolated_dirs["data"]) == []  # with the -wal and -shm files of the open index
    index.close()


def test_config_writes_are_private(tiny_model, isolated_dirs):
    ok(run_cli("config", "set", "temperature", "0.3"))
    assert mode(isolated_dirs["config"] / "config.toml") == 0o600
    assert not_private(isolated_dirs["config"]) == []


# -- an older install -----------------------------------------------------------------------


def open_install(base: Path) -> dict[str, Path]:
    """gptterm's directories at the default (XDG) locations as an older gptterm left them: 0755 and 0644."""
    dirs = {"config": base / "config" / "gptterm", "data": base / "share" / "gptterm",
            "cache": base / "cache" / "gptterm"}
    for d in dirs.values():
        d.mkdir(parents=True)
    (dirs["config"] / "config.toml").write_text("temperature = 0.5\n")
    db = sqlite3.connect(dirs["data"] / "history.sqlite3")
    db.execute("CREATE TABLE t (x)")
    db.close()
    (dirs["cache"] / "kv").mkdir()
    (dirs["cache"] / "kv" / "conversation-1-x.kvstate").write_bytes(b"state")
    for d in dirs.values():
        assert mode(d) == 0o755
    assert mode(dirs["data"] / "history.sqlite3") == 0o644
    return dirs


@pytest.fixture
def default_locations(tmp_path, monkeypatch):
    """No GPTTERM_*_DIR: gptterm's directories at platformdirs' locations, under XDG_*_HOME in tmp_path."""
    base = tmp_path / "home"
    for name in ("CONFIG", "DATA", "CACHE"):
        monkeypatch.delenv(f"GPTTERM_{name}_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(base / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "cache"))
    return base


def test_an_older_install_is_made_private_once_with_one_line(tiny_model, default_locations, monkeypatch):
    dirs = open_install(default_locations)
    # a Hugging Face cache inside gptterm's cache dir stays as huggingface_hub made it
    hub = dirs["cache"] / "hf" / "hub"
    blob = hub / "models--o--n" / "blobs" / "abc"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(b"weights")
    monkeypatch.setenv("HF_HOME", str(dirs["cache"] / "hf"))
    assert paths.data_dir() == dirs["data"]

    proc = ok(run_cli("-m", str(tiny_model), *TINY, "hi"))
    assert proc.stdout.strip()
    notes = [line for line in proc.stderr.splitlines() if "private" in line]
    assert notes == [f"gptterm: made its files private (readable by you only): 3 files and 5 folders in "
                     f"{dirs['config']}, {dirs['data']}, {dirs['cache']} were open to other users"], proc.stderr
    assert not_private(dirs["config"], dirs["data"]) == []
    assert mode(dirs["cache"]) == 0o700 and mode(dirs["cache"] / "kv") == 0o700
    assert mode(dirs["cache"] / "kv" / "conversation-1-x.kvstate") == 0o600
    assert mode(blob) == 0o644 and mode(hub) == 0o755  # not gptterm's to change
    assert (dirs["config"] / "config.toml").read_text() == "temperature = 0.5\n"

    again = ok(run_cli("history", "list"))
    assert "private" not in again.stderr  # once: nothing is open any more
    assert "hi" in again.stdout


def test_the_app_shows_the_line_as_a_notification(tiny_model, default_locations):
    import asyncio

    from tests.tui_helpers import make_app, running

    open_install(default_locations)
    line = privacy.tighten_on_start()  # what the CLI does before it opens the app
    assert line and line.startswith("made its files private")

    async def run():
        async with running(make_app(model=str(tiny_model))) as t:
            await t.ready()
            assert line in t.notifications()

    asyncio.run(run())
    assert privacy.take_notices() == []  # shown once, by the app


def test_directories_the_user_chose_are_left_as_they_are_and_doctor_warns(isolated_dirs, default_locations,
                                                                          tmp_path, monkeypatch):
    shared = tmp_path / "group" / "gptterm-data"
    shared.mkdir(parents=True, mode=0o750)
    os.chmod(shared, 0o750)
    (shared / "history.sqlite3").write_bytes(b"")
    os.chmod(shared / "history.sqlite3", 0o640)
    monkeypatch.setenv("GPTTERM_DATA_DIR", str(shared))
    # and a default location that is a symbolic link to a place of the user's choosing
    elsewhere = tmp_path / "elsewhere-cache"
    elsewhere.mkdir()
    (elsewhere / "x.json").write_text("{}")
    (default_locations / "cache").mkdir(parents=True)
    (default_locations / "cache" / "gptterm").symlink_to(elsewhere)

    assert privacy.tighten_on_start() is None
    assert (mode(shared), mode(shared / "history.sqlite3")) == (0o750, 0o640)
    assert (mode(elsewhere), mode(elsewhere / "x.json")) == (0o755, 0o644)
    atomic.write_text(shared / "chat.md", "new files there are still private")
    assert mode(shared / "chat.md") == 0o600

    proc = run_cli("doctor", "--json")
    report = json.loads(proc.stdout)
    dirs = {d["kind"]: d for d in report["permissions"]["dirs"]}
    assert dirs["data"] == {"kind": "data", "path": str(shared), "mode": "0750", "chosen_by": "GPTTERM_DATA_DIR",
                            "open_inside": 1, "private": False}
    assert dirs["cache"]["chosen_by"] == "a symbolic link" and not dirs["cache"]["private"]
    assert report["permissions"]["files"]["history"]["mode"] == "0640"
    [data_warning, cache_warning] = report["warnings"]
    assert data_warning == (f"other users can read gptterm's data directory {shared} (mode 0750), 1 file or folder "
                            f"inside open to them too (GPTTERM_DATA_DIR: your choice, left as it is); to make it "
                            f"private: chmod -R go-rwx {shared}")
    assert "a symbolic link: your choice" in cache_warning
    text = run_cli("doctor").stdout
    assert "data dir           0750  OPEN to other users (set by GPTTERM_DATA_DIR)" in text
    assert "warnings:\n  - other users can read gptterm's data directory" in text
    assert (mode(shared), mode(elsewhere)) == (0o750, 0o755)  # doctor only looks


def test_doctor_shows_a_private_install(tiny_model, isolated_dirs):
    ok(run_cli("-m", str(tiny_model), *TINY, "hi"))
    report = json.loads(run_cli("doctor", "--json", "-m", str(tiny_model)).stdout)
    assert report["warnings"] == []
    assert {d["kind"]: (d["mode"], d["private"]) for d in report["permissions"]["dirs"]} == {
        "config": (None, True), "data": ("0700", True), "cache": ("0700", True)}
    assert report["permissions"]["files"]["history"]["mode"] == "0600"
    text = ok(run_cli("doctor", "-m", str(tiny_model))).stdout
    assert "permissions (yours only: 0700 folders, 0600 files):" in text
    assert "data dir           0700  private (set by GPTTERM_DATA_DIR)" in text
    assert "warnings:" not in text


# -- secrets ------------------------------------------------------------------------------


def test_no_api_key_or_hf_token_lands_in_any_file(tiny_model, isolated_dirs, fake_server, hub, tmp_path,
                                                  monkeypatch):
    from tests.fixtures import fake_openai

    key = fake_openai.API_KEY  # what the fake server's "auth" scenario accepts: proof the key was used
    wrong = "sk-PLANTED-wrong-7f3a91c0d2-key"  # which that scenario echoes back in its error
    profile_key = "sk-PLANTED-profile-5e8b2d-key"
    token = "hf_PLANTEDtoken4c1d9e7a2b"
    secrets = {s.encode() for s in (key, wrong, profile_key, token)}
    hub.token = token
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("MY_KEY", profile_key)
    write_config(isolated_dirs, f'[servers.fake]\nurl = "{fake_server.url("ok")}"\napi_key_env = "MY_KEY"\n')
    outputs = []

    def run(*args, **kw):
        proc = run_cli(*args, **kw)
        outputs.append(proc.stdout + proc.stderr)
        return proc

    # local chats, one long enough for a saved KV state
    ok(run("-m", str(tiny_model), *TINY, "hi"))
    ok(run("chat", "-m", str(tiny_model), "--max-tokens", "8", "--ctx", "1024",
           input="tell me about the quick brown fox " * 10 + "\nand then?\n"))
    assert list((isolated_dirs["cache"] / "kv").glob("*.kvstate"))
    # remote calls: the key from the environment, from a profile, and one the server refuses and echoes
    assert "authorized" in ok(run("--server", fake_server.url("auth"), "hi")).stdout
    assert ok(run("--server", "fake", "hi")).stdout.strip()
    assert fake_server.sent("ok", "/v1/chat/completions")[-1]["headers"]["Authorization"] == f"Bearer {profile_key}"
    refused = run("--server", fake_server.url("auth"), "hi", env={"OPENAI_API_KEY": wrong})
    assert refused.returncode != 0 and "not accepted" in refused.stderr
    ok(run("chat", "--server", fake_server.url("auth"), input="remote chat\n"))
    # a download that needs the token, config writes, exports, doctor
    ok(run("models", "pull", "test/Tiny-Gated-GGUF"))
    ok(run("config", "set", "temperature", "0.3"))
    ok(run("config", "set", "server", "fake"))
    for n, where in enumerate((isolated_dirs["data"], tmp_path)):
        ok(run("history", "export", "1", "-o", str(where / f"export{n}.md")))
        ok(run("history", "export", "2", "-f", "json", "-o", str(where / f"export{n}.json")))
    run("doctor")
    run("doctor", "--json")
    run("doctor", "--server", fake_server.url("auth"))

    written = [p for root in ("config", "data", "cache", "hf_home") for p in isolated_dirs[root].rglob("*")
               if p.is_file()] + list(tmp_path.glob("export*"))
    assert len(written) > 10 and any(p.suffix == ".kvstate" for p in written)
    leaks = [str(p) for p in written for s in secrets if s in p.read_bytes()]
    assert leaks == []
    assert [o for o in outputs for s in secrets if s.decode() in o] == []  # nor on the terminal
