"""Download throughput: ``gptterm models pull`` against a plain ``curl`` of the same file.

Both fetch from the local Hub server of the tests (tests/hub_server.py, the
body sent with sendfile) on 127.0.0.1, so the network is not the limit and
the client's own cost shows. curl fetches the file's storage URL and writes
it out; gptterm does what a pull does: repo listing, HEAD, the GET, sha256
while writing, fsync, rename and link into the Hugging Face cache. Rounds
interleave; medians.

    python bench/download.py [--size-mb 512] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.hub_server import HubServer  # noqa: E402

REPO = "bench/Bench-GGUF"
FILE = "bench-Q4_K_M.gguf"


def make_file(path: Path, size: int) -> None:
    block = os.urandom(4 * 2**20)
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            n = min(len(block), size - written)
            fh.write(block[:n])
            written += n


def curl(url: str, out: Path, verify: bool) -> float:
    t0 = time.perf_counter()
    subprocess.run(["curl", "-s", "-f", "-o", str(out), url], check=True)
    if verify:
        subprocess.run(["sha256sum", str(out)], check=True, capture_output=True)
    return time.perf_counter() - t0


def pull_in_process(hf_home: Path) -> float:
    from gptterm.models import download, hub

    shutil.rmtree(hf_home, ignore_errors=True)
    t0 = time.perf_counter()
    spec = hub.parse_spec(f"{REPO}:Q4_K_M")
    download.pull(hub.choose(hub.list_repo(spec.repo), spec))
    return time.perf_counter() - t0


def pull_cli(hf_home: Path) -> float:
    shutil.rmtree(hf_home, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gptterm", "models", "pull", f"{REPO}:Q4_K_M"], check=True,
                   capture_output=True, cwd=Path(__file__).resolve().parent.parent)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if not shutil.which("curl"):
        sys.exit("curl is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / FILE
        size = args.size_mb * 10**6
        make_file(source, size)
        server = HubServer().start()
        server.add_repo(REPO, {FILE: source})
        f = server.repos[REPO].files[FILE]
        hf_home = work / "hf"
        os.environ.update({"HF_ENDPOINT": server.url, "HF_HOME": str(hf_home), "GPTTERM_CONFIG_DIR": str(work / "c"),
                           "GPTTERM_DATA_DIR": str(work / "d"), "GPTTERM_CACHE_DIR": str(work / "ca")})
        url = f"{server.cdn_url}/blobs/{f.sha256}"
        runs: dict[str, list[float]] = {k: [] for k in ("curl", "curl + sha256sum", "gptterm pull (in process)",
                                                        "gptterm models pull (CLI)")}
        curl(url, work / "warm", False)  # page cache warm for everyone
        for _ in range(args.rounds):
            runs["curl"].append(curl(url, work / "out", False))
            runs["gptterm pull (in process)"].append(pull_in_process(hf_home))
            runs["curl + sha256sum"].append(curl(url, work / "out", True))
            runs["gptterm models pull (CLI)"].append(pull_cli(hf_home))
        server.stop()
    base = statistics.median(runs["curl"])
    print(f"{args.size_mb} MB file, {args.rounds} rounds, medians; ratio = curl's time / this time "
          "(throughput relative to curl)")
    print(f"{'':<28}{'seconds':>9}{'MB/s':>9}{'ratio':>8}")
    for name, times in runs.items():
        t = statistics.median(times)
        print(f"{name:<28}{t:>9.3f}{size / t / 1e6:>9.0f}{base / t:>8.2f}")


if __name__ == "__main__":
    main()
