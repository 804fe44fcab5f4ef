"""Reading text files for the long-text tasks, with one clear error per bad file."""

from __future__ import annotations

from pathlib import Path

from gptterm.errors import InputError


def read_text_file(name: str | Path) -> str:
    path = Path(name).expanduser()
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{name} is a directory, not a text file") from None
    except OSError as err:
        raise InputError(f"cannot read {name}: {err.strerror}") from None
    if b"\x00" in data:
        raise InputError(f"{name} looks like a binary file, not text")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        raise InputError(f"{name} is not UTF-8 text (bad byte at offset {err.start})") from None


def read_text_files(names: list[str]) -> str:
    """Several files as one text, separated by blank lines."""
    return "\n\n".join(read_text_file(n).rstrip("\n") for n in names) + "\n"
