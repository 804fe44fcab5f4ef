"""Download throughput: ``gptterm models pull`` against a plain ``curl`` of the same file.

Both fetch from the local Hub of the tests (``python -m tests.hub_server``,
its own process, the body sent with sendfile) on 127.0.0.1, so the network is
not the limit and each client's own cost shows. curl fetches the file's
storage URL and writes it out. gptterm does what a pull does: repo listing,
HEAD, the GET, sha256 while writing, fsync, rename and link into the Hugging
Face cache. "in process" times ``download.pull()``; "CLI" the whole
``gptterm models pull`` process (Python start-up and imports included).

Each round runs every client once, in turn; the ratio is curl's time over
the client's time in the same round (so a busy machine hurts both alike),
and the table shows medians over rounds, plus the CPU seconds each client
used (user + system, all threads). Before each run the outputs are deleted
and ``sync`` flushes the page cache's dirty pages, so no client pays for the
previous one's writes. "sha256 switched off" (a bench-only patch) shows what
the verification costs: on a 2-core machine whose other core serves the
file, it cannot run beside the transfer for free.

    python bench/download.py [--size-mb 512] [--rounds 7] [--link-mb 100]

``--link-mb`` has the server send at a fixed rate, like the network a real
pull goes over: then the client's CPU work is hidden behind the wire, as it
is against the Hub (whose CDN delivers well under loopback's GB/s).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPO = "bench/Bench-GGUF"
FILE = "bench-Q4_K_M.gguf"


def make_file(path: Path, size: int) -> str:
    block = os.urandom(4 * 2**20)
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        written = 0
        while written < size:
            piece = block[: min(len(block), size - written)]
            fh.write(piece)
            digest.update(piece)
            written += len(piece)
    return digest.hexdigest()


class _Pretend:
    """A hash object that does no work and reports the expected digest."""

    def __init__(self, digest: str) -> None:
        self.digest = digest

    def update(self, data: bytes) -> None:
        pass

    def hexdigest(self) -> str:
        return self.digest


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, cpu_of) -> tuple[float, float]:
    c0, t0 = cpu_of(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu_of() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--link-mb", type=float, help="the server sends at this many MB/s, like a network link "
                    "(default: as fast as loopback goes)")
    args = ap.parse_args()
    if not shutil.which("curl"):
        sys.exit("curl is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / FILE
        size = args.size_mb * 10**6
        sha = make_file(source, size)
        rate = ["--rate-mb", str(args.link_mb)] if args.link_mb else []
        server = subprocess.Popen([sys.executable, "-m", "tests.hub_server", "--serve", REPO, FILE, str(source),
                                   *rate], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            fields = dict(part.split("=", 1) for part in server.stdout.readline().split())
            hf_home = work / "hf"
            os.environ.update({"HF_ENDPOINT": fields["HF_ENDPOINT"], "HF_HOME": str(hf_home),
                               "GPTTERM_CONFIG_DIR": str(work / "c"), "GPTTERM_DATA_DIR": str(work / "d"),
                               "GPTTERM_CACHE_DIR": str(work / "ca")})
            url = f"{fields['CDN']}/blobs/{sha}"
            from gptterm.models import download, hub

            def curl() -> None:
                subprocess.run(["curl", "-s", "-f", "-o", str(work / "out"), url], check=True)

            def curl_sha256sum() -> None:
                curl()
                subprocess.run(["sha256sum", str(work / "out")], check=True, capture_output=True)

            def curl_hashlib() -> None:
                curl()
                digest = hashlib.sha256()
                with open(work / "out", "rb") as fh:
                    while piece := fh.read(4 * 2**20):
                        digest.update(piece)

            def in_process() -> None:
                spec = hub.parse_spec(f"{REPO}:Q4_K_M")
                download.pull(hub.choose(hub.list_repo(spec.repo), spec))

            def in_process_unverified() -> None:
                # bench only: the same transfer with the sha256 replaced by a no-op, to show its cost
                from gptterm.models import part_file

                real = part_file.new_hasher
                part_file.new_hasher = lambda f: _Pretend(f.sha256)
                try:
                    in_process()
                finally:
                    part_file.new_hasher = real

            def cli() -> None:
                subprocess.run([sys.executable, "-m", "gptterm", "models", "pull", f"{REPO}:Q4_K_M"], check=True,
                               capture_output=True, cwd=ROOT)

            def both_cpu() -> float:
                return own_cpu() + children_cpu()

            clients = {"curl": (curl, children_cpu), "curl, then sha256sum": (curl_sha256sum, children_cpu),
                       "curl, then Python sha256": (curl_hashlib, both_cpu),
                       "gptterm pull (in process)": (in_process, own_cpu),
                       "  same, sha256 switched off": (in_process_unverified, own_cpu),
                       "gptterm models pull (CLI)": (cli, children_cpu)}
            curl()  # warm the page cache for everyone
            results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in clients}
            for _ in range(args.rounds):
                base = None
                for name, (fn, cpu_of) in clients.items():
                    # every client starts from the same state: no output file, no dirty pages
                    shutil.rmtree(hf_home, ignore_errors=True)
                    (work / "out").unlink(missing_ok=True)
                    os.sync()
                    wall, cpu = timed(fn, cpu_of)
                    base = wall if name == "curl" else base
                    results[name].append((wall, cpu, base / wall))
        finally:
            server.terminate()
            server.wait()
    link = f"a {args.link_mb:g} MB/s link" if args.link_mb else "loopback at full speed"
    print(f"{args.size_mb} MB file over {link}, {args.rounds} rounds; medians; ratio = curl's time / this client's time "
          "in the same round")
    print(f"{'':<28}{'seconds':>9}{'MB/s':>8}{'ratio':>7}{'  (min-max)':<14}{'CPU s':>7}")
    for name, rows in results.items():
        walls, cpus, ratios = zip(*rows)
        wall = statistics.median(walls)
        print(f"{name:<28}{wall:>9.3f}{size / wall / 1e6:>8.0f}{statistics.median(ratios):>7.2f}"
              f"  ({min(ratios):.2f}-{max(ratios):.2f}){'':<2}{statistics.median(cpus):>7.2f}")


if __name__ == "__main__":
    main()
