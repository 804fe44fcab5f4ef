"""How good a model's translations and summaries are, on a small evaluation set written for gptterm.

Translation: the 12 sentences of ``bench/quality/sentences.tsv`` (English, Chinese, French, German,
Spanish: written for this bench, each line one meaning in five languages), translated from English
into each language and back, through gptterm's own ``Translator`` (greedy, as ``gptterm translate``
runs); scored with chrF (sacrebleu's corpus chrF, character 6-grams; 0-100, higher is better) against
the reference. A "copy" row scores the untranslated source against the reference: the floor a
translation must clear.

Summaries: the 5 short texts of ``bench/quality/texts.json``, each with 5 key points, summarized with
``Summarizer`` at ``--length short``; a key point counts as covered when one of its keyword groups
appears whole in the summary (lower case). A "lead" row covers the text's first 60 words: what
copying the beginning gets.

    pip install sacrebleu        # bench only (pip install -e '.[bench]')
    python bench/quality.py [-m MODEL] [--threads N] [--only translate|summarize] [--json]

MODEL is a .gguf path or a local model's name (default: the bundled model).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gptterm.engine.local import LocalEngine  # noqa: E402
from gptterm.models.resolve import resolve_model  # noqa: E402
from gptterm.settings import Params  # noqa: E402
from gptterm.tasks.job import TASK_DEFAULTS  # noqa: E402
from gptterm.tasks.summarize import Summarizer, SummaryOptions  # noqa: E402
from gptterm.tasks.translate import Translator  # noqa: E402

HERE = Path(__file__).resolve().parent / "quality"
LANGS = ("zh", "fr", "de", "es")
#: what the catalog may claim from these figures (bench/README.md)
TRANSLATE_CHRF = 40.0
SUMMARY_COVERAGE = 0.6


def sentences() -> dict[str, list[str]]:
    rows = [line.split("\t") for line in (HERE / "sentences.tsv").read_text("utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    return {lang: [r[i] for r in rows] for i, lang in enumerate(("en", *LANGS))}


def chrf(hypotheses: list[str], references: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_chrf(hypotheses, [references]).score)


def covered(summary: str, points: list[dict]) -> int:
    text = summary.lower()
    return sum(any(all(k in text for k in group) for group in p["any"]) for p in points)


def translate_all(engine: LocalEngine, params: Params, texts: list[str], source: str, target: str) -> list[str]:
    out = []
    for text in texts:
        job = Translator(engine, params, target=target, source=source)
        for _ in job.run(text + "\n"):
            pass
        out.append(job.text.strip())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", help="a .gguf file or a local model's name (default: the bundled model)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--ctx", type=int, default=2048)
    ap.add_argument("--only", choices=("translate", "summarize"))
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    ap.add_argument("--show", action="store_true", help="print every output too (stderr)")
    args = ap.parse_args()
    path = resolve_model(args.model)
    engine = LocalEngine(path, ctx=args.ctx, gpu_layers=-1, threads=args.threads)
    params = Params().replace(**TASK_DEFAULTS, max_tokens=512)
    data = sentences()
    report: dict = {"model": path.name, "threads": engine.info.threads, "translation": {}, "summaries": {}}
    started = time.perf_counter()
    if args.only != "summarize":
        for lang in LANGS:
            for source, target in (("en", lang), (lang, "en")):
                hyps = translate_all(engine, params, data[source], source, target)
                if args.show:
                    for h, r in zip(hyps, data[target]):
                        print(f"{source}>{target}: {h!r}  (ref {r!r})", file=sys.stderr)
                report["translation"][f"{source}>{target}"] = {
                    "chrf": round(chrf(hyps, data[target]), 1), "copy": round(chrf(data[source], data[target]), 1)}
    if args.only != "translate":
        texts = json.loads((HERE / "texts.json").read_text("utf-8"))
        got = lead = total = 0
        for t in texts:
            job = Summarizer(engine, params, SummaryOptions.parse("short"))
            for _ in job.run(t["text"]):
                pass
            if args.show:
                print(f"{t['title']}: {job.text!r}", file=sys.stderr)
            got += covered(job.text, t["points"])
            lead += covered(" ".join(t["text"].split()[:60]), t["points"])
            total += len(t["points"])
        report["summaries"] = {"covered": got, "lead": lead, "points": total, "texts": len(texts)}
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"model {report['model']}, {report['threads']} threads, greedy, {report['seconds']} s")
    if report["translation"]:
        directions = list(report["translation"])
        print("translation, chrF (12 sentences each)  " + "  ".join(f"{d:>6}" for d in directions))
        print(f"{'  model':<40}" + "  ".join(f"{report['translation'][d]['chrf']:>6.1f}" for d in directions))
        print(f"{'  copy (the source untranslated)':<40}"
              + "  ".join(f"{report['translation'][d]['copy']:>6.1f}" for d in directions))
        into = [report["translation"][f"en>{lang}"]["chrf"] for lang in LANGS]
        print(f"  translates well (chrF >= {TRANSLATE_CHRF:.0f}) into: "
              + (", ".join(lang for lang, c in zip(LANGS, into) if c >= TRANSLATE_CHRF) or "none"))
    if report["summaries"]:
        s = report["summaries"]
        print(f"summaries, key points covered ({s['texts']} texts, --length short): "
              f"{s['covered']} of {s['points']} ({s['covered'] / s['points']:.0%}); "
              f"the first 60 words of each text: {s['lead']} of {s['points']} ({s['lead'] / s['points']:.0%})")


if __name__ == "__main__":
    main()
