"""``gptterm finetune DATA --out NAME``: train the local model on your data into a new local model.

Progress is one transient line on stderr (epoch, step, loss, tokens/s, time left); at the end stdout gets
the loss curve (train and validation), the validation perplexity before and after, and how to use the model
(or, with --json, all of it as one object). Ctrl+C stops after the current step, a second one at once;
nothing is saved either way.
"""

from __future__ import annotations

import json
import shutil
import sys

from gptterm.cli.options import FinetuneOptions
from gptterm.cli.io import Status, note, run_stream
from gptterm.finetune import events as ev
from gptterm.finetune.plan import Settings
from gptterm.finetune.runner import FineTune
from gptterm.models.finetuned import describe
from gptterm.models.names import human_size
from gptterm.settings import load_config
from gptterm.tasks.progress import clock
from gptterm.words import plural


def run_finetune(opts: FinetuneOptions) -> int:
    settings = Settings(epochs=opts.epochs, lr=opts.lr, ctx=opts.ctx, val_split=opts.val_split, keep_f32=opts.keep_f32,
                        threads=opts.threads, seed=opts.seed)
    job = FineTune(opts.data, opts.out, model=opts.model, settings=settings, encoding=load_config().encoding, notify=note)
    prep = job.prepare()
    unit = "example" if prep.data.kind == "chat" else "paragraph"
    note(f"fine-tuning {prep.base_name} on {prep.data.name}: {plural(len(prep.train), unit)} to train on, "
         f"{len(prep.val)} for validation; about {human_size(prep.needs.memory)} of memory")
    presses = [0]

    def cancel() -> None:
        presses[0] += 1
        if presses[0] == 1:
            note("stopping after the current step (Ctrl+C again stops at once); nothing will be saved")
            job.stop()
        else:
            job.kill()

    with Status() as line:

        def show(event: object) -> None:
            if isinstance(event, ev.Stage) and event.name != "train":
                line.show(f"fine-tune: {event.text}…")
                line.log(event.text)
            elif isinstance(event, ev.Data):
                line.log(f"{plural(event.train_tokens, 'token')} to train on, {event.steps_per_epoch} "
                         f"step{'s' if event.steps_per_epoch != 1 else ''} of {event.ctx} tokens an epoch")
            elif isinstance(event, ev.Step):
                text = (f"fine-tune: epoch {event.epoch}/{event.epochs} · step {event.step}/{event.steps} · "
                        f"loss {event.loss:.3f} · {event.tokens_per_s:.0f} tok/s · ~{clock(event.seconds_left)} left")
                line.show(text, fraction=event.done / event.total)
            elif isinstance(event, ev.Epoch) and event.epoch > 0:
                val = f", validation {event.val_loss:.3f}" if event.val_loss is not None else ""
                line.print_line(f"gptterm: epoch {event.epoch}: training loss {event.train_loss:.3f}{val}")
            elif isinstance(event, ev.Note):
                line.print_line(f"gptterm: {event.text}")

        interrupted = run_stream(job.run(), cancel, show)
    if job.stopped or interrupted:
        note("stopped: nothing was saved")
        return 130
    info = job.info or {}
    if opts.json:
        print(json.dumps({**info, "curve": {"train": job.curve.train, "validation": job.curve.val}},
                         ensure_ascii=False))
        return 0
    if job.curve:
        width = min(100, shutil.get_terminal_size((80, 24)).columns)
        print(job.curve.text(width=width, height=18, colour=sys.stdout.isatty()))
    before, after = job.scores.get("before"), job.scores.get("after")
    if before is not None and after is not None:
        print(f"validation perplexity: {before.perplexity:.2f} before → {after.perplexity:.2f} after "
              f"({plural(after.tokens, 'token')})")
    print(f"{opts.out}: {describe(info)}, {info.get('quant', '?')}, {clock(info.get('seconds') or 0)}")
    print(f"use it: gptterm -m {opts.out}")
    return 0
