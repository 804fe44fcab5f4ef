"""The parent's side of fine-tuning: check everything, start the child, pass on its events, register the model.

``FineTune`` is what every face uses. It does not draw anything and needs no event loop: the CLI iterates
``run()`` in a worker thread, and a TUI can do the same in a thread worker, posting each event as a message
and calling ``stop()`` from its Stop action (thread-safe). Failures are ``GpttermError``s with one line:
bad data (``InputError``, naming the line), a name already taken, too little memory or disk, and a child
that failed, aborted inside llama.cpp or was killed (``FinetuneError``). Nothing half-written survives a
failure or a stop: the child writes the model through ``gptterm.atomic`` and the JSON that lists it is
written last, here; the work folder with the F32 copies is removed whatever happens.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import gptterm
from gptterm import atomic, paths
from gptterm.engine.local import default_threads
from gptterm.errors import FinetuneError, ModelError
from gptterm.finetune import events as ev
from gptterm.finetune.curve import Curve
from gptterm.finetune.data import TrainingData, read_data
from gptterm.finetune.plan import FTYPE_ALL_F32, Needs, Settings, check_fits, check_model, estimate
from gptterm.finetune.train import Job
from gptterm.models import finetuned, machine, store
from gptterm.models.gguf_meta import GGUFMetadata, read_metadata
from gptterm.models.names import parse_quant
from gptterm.models.resolve import resolve_model
from gptterm.settings import load_config

LLAMA_FTYPE_GUESSED = 1024


@dataclass
class Prepared:
    """What was checked before the child starts (memory and disk included)."""

    base: Path
    base_name: str
    meta: GGUFMetadata
    data: TrainingData
    train: list[Any]
    val: list[Any]
    needs: Needs
    #: llama_ftype to quantize back to; None: the result stays F32
    ftype: int | None
    quant: str
    threads: int


def resolve_base(spec: str | None) -> tuple[Path, str]:
    """The base model's file and the name ``models ls`` knows it by (-m, else the default model)."""
    spec = spec or load_config().model
    path = resolve_model(spec)
    known = next((m for m in store.list_models() if store.same_file(m.path, path)), None)
    return path, known.name if known is not None else path.stem


