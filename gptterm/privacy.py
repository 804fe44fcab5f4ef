"""gptterm's own files are its owner's only: an older install tightened once on start, and doctor's report.

New files and directories are made private where they are created
(``paths.private_dir``, ``paths.private_file``, ``gptterm.atomic``). An
install from before that has its directories 0755 and files 0644; on start
``tighten_on_start`` looks at the mode of each of gptterm's own directories
(config, data, cache: one ``lstat`` each, nothing more while they are
private, since nothing inside a 0700 directory can be reached by another
user) and, for one that others can enter, takes the group and other bits off
everything in it, once, and says so in one line.

The rule for where it does that: only at the default locations (platformdirs,
which follow ``XDG_*_HOME``). A directory the user chose — named by
``GPTTERM_CONFIG_DIR``/``GPTTERM_DATA_DIR``/``GPTTERM_CACHE_DIR``, or a
default location that is a symbolic link to elsewhere — may be shared on
purpose: gptterm never changes the mode of what is there already (its new
files there are still 0600), and ``doctor`` warns when others can read it.
A Hugging Face cache inside gptterm's directories is left as
huggingface_hub makes it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from gptterm import paths

OPEN_BITS = 0o077  # group and other

_notices: list[str] = []


def _is_open(mode: int) -> bool:
    return bool(mode & OPEN_BITS)


def _entries(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """``root`` and every file and folder in it, with its ``lstat``: no symbolic link (its target is not
    necessarily ours), nothing in a Hugging Face cache the user put inside (huggingface_hub's to manage)."""
    # only walking the files needs the store (this module is on the app's start path)
    from gptterm.models.store import hub_cache_dir

    hub = os.path.realpath(hub_cache_dir())
    for top, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if os.path.realpath(os.path.join(top, d)) != hub]
        for path in [top, *(os.path.join(top, name) for name in names)]:
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISLNK(st.st_mode):
                yield path, st


def _tighten_tree(root: Path) -> tuple[int, int, list[str]]:
    """Take the group and other bits off ``root`` and everything in it: (files, folders) changed, failures."""
    files = dirs = 0
    failed: list[str] = []
    for path, st in _entries(root):
        if not _is_open(st.st_mode):
            continue
        try:
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~OPEN_BITS)
        except OSError as err:
            failed.append(f"{path} ({err.strerror or err})")
            continue
        if stat.S_ISDIR(st.st_mode):
            dirs += 1
        else:
            files += 1
    return files, dirs, failed


def tighten_on_start() -> str | None:
    """Make gptterm's own directories at their default locations private if others can enter them.

    Costs one ``lstat`` per directory when they are private already (every
    start after the first). Returns the one line to show, which is also kept
    for ``take_notices`` (the app shows it as a notification)."""
    changed: list[str] = []
    files = dirs = 0
    failed: list[str] = []
    for kind, root in paths.own_dirs().items():
        if paths.chosen(kind):
            continue
        try:
            st = os.lstat(root)
        except OSError:
            continue  # not made yet: it will be made private
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or not _is_open(st.st_mode):
            continue
        f, d, bad = _tighten_tree(root)
        files, dirs, failed = files + f, dirs + d, failed + bad
        if f or d:
            changed.append(str(root))
    if not changed and not failed:
        return None
    parts = []
    if changed:
        parts.append(f"made its files private (readable by you only): {_count(files, 'file')} and "
                     f"{_count(dirs, 'folder')} in {', '.join(changed)} were open to other users")
    if failed:
        parts.append(f"could not make private: {', '.join(failed[:3])}"
                     + (f" and {len(failed) - 3} more" if len(failed) > 3 else ""))
    line = "; ".join(parts)
    _notices.append(line)
    return line


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def take_notices() -> list[str]:
    """The lines ``tighten_on_start`` made that no face has shown yet (each is shown once)."""
    taken = list(_notices)
    _notices.clear()
    return taken


# -- doctor ------------------------------------------------------------------------------


@dataclass
class DirReport:
    kind: str  # config, data, cache
    path: Path
    mode: int | None  # None: not created yet
    chosen_by: str | None  # the variable (or "a symbolic link") that put it there
    open_inside: int = 0  # files and folders inside with group or other bits
    others_can_enter: bool = False

    def as_dict(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "mode": None if self.mode is None else f"{self.mode:04o}",
                "chosen_by": self.chosen_by, "open_inside": self.open_inside, "private": not self.others_can_enter}

    def warning(self) -> str | None:
        if not self.others_can_enter:
            return None
        inside = f", {_count(self.open_inside, 'file or folder', 'files or folders')} inside open to them too" \
            if self.open_inside else ""
        why = (f" ({self.chosen_by}: your choice, left as it is)" if self.chosen_by
               else " (gptterm could not make it private)")
        return (f"other users can read gptterm's {self.kind} directory {self.path} (mode {self.mode:04o}){inside}"
                f"{why}; to make it private: chmod -R go-rwx {self.path}")


def report() -> list[DirReport]:
    """The permissions of each of gptterm's own directories and how much inside others could read."""
    out = []
    for kind, root in paths.own_dirs().items():
        chosen_by = paths.chosen(kind) or ("a symbolic link" if root.is_symlink() else None)
        try:
            mode = stat.S_IMODE(os.stat(root).st_mode)
        except OSError:
            out.append(DirReport(kind, root, None, chosen_by))
            continue
        inside = sum(_is_open(st.st_mode) for path, st in _entries(root) if path != str(root))
        out.append(DirReport(kind, root, mode, chosen_by, inside, _is_open(mode)))
    return out
