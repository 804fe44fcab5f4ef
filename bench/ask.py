"""`ask` at scale: indexing speed and memory, retrieval latency, the cost of retrieval before an answer,
and embedding throughput against llama.cpp's own `llama-embedding`.

    python bench/ask.py [--mb 100] [--embed-model PATH --llama-embedding PATH] [--rounds 3]

A folder of ``--mb`` megabytes is generated (English prose with planted
facts, one file in ten Chinese), indexed by ``gptterm docs add`` in its own
process (wall time, MB/s, peak RSS), then:

- retrieval: median latency of 20 questions over the whole index (in process);
- the second question over the unchanged folder: first byte of
  ``gptterm ask DIR "question"`` against ``gptterm`` given the very prompt
  ask builds (the same system and user messages), interleaved;
- with ``--embed-model``: passages embedded per second by gptterm against
  ``llama-embedding`` on the same texts, model and threads.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from gptterm.engine.local import default_threads  # noqa: E402

WORDS = ("harbour library bakery river mountain engine garden window station market teacher lantern ferry "
         "orchard bridge council museum tunnel factory meadow village castle highway island forest valley "
         "archive signal beacon compass ledger quarry").split()
CJK = "模型训练数据语言文本翻译摘要问答系统网络结构注意力机制预测概率参数学习任务生成"
QUESTIONS = [f"What is the access code of vault {i}?" for i in range(20)]


def make_folder(root: str, megabytes: int) -> None:
    rng = random.Random(7)
    target = megabytes * 1_000_000
    written, i = 0, 0
    while written < target:
        chinese = i % 10 == 9
        path = os.path.join(root, f"dir{i % 20}", f"doc{i:05}.{'txt' if chinese else 'md'}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        paras = []
        for p in range(60):
            if chinese:
                paras.append("".join(rng.choice(CJK) for _ in range(rng.randint(80, 200))) + "。")
            else:
                if p == 30 and i < len(QUESTIONS):
                    paras.append(f"The access code of vault {i} is {1000 + i * 7}.")
                paras.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120))) + ".")
        text = "\n\n".join(paras) + "\n"
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        written += len(text.encode())
        i += 1


def first_byte(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    assert proc.stdout is not None
    proc.stdout.read(1)
    first = time.perf_counter() - t0
    proc.stdout.read()
    proc.wait()
    return first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--embed-model", metavar="PATH")
    ap.add_argument("--llama-embedding", metavar="PATH")
    ap.add_argument("--threads", type=int, default=default_threads())
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    folder = os.path.join(tmp, "docs")
    make_folder(folder, args.mb)
    env = {**os.environ, "GPTTERM_DATA_DIR": tmp, "GPTTERM_CONFIG_DIR": tmp, "GPTTERM_CACHE_DIR": tmp}
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)

    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gptterm", "docs", "add", "bench", folder], env=env, cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(f"indexing {size / 1e6:.0f} MB in {sum(len(f) for _, _, f in os.walk(folder))} files: {seconds:.1f} s, "
          f"{size / 1e6 / seconds:.1f} MB/s (the whole process), peak RSS {peak / 1e6:.0f} MB")

    os.environ.update(GPTTERM_DATA_DIR=tmp)
    from gptterm.docs.index import DocIndex

    index = DocIndex(os.path.join(tmp, "docs.sqlite3"))
    ids = index.scope([folder])
    times, right = [], 0
    for i, q in enumerate(QUESTIONS):
        t = time.perf_counter()
        hits = index.search(q, ids, 4)
        times.append(time.perf_counter() - t)
        right += bool(hits) and f"{1000 + i * 7}" in hits[0].text
    t = time.perf_counter()
    again = index.update([folder])
    unchanged_s = time.perf_counter() - t
    print(f"retrieval over the whole index: median {statistics.median(times) * 1000:.1f} ms, "
          f"max {max(times) * 1000:.1f} ms; planted fact first for {right}/{len(QUESTIONS)} questions; "
          f"checking the unchanged folder: {unchanged_s * 1000:.0f} ms ({again.unchanged} files, none read)")

    from gptterm.engine.local import LocalEngine
    from gptterm.models.bundled import bundled_model_path
    from gptterm.settings import Params
    from gptterm.tasks.ask import Asker

    engine = LocalEngine(bundled_model_path(), ctx=4096, gpu_layers=0, threads=args.threads)
    question = QUESTIONS[3]
    asker = Asker(engine, Params(), index, ids)
    messages, _, _ = asker._fit(question, asker.retrieve(question), [])
    engine.close()
    ask_cmd = [sys.executable, "-m", "gptterm", "ask", folder, question, "--no-log", "--max-tokens", "8"]
    plain_cmd = [sys.executable, "-m", "gptterm", "--no-log", "--max-tokens", "8", "-s", messages[0]["content"],
                 messages[-1]["content"]]
    ask_t, plain_t = [], []
    for _ in range(args.rounds):
        ask_t.append(first_byte(ask_cmd, env))
        plain_t.append(first_byte(plain_cmd, env))
    a, p = statistics.median(ask_t), statistics.median(plain_t)
    print(f"first byte of the answer, second question (medians of {args.rounds}): ask {a:.2f} s, the same prompt "
          f"without retrieval {p:.2f} s: +{(a - p) * 1000:.0f} ms")

    if args.embed_model:
        texts = [h.text for h in index.search("harbour library", ids, 200)][:200]
        from gptterm.docs.embed import LocalEmbedder

        embedder = LocalEmbedder(args.embed_model, threads=args.threads)
        t = time.perf_counter()
        embedder.embed(texts)
        ours = len(texts) / (time.perf_counter() - t)
        line = f"embedding: gptterm {ours:.1f} passages/s"
        if args.llama_embedding:
            path = os.path.join(tmp, "passages.txt")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("\n".join(t.replace("\n", " ") for t in texts))
            t = time.perf_counter()
            subprocess.run([args.llama_embedding, "-m", args.embed_model, "-f", path, "-t", str(args.threads),
                            "--embd-output-format", "json", "-c", "512", "-b", "512", "-ub", "512"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cpp = len(texts) / (time.perf_counter() - t)
            line += f", llama-embedding {cpp:.1f} passages/s (start-up included): ratio {ours / cpp:.2f}"
        print(line + f" ({len(texts)} passages, {args.threads} threads)")


if __name__ == "__main__":
    main()