class FineTune:
    def __init__(self, data: str | Path, name: str, *, model: str | None = None, settings: Settings = Settings(),
                 encoding: str | None = None, notify: Callable[[str], None] | None = None) -> None:
        self.data_path = Path(data)
        self.name = name.strip()
        self.model_spec = model
        self.settings = settings
        self.encoding = encoding
        self.notify = notify
        self.curve = Curve()
        self.scores: dict[str, ev.Score] = {}
        self.info: dict[str, Any] | None = None  # what was registered, once done
        self.stopped = False
        self.prepared: Prepared | None = None
        self._data: ev.Data | None = None
        self._epochs: list[ev.Epoch] = []
        self._first_loss: float | None = None
        self._done_steps = 0
        self._stop = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    # -- before -------------------------------------------------------------------------

    def prepare(self) -> Prepared:
        """Check the settings, the name, the data and the machine; raises a one-line error for the first
        problem. ``run()`` calls it when it was not called before."""
        settings = self.settings
        settings.check()
        taken = store.name_taken(self.name, "--out")
        if taken is not None:
            how = "'gptterm models rm " + taken.name + "'" if taken.source == finetuned.SOURCE else "another --out"
            raise ModelError(f"the name {self.name!r} is taken by {taken.name} ({taken.path}); choose another --out"
                             + (f" or remove it first with {how}" if taken.source == finetuned.SOURCE else ""))
        data = read_data(self.data_path, encoding=self.encoding, notify=self.notify)
        train, val = data.split(settings.val_split, settings.seed)
        base, base_name = resolve_base(self.model_spec)
        try:
            meta = read_metadata(base)
        except (OSError, ValueError) as err:
            raise ModelError(f"cannot read {base}: {err}") from None
        check_model(meta, settings)
        needs = estimate(meta, settings.ctx)
        check_fits(needs, machine.this_machine().ram_available, finetuned.folder())
        file_type = meta.values.get("general.file_type")
        ftype = int(file_type) & ~LLAMA_FTYPE_GUESSED if isinstance(file_type, int) else None
        if settings.keep_f32 or ftype == FTYPE_ALL_F32:
            ftype = None
        elif ftype is None and self.notify is not None:
            self.notify(f"{base.name} does not say its quantization: the fine-tuned model stays in F32")
        quant = "F32" if ftype is None else (parse_quant(base.name) or _ftype_name(ftype))
        self.prepared = Prepared(base, base_name, meta, data, train, val, needs, ftype, quant,
                                 settings.threads or default_threads())
        return self.prepared

    # -- the run --------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop after the current step (or stage); nothing is saved. Safe from any thread."""
        self._stop.set()
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None and proc.stdin is not None:
                try:
                    proc.stdin.write("stop\n")
                    proc.stdin.flush()
                except (OSError, ValueError):
                    pass

    def kill(self) -> None:
        """End the child at once (a second Ctrl+C, the app quitting); nothing is saved."""
        self._stop.set()
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def run(self) -> Iterator[ev.Event]:
        prep = self.prepared or self.prepare()
        if self._stop.is_set():
            self.stopped = True
            yield ev.Stopped(0)
            return
        s = self.settings
        out = finetuned.model_file(self.name)
        paths.private_dir(out.parent)
        work = out.parent / f".work-{self.name}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(mode=paths.PRIVATE_DIR)
        try:
            job = Job(base=str(prep.base), work=str(work), kind=prep.data.kind, train=prep.train,
                      val=prep.val, ctx=s.ctx, epochs=s.epochs, lr=s.lr, threads=prep.threads, seed=s.seed,
                      ftype=prep.ftype)
            (work / "job.json").write_text(job.dumps(), "utf-8")
            for event in self._events(work):
                if isinstance(event, ev.Done):
                    atomic.install(Path(event.file), out)
                    self._register(prep, event)
                yield event
        finally:
            self.kill()
            if self._proc is not None:
                self._proc.wait()
            shutil.rmtree(work, ignore_errors=True)

    def _events(self, work: Path) -> Iterator[ev.Event]:
        env = dict(os.environ)
        # the child imports this very gptterm, wherever it runs from
        root = str(Path(gptterm.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with self._lock:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "gptterm.finetune.train", str(work / "job.json")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                encoding="utf-8", errors="replace", cwd=work, env=env,
                start_new_session=True)  # Ctrl+C is the parent's to decide on: stop after the step, or kill
        proc = self._proc
        if self._stop.is_set():
            self.stop()
        tail: deque[str] = deque(maxlen=60)
        reader = threading.Thread(target=_drain, args=(proc.stderr, tail), name="gptterm-finetune-log", daemon=True)
        reader.start()
        failed: ev.Failed | None = None
        finished = False
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = ev.loads(line)
            except ValueError:
                continue
            if isinstance(event, ev.Failed):
                failed = event
                continue
            self._follow(event)
            if isinstance(event, (ev.Done, ev.Stopped)):
                finished = True
                if isinstance(event, ev.Stopped):
                    self.stopped = True
            yield event
        rc = proc.wait()
        reader.join(timeout=5)
        if finished:
            return
        if failed is not None:
            raise FinetuneError(failed.message)
        raise FinetuneError(self._crash_line(rc, list(tail)))

    def _follow(self, event: ev.Event) -> None:
        self.curve.add(event)
        if isinstance(event, ev.Data):
            self._data = event
        elif isinstance(event, ev.Step):
            self._done_steps = event.done
            if self._first_loss is None:
                self._first_loss = event.loss
        elif isinstance(event, ev.Epoch):
            self._epochs.append(event)
        elif isinstance(event, ev.Score):
            self.scores[event.which] = event

    def _crash_line(self, rc: int, tail: list[str]) -> str:
        where = ""
        if self._data is not None and self._done_steps:
            where = f" after step {self._done_steps} of {self._data.steps}"
        if rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            if -rc == signal.SIGABRT:
                reason = _llama_reason(tail)
                return f"training failed inside llama.cpp{where}" + (f": {reason}" if reason else "") + \
                       "; nothing was saved"
            why = "; the system may have run out of memory" if -rc == signal.SIGKILL and not self._stop.is_set() else ""
            return f"the training process was killed ({name}{why}){where}; nothing was saved"
        last = _llama_reason(tail) or next((t for t in reversed(tail) if t.strip()), "")
        return f"the training process ended with status {rc}{where}" + (f": {last}" if last else "") + \
               "; nothing was saved"

    def _register(self, prep: Prepared, done: ev.Done) -> None:
        data = self._data
        last = self._epochs[-1] if self._epochs else None
        before = self._epochs[0] if self._epochs and self._epochs[0].epoch == 0 else None
        s = self.settings
        info: dict[str, Any] = {
            "name": self.name, "file": finetuned.model_file(self.name).name, "base": prep.base_name, "base_path": str(prep.base),
            "data": prep.data.name, "data_path": str(prep.data.path.resolve()), "kind": prep.data.kind,
            "quant": "F32" if done.f32 else prep.quant, "epochs": s.epochs, "lr": s.lr, "ctx": s.ctx, "val_split": s.val_split,
            "seed": s.seed, "steps": self._done_steps,
            "train_examples": len(prep.train), "val_examples": len(prep.val),
            "train_tokens": data.train_tokens if data else None, "val_tokens": data.val_tokens if data else None,
            # the first step's loss is the base model's: it is computed before that step's update
            "first_train_loss": self._first_loss, "train_loss": last.train_loss if last else None,
            "first_val_loss": before.val_loss if before else None, "val_loss": last.val_loss if last else None,
            "perplexity_before": self.scores["before"].perplexity if "before" in self.scores else None,
            "perplexity_after": self.scores["after"].perplexity if "after" in self.scores else None,
            "prompt_tokens_masked": False, "seconds": round(done.seconds, 1),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        finetuned.register(self.name, info)
        self.info = info


def _ftype_name(ftype: int) -> str:
    """llama.cpp's name of a file type (3: Q4_1), from the binding's LLAMA_FTYPE_ constants."""
    import llama_cpp  # heavy: llama_cpp (only the commands that load a model pay for it)

    for key, value in vars(llama_cpp).items():
        if key.startswith("LLAMA_FTYPE_") and value == ftype and key != "LLAMA_FTYPE_GUESSED":
            return key.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_")
    return f"file type {ftype}"


def _drain(stream: Any, tail: deque[str]) -> None:
    for line in stream:
        tail.append(line.rstrip("\n"))


def _llama_reason(tail: list[str]) -> str | None:
    """The line that says why llama.cpp gave up (GGML_ASSERT, GGML_ABORT, an uncaught C++ exception)."""
    for line in reversed(tail):
        text = line.strip()
        for marker in ("GGML_ASSERT", "GGML_ABORT", "terminate called", "what():", "error:"):
            if marker in text:
                return text[text.find(marker):] if marker.startswith("GGML") else text
    return None

