"""Reading text files for the long-text tasks, with one clear error per bad file.

Every file is decoded by ``gptterm.textio`` (BOMs, UTF-8, legacy encodings
detected, binary refused). The core never prints: how a file was read, when
that was a guess, goes to ``notify`` (the CLI writes it to stderr, the TUI
shows a notification).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from gptterm import textio
from gptterm.errors import InputError


def read_text_file(name: str | Path, *, encoding: str | None = None,
                   notify: Callable[[str], None] | None = None) -> textio.Decoded:
    """The text of file ``name`` and how it was decoded; ``encoding`` forces one (--encoding)."""
    path = Path(name).expanduser()
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{name} is a directory, not a text file") from None
    except OSError as err:
        raise InputError(f"cannot read {name}: {err.strerror}") from None
    decoded = textio.decode(data, str(name), encoding)
    if notify is not None and (line := decoded.note(str(name))) is not None:
        notify(line)
    return decoded


def read_text_files(names: list[str], *, encoding: str | None = None,
                    notify: Callable[[str], None] | None = None) -> textio.Decoded:
    """Several files as one text, separated by blank lines; its encoding is the first file's."""
    parts = [read_text_file(n, encoding=encoding, notify=notify) for n in names]
    text = "\n\n".join(p.text.rstrip("\n") for p in parts) + "\n"
    return dataclasses.replace(parts[0], text=text, replaced=sum(p.replaced for p in parts))
