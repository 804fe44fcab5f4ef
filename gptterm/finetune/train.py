"""The fine-tuning child process: ``python -m gptterm.finetune.train JOB.json``.

Started by ``gptterm.finetune.runner.FineTune``. It reports progress as JSON lines (``events``) on the
stdout it was started with; C code that prints (llama.cpp) is pointed at stderr, so nothing else reaches
that pipe. A line ``stop`` on stdin, or stdin closing (the parent is gone), stops it after the current step;
it then writes no model. Its terminal signals are the parent's business: it runs in a session of its own.

Steps: tokenize the data with the base model (and score the validation part with it), convert the base to
F32, train epoch by epoch (the validation loss after each), save, copy the base's metadata back, quantize to
the base's type, and score the validation part with the result, which it writes to the path given.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from gptterm.engine import ggml_lib
from gptterm.engine.local import LocalEngine
from gptterm.errors import GpttermError
from gptterm.finetune import data, events as ev, gguf_files
from gptterm.finetune.data import chunks
from gptterm.finetune.llama_train import Trainer
from gptterm.finetune.plan import FTYPE_ALL_F32
from gptterm.tasks.perplexity import Result


@dataclass
class Job:
    base: str
    work: str  # a folder for every file it writes (the parent removes it)
    kind: str
    train: list[Any]
    val: list[Any]
    ctx: int = 256
    epochs: int = 2
    lr: float = 1e-4
    threads: int = 2
    seed: int = 0
    #: llama_ftype to quantize back to; None keeps F32
    ftype: int | None = None

    def dumps(self) -> str:
        return json.dumps(self.__dict__, ensure_ascii=False)

    @classmethod
    def load(cls, path: Path) -> "Job":
        return cls(**json.loads(path.read_text("utf-8")))


class Stop(Exception):
    """Asked to stop (a ``stop`` line, or the parent went away)."""


class _Child:
    def __init__(self, job: Job, out: TextIO) -> None:
        self.job = job
        self.out = out
        self.stop = threading.Event()
        self.done = 0
        self.before: ev.Score | None = None
        self.f32_loss: float | None = None  # validation loss of the trained F32 weights

    def emit(self, event: ev.Event) -> None:
        self.out.write(ev.dumps(event) + "\n")
        self.out.flush()

    def check(self) -> None:
        if self.stop.is_set():
            raise Stop

    def stage(self, name: str) -> None:
        self.check()
        self.emit(ev.Stage(name))

    def run(self) -> None:
        job = self.job
        work = Path(job.work)
        started = time.monotonic()
        self.stage("prepare")
        train_docs, val_docs = self._prepare()
        val_pieces = [piece for doc in val_docs for piece in data.chunks(doc, job.ctx)]
        steps = len(self._epoch_windows(train_docs, 1))

        self.stage("convert")
        f32 = work / "base-f32.gguf"
        gguf_files.convert_to_f32(Path(job.base), f32, job.threads)
        self.stage("load")
        trainer = Trainer(f32, ctx=job.ctx, threads=job.threads, lr=job.lr)
        f32.unlink()  # in memory now, without mmap
        try:
            self.emit(ev.Epoch(0, 0, None, _mean_loss(trainer, val_pieces)))
            self._train(trainer, train_docs, val_pieces, steps)
            self.stage("save")
            trained = work / "trained-f32.gguf"
            trainer.save(trained)
        finally:
            trainer.close()
        model, in_f32 = self._finish(trained, val_docs)
        self.emit(ev.Done(file=str(model), f32=in_f32, seconds=time.monotonic() - started))

    def _prepare(self) -> tuple[list[list[int]], list[list[int]]]:
        """The documents' tokens (by the base model's tokenizer and chat template); the validation part
        scored by the base model."""
        job = self.job
        engine = LocalEngine(job.base, ctx=job.ctx, gpu_layers=0, threads=job.threads)
        try:
            if job.kind == "chat":
                train = [engine.transcript_tokens(messages) for messages in job.train]
                val = [engine.transcript_tokens(messages) for messages in job.val]
            else:
                train = [engine.completion_tokens("\n\n".join(job.train))]
                val = [engine.completion_tokens("\n\n".join(job.val))] if job.val else []
            self.emit(ev.Data(kind=job.kind, train_examples=len(job.train), val_examples=len(job.val),
                              train_tokens=sum(map(len, train)), val_tokens=sum(map(len, val)),
                              steps_per_epoch=len(data.windows([t for doc in train for t in doc], job.ctx)),
                              epochs=job.epochs, ctx=job.ctx))
            if val:
                self.stage("score-before")
                self.before = _score_with(engine, val, job.ctx, "before", self.check)
                self.emit(self.before)
        finally:
            engine.close()
        return train, val

    def _score(self, model: Path, docs: list[list[int]]) -> ev.Score:
        self.emit(ev.Stage("score-after"))
        engine = LocalEngine(model, ctx=self.job.ctx, gpu_layers=0, threads=self.job.threads)
        try:
            return _score_with(engine, docs, self.job.ctx, "after", None)
        finally:
            engine.close()

    def _epoch_windows(self, docs: list[list[int]], epoch: int) -> list[list[int]]:
        """This epoch's windows: the documents in a new order (chat), cut, and the windows shuffled."""
        rng = random.Random(self.job.seed * 1000 + epoch)
        order = list(docs)
        if len(order) > 1:
            rng.shuffle(order)
        found = data.windows([t for doc in order for t in doc], self.job.ctx)
        rng.shuffle(found)
        return found

    def _train(self, trainer: Any, docs: list[list[int]], val_pieces: list[list[int]], steps: int) -> None:
        job = self.job
        total = steps * job.epochs
        step_times: list[float] = []
        eval_s = 0.0
        for epoch in range(1, job.epochs + 1):
            self.stage("train")
            losses = []
            windows = self._epoch_windows(docs, epoch)
            for k, window in enumerate(windows, 1):
                self.check()
                t0 = time.monotonic()
                losses.append(trainer.step(window))
                step_times.append(time.monotonic() - t0)
                self.done += 1
                recent = step_times[-8:]
                per_step = sum(recent) / len(recent)
                left = per_step * (total - self.done) + eval_s * (job.epochs - epoch + 1)
                self.emit(ev.Step(epoch=epoch, epochs=job.epochs, step=k, steps=len(windows), done=self.done,
                                  total=total, loss=losses[-1], tokens_per_s=job.ctx / step_times[-1],
                                  seconds_left=left))
            t0 = time.monotonic()
            val_loss = _mean_loss(trainer, val_pieces)
            eval_s = time.monotonic() - t0
            self.f32_loss = val_loss
            self.emit(ev.Epoch(epoch, self.done, sum(losses) / len(losses), val_loss))

    def _finish(self, trained: Path, val_docs: list[list[int]]) -> tuple[Path, bool]:
        """The model file to hand over (in the work folder) and whether it is the F32 one.

        Quantizing back can undo a short fine-tuning: updates smaller than half a quantization step round
        back to the base's own values (measured on the bundled Q4_1: a planted answer format learnt in F32 was
        gone again as Q4_1). When ``quantizing_undid`` says so, the F32 model is handed over instead, and a
        note says why.
        """
        job = self.job
        f32 = trained.with_name("model-f32.gguf")
        gguf_files.with_base_metadata(Path(job.base), trained, f32, file_type=FTYPE_ALL_F32)
        trained.unlink()
        if job.ftype is None:
            if val_docs:
                self.emit(self._score(f32, val_docs))
            return f32, True
        self.emit(ev.Stage("quantize"))
        quantized = trained.with_name("model.gguf")
        gguf_files.quantize(f32, quantized, job.ftype, job.threads)
        if not val_docs:
            f32.unlink()
            return quantized, False
        after = self._score(quantized, val_docs)
        before, tuned = self.before, self.f32_loss
        if before is not None and tuned is not None:
            if quantizing_undid(before.cross_entropy, tuned, after.cross_entropy):
                self.emit(ev.Note(
                    f"quantizing back undid most of the training (validation perplexity {before.perplexity:.2f} "
                    f"before, {math.exp(tuned):.2f} trained in F32, {after.perplexity:.2f} quantized): the model is "
                    "kept in F32; more steps or a higher --lr make changes that survive quantizing"))
                quantized.unlink()
                self.emit(ev.Score("after", math.exp(tuned), tuned, after.tokens))
                return f32, True
        f32.unlink()
        self.emit(after)
        return quantized, False


