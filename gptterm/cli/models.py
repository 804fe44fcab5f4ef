"""``gptterm models``: catalog, Hub search, pull, and the local store.

Tables and results go to stdout; notes and the progress bar to stderr. The
progress bar (rich) is drawn only when stderr is a terminal; otherwise one
line says what is being downloaded and one what was.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gptterm import paths
from gptterm.cli.options import ModelsOptions
from gptterm.cli.io import Status, fields, note, table
from gptterm.errors import ModelError, UsageError
from gptterm.models import adapters, store
from gptterm.models.adapters import adapter_for
from gptterm.models.finetuned import describe
from gptterm.models.gguf_meta import read_metadata
from gptterm.models.names import human_size
from gptterm.words import plural

if TYPE_CHECKING:  # annotations only: ls, show, rm start without the Hub and download modules (ssl, http)
    from gptterm.models.download import Progress, ProgressFn, PullPlan
    from gptterm.models.hub import RepoListing


def run_models(opts: ModelsOptions) -> int:
    action = opts.action or "ls"
    return {"catalog": _catalog, "search": _search, "pull": _pull, "ls": _ls, "rm": _rm, "default": _default,
            "import": _import, "show": _show}[action](opts)


def _json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


# -- catalog and search ------------------------------------------------------------


def _catalog(opts: ModelsOptions) -> int:
    # only 'models catalog' needs the catalog and the machine's probe (subprocess)
    from gptterm.models import advice, catalog
    from gptterm.models.machine import this_machine

    machine = this_machine()
    local = store.list_models()
    task, langs = _catalog_filter(opts)
    entries = tuple(advice.ranked(task, langs)) if task else catalog.CATALOG
    rows = catalog.rows(machine, entries=entries)
    best = advice.recommend(task, langs, machine=machine) if task else None
    for row in rows:
        row["downloaded"] = any(m.name == row["id"] for m in local)
        row["recommended"] = best is not None and row["id"] == best.id
    if opts.json:
        _json({"machine": _machine_dict(machine), "task": task, "languages": list(langs), "models": rows,
               "recommended": best.id if best else None})
        return 0
    if task and not rows:
        note(f"no catalog model is known to {advice.VERBS.get(task, task)}" + (f" in {', '.join(langs)}" if langs else ""))
        return 0
    table([(r["id"] + (" *" if r["recommended"] else ""), r["params"], r["quant"], human_size(r["size"]),
             "~" + human_size(r["memory"]), r["fits"], "yes" if r["downloaded"] else "", ",".join(r["tasks"]),
             catalog.languages_text(tuple(r["languages"])), catalog.context_text(r["context"]),
             r["licence"] + (" (gated)" if r["gated"] else ""), r["class"], "yes" if r["thinking"] else "",
             "yes" if r["tool_calls"] else "")
            for r in rows],
           ("ID", "PARAMS", "QUANT", "SIZE", "MEMORY", "FITS", "LOCAL", "GOOD FOR", "LANGUAGES", "CTX", "LICENCE",
            "CLASS", "THINKS", "TOOLS"))
    if task:
        what = f"{task}" + (f" in {', '.join(langs)}" if langs else "")
        note(f"best first for {what}; " + (f"* suits this machine best: gptterm models pull {best.id}" if best else
                                           "none of them suits this machine (memory, disk, speed)"))
    note(_machine_line(machine) + "; 'gptterm models pull ID' downloads one ('--json' has the repos and files)")
    return 0


def _catalog_filter(opts: ModelsOptions) -> tuple[str | None, tuple[str, ...]]:
    from gptterm.assets import language_code  # only 'models catalog --lang' needs it: 'models ls' stays light

    task = opts.task
    langs = tuple(language_code(code) for code in (opts.lang or "").split(",") if code.strip())
    if langs and not task:
        task = "chat"
    return task, langs


def _machine_dict(machine: Any) -> dict:
    return {"ram_total": machine.ram_total, "ram_available": machine.ram_available, "gpu": machine.gpu_name,
            "vram_total": machine.vram_total, "vram_free": machine.vram_free, "gpu_usable": machine.gpu_usable}


def _machine_line(machine: Any) -> str:
    ram = f"this machine: {human_size(machine.ram_total)} RAM ({human_size(machine.ram_available)} available)"
    if machine.gpu_name is None:
        return ram + ", no GPU in use"
    gpu = f"{machine.gpu_name} with {human_size(machine.vram_total)} VRAM ({human_size(machine.vram_free)} free)"
    if not machine.gpu_usable:
        return f"{ram}; {gpu} is not used: this llama-cpp-python build is CPU-only"
    return f"{ram}; {gpu}"


def _search(opts: ModelsOptions) -> int:
    from gptterm.models import hub  # only 'models search' needs the Hub module (ssl, http when used)

    query = opts.query.strip()
    if not query:
        raise UsageError("give something to search for, e.g. 'gptterm models search qwen2.5'")
    found = hub.find(query, limit=max(1, opts.limit), notify=note)
    if isinstance(found, hub.RepoListing):
        return _repo_files(opts, found)
    if opts.json:
        _json([h.as_dict() for h in found])
        return 0
    if not found:
        note(f"no GGUF repos on the Hub match {query!r}")
        return 0
    table([(h.repo + (" (gated)" if h.gated else ""), f"{h.downloads:,}" if h.downloads is not None else "",
             h.likes if h.likes is not None else "", h.updated) for h in found],
           ("REPO", "DOWNLOADS", "LIKES", "UPDATED"))
    note("'gptterm models search OWNER/NAME' lists a repo's files; 'gptterm models pull OWNER/NAME' downloads "
         "its Q4_K_M")
    return 0


def _repo_files(opts: ModelsOptions, listing: RepoListing) -> int:
    if opts.json:
        _json({"repo": listing.repo, "commit": listing.commit, "gated": listing.gated,
               "models": [m.as_dict() for m in listing.models]})
        return 0
    if not listing.models:
        note(f"{listing.repo} has no .gguf files")
        return 0
    rows = []
    for m in listing.models:
        name = m.filename + (f" (+{len(m.files) - 1} parts)" if len(m.files) > 1 else "")
        sha = (m.files[0].sha256 or "")[:12]
        rows.append((name, m.quant or "?", human_size(m.size), sha, m.problem or ""))
    table(rows, ("FILE", "QUANT", "SIZE", "SHA256", ""))
    note(f"'gptterm models pull {listing.repo}:QUANT' or '{listing.repo}/FILE' downloads one"
         + (" (gated: needs HF_TOKEN)" if listing.gated else ""))
    return 0


# -- pull ------------------------------------------------------------------------------


def _pull(opts: ModelsOptions) -> int:
    from gptterm.models import download  # the Hub client (ssl, http): only 'models pull' needs it

    plan = download.plan_pull(opts.spec, notify=note)
    model = plan.model
    if opts.dry_run:
        _show_plan(plan, opts.json)
        return 0
    if plan.already_here:
        result = download.pull(model)
        base = _adapter_of(result.model)
        note(f"{result.model.name} is already downloaded: {result.model.path}")
    else:
        with _progress_display(plan) as on_progress:
            result = download.pull(model, progress=on_progress, notify=note)
        base = _adapter_of(result.model)
        speed = result.downloaded / result.seconds if result.seconds > 0 else 0
        use = "" if base else f"; chat with it: gptterm -m {result.model.name}"
        note(f"downloaded {result.model.name}: {human_size(result.downloaded)} in {result.seconds:.1f} s "
             f"({human_size(speed)}/s), sha256 verified{use}")
    if opts.json:
        _json({**result.model.as_dict(), "downloaded": result.downloaded, "resumed": result.resumed,
               "seconds": round(result.seconds, 3), "already_downloaded": result.already,
               "kind": "lora" if base else "model"})
    else:
        print(result.model.name)
    if base:
        note(f"{result.model.name} is a LoRA adapter for {base} models: gptterm -m MODEL --lora {result.model.name}"
             f" ('gptterm models show {result.model.name}' says which local models it fits)")
    return 0


def _show_plan(plan: PullPlan, as_json: bool) -> None:
    from gptterm.models.machine import this_machine  # only 'pull --dry-run' needs the machine's probe (subprocess)

    data = plan.as_dict()
    if as_json:
        _json(data)
        return
    machine = this_machine()
    lines = [("model", plan.name), ("repo", f"{data['repo']} (commit {data['commit'][:12]})"),
             ("quant", data["quant"] or "?"), ("size", human_size(data["size"]))]
    for f in data["files"]:
        lines.append(("file", f"{f['path']}  {human_size(f['size'])}  sha256 {f['sha256'] or '?'}  [{f['state']}]"))
    lines += [("to download", "nothing (already downloaded)" if data["already_downloaded"] else
               human_size(data["download"])),
              ("destination", data["destination"]),
              ("disk", f"{human_size(data['disk_free'])} free: "
                       + ("fits" if data["fits_disk"] else "NOT ENOUGH SPACE")),
              ("memory", f"needs ~{human_size(data['memory'])}: fits {data['fits_memory']} "
                         f"({_machine_line(machine).removeprefix('this machine: ')})")]
    fields(lines)


class _progress_display:
    """The download on the status line (``cli.io.Status``: bytes, speed, time left) when stderr is a
    terminal; otherwise one line when the first bytes arrive, so a pull that fails before that prints only
    its error."""

    def __init__(self, plan: PullPlan) -> None:
        self.name, self.total = plan.name, plan.model.size
        self.plan, self.model = plan, plan.model
        self.status: Any = None
        self.announced = False
        self.last: Progress | None = None
        self.samples: list[tuple[float, int]] = []

    def __enter__(self) -> ProgressFn:
        self.status = Status().__enter__()
        return self.update if self.status.tty else self.announce

    def announce(self, p: Progress) -> None:
        if self.announced or p.phase != "downloading":
            return
        self.announced = True
        m = self.model
        note(f"downloading {self.name}: {m.repo}/{m.filename} ({m.quant or '?'}, {human_size(m.size)}"
             + (f" in {len(m.files)} files" if len(m.files) > 1 else "")
             + (f"; {human_size(p.resumed)} already here" if p.resumed else "") + ")")

    def update(self, p: Progress) -> None:
        from gptterm.tasks.progress import clock  # only a pull's progress line needs it: 'models ls' stays light

        now = time.monotonic()
        self.samples = [s for s in self.samples if now - s[0] <= 5.0] + [(now, p.done)]
        if p.phase == "checking":
            self.samples = [(now, p.done)]
            text = f"{self.name}: checking the part file · {human_size(p.done)} of {human_size(p.total)}"
        else:
            (t0, d0), speed = self.samples[0], 0.0
            if now > t0 and p.done > d0:
                speed = (p.done - d0) / (now - t0)
            left = f" · ~{clock((p.total - p.done) / speed)} left" if speed else ""
            text = (f"{self.name}: {human_size(p.done)} of {human_size(p.total)}"
                    + (f" · {human_size(speed)}/s" if speed else "") + left)
        self.status.show(text, fraction=p.fraction)

    def __exit__(self, *exc: Any) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)


# -- the local store -------------------------------------------------------------------


def _ls(opts: ModelsOptions) -> int:
    models = store.list_models()
    default = store.default_model(models)
    kinds = {m.name: _adapter_of(m) for m in models}
    if opts.json:
        _json([{**m.as_dict(), "default": default is not None and m.name == default.name, "missing": m.missing,
                "kind": "lora" if kinds[m.name] else "model",
                **({"base_architecture": kinds[m.name]} if kinds[m.name] else {})} for m in models])
        return 0
    if not models:
        note("no local models: 'gptterm models catalog' suggests some, 'gptterm models pull ID' downloads one")
        return 0
    rows = []
    for m in models:
        if kinds[m.name]:
            continue
        mark = "*" if default is not None and m.name == default.name else ""
        size = "missing" if m.missing else human_size(m.size)
        rows.append((mark, m.name, m.quant or "?", size, "fine-tuned" if m.finetune else m.source, m.path))
    if rows:
        table(rows, ("", "NAME", "QUANT", "SIZE", "SOURCE", "PATH"))
    tuned = [m for m in models if m.finetune is not None]
    if tuned:
        print()
        table([(m.name, m.finetune.get("base", "?"), m.finetune.get("data", "?"), m.finetune.get("epochs", "?"),
                _losses(m.finetune, "train"), _losses(m.finetune, "val")) for m in tuned if m.finetune is not None],
              ("FINE-TUNED", "FROM", "ON", "EPOCHS", "TRAINING LOSS", "VALIDATION LOSS"))
    lora = [(m.name, f"{kinds[m.name]} models", human_size(m.size), m.source, m.path) for m in models if kinds[m.name]]
    if lora:
        if rows:
            print()
        table(lora, ("LORA ADAPTER", "FOR", "SIZE", "SOURCE", "PATH"))
        note("apply an adapter to a model of its architecture: gptterm -m MODEL --lora ADAPTER[:SCALE]")
    partial = store.incomplete_downloads()
    if partial:
        total = sum(p.stat().st_size for p in partial)
        note(f"{plural(len(partial), 'interrupted download')} ({human_size(total)}) in {store.hub_cache_dir()}: "
             "pull the same model again to resume")
    return 0


def _losses(info: dict, which: str) -> str:
    first, last = info.get(f"first_{which}_loss"), info.get(f"{which}_loss")
    if not isinstance(last, (int, float)):
        return ""
    return f"{first:.2f} → {last:.2f}" if isinstance(first, (int, float)) else f"{last:.2f}"


def _rm(opts: ModelsOptions) -> int:
    removed = store.remove(opts.name)
    if removed.kept_file:
        print(f"removed {removed.model.name} from the list; its file was kept: {removed.model.path}")
    else:
        print(f"removed {removed.model.name}: freed {human_size(removed.freed)}")
    return 0


def _default(opts: ModelsOptions) -> int:
    model = store.set_default(opts.name)
    note(f"default model: {model.name} ({model.path}), saved in {paths.config_file()}")
    return 0


def _import(opts: ModelsOptions) -> int:
    model = store.import_file(Path(opts.path), opts.name or None)
    _print_details(model, _metadata(model))
    note(f"imported as {model.name}; chat with it: gptterm -m {model.name}")
    return 0


def _adapter_of(model: Any) -> str | None:
    """The base architecture of a LoRA adapter in the store; None for a model."""
    return None if model.missing else adapter_for(model.path)


def _adapter_details(model: Any) -> dict:
    """What ``models show`` says of an adapter: its header, and which local models it fits."""
    try:
        info = adapters.describe(read_metadata(model.path))
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read the GGUF metadata of {model.path}: {err}") from None
    others = [(m.name, m.path) for m in store.list_models() if not m.missing and m.name != model.name]
    return {"kind": "lora", **info, "fits": adapters.fits(model.path, others)}


def _metadata(model: Any) -> dict:
    try:
        metas = [read_metadata(f) for f in (model.files or (model.path,))]
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read the GGUF metadata of {model.path}: {err}") from None
    first = metas[0]
    params = sum(m.n_params or 0 for m in metas) or None
    return {"architecture": first.architecture, "model_name": first.name, "parameters": params,
            "context_length": first.context_length, "chat_template": first.chat_template is not None,
            "gguf_version": first.version}


def _show(opts: ModelsOptions) -> int:
    model = store.find(opts.name)
    if not model.missing and _adapter_of(model):
        details = _adapter_details(model)
        if opts.json:
            _json({**model.as_dict(), **details})
            return 0
        _print_adapter(model, details)
        return 0
    meta = {} if model.missing else _metadata(model)
    default = store.default_model()
    users = store.users_of(model)
    extra = {"default": default is not None and default.name == model.name, "in_use_by": users}
    if opts.json:
        _json({**model.as_dict(), **meta, **extra, "missing": model.missing})
        return 0
    _print_details(model, meta, extra)
    return 0


def _print_adapter(model: Any, d: dict) -> None:
    rank = d["rank"] if not isinstance(d["rank"], list) else ", ".join(map(str, d["rank"]))
    lines: list[tuple[str, Any]] = [
        ("name", model.name), ("kind", f"LoRA adapter ({d['adapter_type'] or '?'}) for {d['base_architecture']} models"),
        ("path", model.path), ("size", human_size(model.size)), ("rank", rank or "?"),
        ("alpha", d["alpha"] if d["alpha"] is not None else "?"), ("tensors", f"{d['tensors']} lora_a/lora_b pairs")]
    if d["base_model"]:
        lines.append(("base model", d["base_model"]))
    lines.append(("fits", ", ".join(d["fits"]) or "none of the local models (pull its base model)"))
    fields(lines)
    if d["fits"]:
        note(f"use it: gptterm -m {d['fits'][0]} --lora {model.name}")


def _print_details(model: Any, meta: dict, extra: dict | None = None) -> None:
    lines: list[tuple[str, Any]] = [("name", model.name)]
    if model.aliases:
        lines.append(("also", ", ".join(model.aliases)))
    source = model.source
    if model.repo:
        source += f": {model.repo} (commit {(model.revision or '?')[:12]})"
    lines.append(("source", source))
    lines.append(("path", model.path if not model.missing else f"{model.path} (missing)"))
    for f in model.files[1:]:
        lines.append(("", f))
    lines.append(("size", human_size(model.size)))
    lines.append(("quant", model.quant or "?"))
    if model.finetune is not None:
        lines.append(("fine-tuned", describe(model.finetune).removeprefix("fine-tuned ")))
    if model.sha256:
        lines += [("sha256", s) for s in model.sha256]
    if meta:
        lines += [("architecture", meta["architecture"] or "?"),
                  ("parameters", f"{meta['parameters']:,}" if meta["parameters"] else "?"),
                  ("context", meta["context_length"] or "?"),
                  ("chat template", "yes" if meta["chat_template"] else "no (ChatML fallback)")]
    if extra is not None:
        lines.append(("default", "yes" if extra["default"] else "no"))
        lines.append(("in use", ", ".join(f"pid {p}" for p in extra["in_use_by"]) or "no"))
    fields(lines)
