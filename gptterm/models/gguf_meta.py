"""Read a GGUF file's metadata header without loading the model.

The ``gguf`` package's ``GGUFReader`` parses every tokenizer string into
numpy objects (2.6 s for the bundled 135M model); this reader walks the
header with ``struct`` and skips arrays, which takes milliseconds, so
``doctor``, ``models ls`` and the context cap can afford it.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gptterm import atomic, paths
from gptterm.errors import ModelError

# GGUF value types -> struct format of a scalar (None: variable size)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


@dataclass
class GGUFMetadata:
    path: Path
    version: int
    values: dict[str, Any] = field(default_factory=dict)
    #: lengths of array-valued keys (their contents are skipped)
    array_lengths: dict[str, int] = field(default_factory=dict)
    tensor_count: int = 0
    n_params: int | None = None
    #: each tensor's dimensions, innermost first (GGUF's order: a weight of n_in inputs and n_out outputs is
    #: [n_in, n_out]); what tells whether a LoRA adapter fits the model
    tensors: dict[str, list[int]] = field(default_factory=dict)

    @property
    def architecture(self) -> str | None:
        return self.values.get("general.architecture")

    @property
    def name(self) -> str | None:
        return self.values.get("general.name")

    @property
    def context_length(self) -> int | None:
        arch = self.architecture
        value = self.values.get(f"{arch}.context_length") if arch else None
        return int(value) if isinstance(value, int) and value > 0 else None

    @property
    def chat_template(self) -> str | None:
        tmpl = self.values.get("tokenizer.chat_template")
        return tmpl if isinstance(tmpl, str) and tmpl.strip() else None

    @property
    def is_adapter(self) -> bool:
        """A LoRA (or other) adapter, not a model: ``general.type = adapter``."""
        return self.values.get("general.type") == "adapter"

    @property
    def vocab_size(self) -> int | None:
        return self.array_lengths.get("tokenizer.ggml.tokens")


_U64 = struct.Struct("<Q")


class _Cursor:
    def __init__(self, buf: Any):
        self.buf = buf
        self.pos = 0

    def take(self, fmt: str) -> Any:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.buf):
            raise ValueError("the file is truncated inside its metadata header")
        (value,) = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.take("Q")
        if self.pos + n > len(self.buf):
            raise ValueError("the file is truncated inside its metadata header")
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", "replace")

    def skip_strings(self, count: int) -> None:
        """Skip ``count`` length-prefixed strings (a vocabulary: ~100,000 on a small model)."""
        # One tight loop with locals: the per-string method calls cost 3x as much.
        unpack, buf, pos, end = _U64.unpack_from, self.buf, self.pos, len(self.buf)
        for _ in range(count):
            if pos + 8 > end:
                raise ValueError("the file is truncated inside its metadata header")
            pos += 8 + unpack(buf, pos)[0]
        if pos > end:
            raise ValueError("the file is truncated inside its metadata header")
        self.pos = pos

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        raise ValueError(f"unknown metadata value type {vtype}")


def read_metadata(path: Path | str) -> GGUFMetadata:
    """Parse the header of ``path``; ValueError with a reason if it is not a sound GGUF.

    A file's header is remembered in the cache dir, keyed by its path, size
    and modification time: walking a vocabulary costs 12 ms on the bundled
    model (more on a 150,000-token one), a JSON read well under 1.
    """
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        st = None
    remembered = _remembered(path, st) if st is not None else None
    if remembered is not None:
        return remembered
    meta = _read(path)
    if st is not None:
        _remember(meta, st)
    return meta


def _record(path: Path) -> Path:
    key = hashlib.sha1(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return paths.cache_dir() / "gguf-meta" / f"{key}.json"


def _remembered(path: Path, st: os.stat_result) -> GGUFMetadata | None:
    try:
        data = json.loads(_record(path).read_text("utf-8"))
        if data["size"] != st.st_size or data["mtime_ns"] != st.st_mtime_ns:
            return None
        return GGUFMetadata(path=path, version=data["version"], values=data["values"],
                            array_lengths=data["array_lengths"], tensor_count=data["tensor_count"],
                            n_params=data["n_params"], tensors=data["tensors"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remember(meta: GGUFMetadata, st: os.stat_result) -> None:
    try:
        record = _record(meta.path)
        text = json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "version": meta.version,
                           "values": meta.values, "array_lengths": meta.array_lengths,
                           "tensor_count": meta.tensor_count, "n_params": meta.n_params,
                           "tensors": meta.tensors})
        paths.private_dir(record.parent)
        atomic.write_text(record, text, durable=False)
    except (OSError, ValueError, TypeError):
        pass  # only a shortcut


def _read(path: Path) -> GGUFMetadata:
    with open(path, "rb") as fh:
        try:
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            raise ValueError("the file is empty") from None
    try:
        return _parse(path, buf)
    finally:
        buf.close()


def _parse(path: Path, buf: Any) -> GGUFMetadata:
    cur = _Cursor(buf)
    if bytes(buf[:4]) != b"GGUF":
        raise ValueError("not a GGUF file (bad magic)")
    cur.pos = 4
    version = cur.take("I")
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}")
    n_tensors = cur.take("Q")
    n_kv = cur.take("Q")
    if n_kv > 1_000_000 or n_tensors > 10_000_000:
        raise ValueError("the metadata header is corrupt")
    meta = GGUFMetadata(path=path, version=version, tensor_count=n_tensors)
    for _ in range(n_kv):
        key = cur.string()
        vtype = cur.take("I")
        if vtype == _ARRAY:
            itype = cur.take("I")
            count = cur.take("Q")
            meta.array_lengths[key] = count
            if itype == _STRING:
                cur.skip_strings(count)
            elif itype in _SCALARS:
                cur.pos += count * struct.calcsize("<" + _SCALARS[itype])
                if cur.pos > len(buf):
                    raise ValueError("the file is truncated inside its metadata header")
            else:
                raise ValueError(f"unknown metadata array type {itype}")
        else:
            meta.values[key] = cur.value(vtype)
    total = 0
    for _ in range(n_tensors):
        name = cur.string()
        n_dims = cur.take("I")
        if n_dims > 8:
            raise ValueError("the tensor table is corrupt")
        dims = [cur.take("Q") for _ in range(n_dims)]
        count = 1
        for d in dims:
            count *= d
        cur.take("I")  # type
        cur.take("Q")  # offset
        total += count
        meta.tensors[name] = dims
    meta.n_params = total
    return meta


GGUF_MAGIC = b"GGUF"


def check_gguf_file(path: Path) -> None:
    """Fail with one clear line unless ``path`` is a readable file that starts like a GGUF."""
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelError(f"model path is a directory, not a .gguf file: {path}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as err:
        raise ModelError(f"cannot read model file {path}: {err.strerror}") from None
    if len(head) < 4:
        raise ModelError(f"model file is empty or truncated: {path}")
    if head != GGUF_MAGIC:
        raise ModelError(f"not a GGUF model file (it starts with {head!r}, not b'GGUF'): {path}")