def quantizing_undid(before: float, tuned: float, quantized: float) -> bool:
    """Whether quantizing lost what training did, from validation cross-entropies (nats per token: the base's,
    the trained F32 weights', the quantized model's): it cost more than half of the gain, or more than half
    of the trained loss itself. The second catches a learnt format that the rest of the text hides: on the
    bundled model, 4.56 → 0.32 in F32 but 1.94 as Q4_1, which no longer answered in the format."""
    gain = before - tuned
    return gain > 0 and quantized - tuned > 0.5 * min(gain, tuned)


def _mean_loss(trainer: Any, pieces: list[list[int]]) -> float | None:
    nll, _, count = trainer.score(pieces)
    return nll / count if count else None


def _score_with(engine: Any, docs: list[list[int]], ctx: int, which: str,
                check: Callable[[], None] | None) -> ev.Score:
    """Perplexity of ``docs`` (token lists) in windows of ``ctx`` tokens, every next token scored."""
    result = Result()
    for doc in docs:
        for piece in chunks(doc, ctx):
            if check is not None:
                check()
            for lp in engine.score(piece, 0).logprobs:
                result.nll -= lp
                result.nll2 += lp * lp
                result.scored += 1
    return ev.Score(which, result.perplexity, result.cross_entropy, result.scored)


_on_abort: Any = None  # the ctypes callback, alive for the process


def _report_aborts(child: _Child) -> None:
    """A failed GGML_ASSERT aborts the process; say why on the events pipe first (one line, where ggml would
    print the message and then a debugger's backtrace of every thread)."""
    global _on_abort
    def on_abort(message: bytes | None) -> None:
        text = (message or b"").decode("utf-8", "replace").strip()
        where, _, what = text.rpartition(": ")
        child.emit(ev.Failed(f"training failed inside llama.cpp: {what or text}"
                             + (f" ({Path(where).name})" if where else "") + "; nothing was saved"))

    _on_abort = ggml_lib.ABORT_CALLBACK(on_abort)
    ggml_lib.libs().set_abort_callback(_on_abort)


def _watch_stdin(stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()  # asked to, or the parent is gone


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # the events' pipe is the stdout we were given; llama.cpp's own prints go to stderr from here on
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    child = _Child(Job.load(Path(args[0])), out)
    _report_aborts(child)
    threading.Thread(target=_watch_stdin, args=(child.stop,), name="gptterm-stop", daemon=True).start()
    try:
        child.run()
    except Stop:
        child.emit(ev.Stopped(child.done))
    except GpttermError as err:
        child.emit(ev.Failed(str(err)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
