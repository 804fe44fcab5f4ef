"""Training data: JSONL chat or plain text, checked line by line, split for validation, cut into windows.

- **Chat**: one JSON object a line, ``{"messages": [{"role": "user", "content": "…"}, …]}`` (roles system,
  user, assistant), rendered later with the model's own chat template. A file ending in ``.jsonl`` is read
  as chat; so is any file whose first line is such an object.
- **Plain text**: anything else; its paragraphs (blank-line separated) are the units of the split.

Every token of a rendered conversation is trained on, the prompt's too: llama.cpp 0.3.36's training loop
(``llama_opt_epoch``) gives every position a one-hot label of the next token and has no mask, so the
answers cannot be singled out (see README, "Fine-tune").
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from gptterm.errors import InputError
from gptterm.tasks.inputs import read_text_file

ROLES = ("system", "user", "assistant")
KINDS = ("chat", "text")


@dataclass
class TrainingData:
    path: Path
    #: "chat" (examples are lists of messages) or "text" (examples are paragraphs)
    kind: str
    examples: list[Any]

    @property
    def name(self) -> str:
        return self.path.name

    def split(self, val_split: float, seed: int = 0) -> tuple[list[Any], list[Any]]:
        """(train, validation): ``val_split`` of the examples set aside, at least one when it is above 0.

        Chat examples are drawn at random (``seed``), in file order; text keeps its last paragraphs, so
        that validation is text the model has not seen a neighbouring piece of.
        """
        if not 0 <= val_split < 1:
            raise InputError(f"--val-split must be at least 0 and below 1, not {val_split}")
        n = len(self.examples)
        n_val = 0 if val_split == 0 else max(1, round(n * val_split))
        if n_val and n - n_val < 1:
            unit = "example" if self.kind == "chat" else "paragraph"
            raise InputError(f"{self.name} has {n} {unit}{'s' if n != 1 else ''}: too few to set some aside for "
                             "validation; add more or use --val-split 0")
        if self.kind == "text":
            return self.examples[: n - n_val], self.examples[n - n_val:]
        chosen = set(random.Random(seed).sample(range(n), n_val))
        return ([e for i, e in enumerate(self.examples) if i not in chosen],
                [e for i, e in enumerate(self.examples) if i in chosen])


def read_data(path: str | Path, *, encoding: str | None = None,
              notify: Callable[[str], None] | None = None) -> TrainingData:
    """The examples of ``path``; an InputError naming the line for the first bad one."""
    path = Path(path).expanduser()
    text = read_text_file(path, encoding=encoding, notify=notify).text
    if not text.strip():
        raise InputError(f"{path.name} is empty: nothing to train on")
    if _is_chat(path, text):
        return TrainingData(path, "chat", _chat_examples(path.name, text))
    paragraphs = [p.strip("\n") for p in re.split(r"\n[ \t]*\n", text) if p.strip()]
    if len(paragraphs) < 2:  # one block of text: its lines are the units
        paragraphs = [line for line in text.splitlines() if line.strip()]
    return TrainingData(path, "text", paragraphs)


def _is_chat(path: Path, text: str) -> bool:
    if path.suffix.lower() == ".jsonl":
        return True
    first = text.lstrip().split("\n", 1)[0].strip()
    if not first.startswith("{"):
        return False
    try:
        value = json.loads(first)
    except ValueError:
        return False
    return isinstance(value, dict) and "messages" in value


def _chat_examples(name: str, text: str) -> list[list[dict[str, str]]]:
    examples = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name}, line {number}"
        try:
            value = json.loads(line)
        except ValueError as err:
            raise InputError(f"{where}: not JSON ({getattr(err, 'msg', err)})") from None
        examples.append(_messages(value, where))
    if not examples:
        raise InputError(f"{name} holds no examples")
    return examples


def _messages(value: Any, where: str) -> list[dict[str, str]]:
    messages = value.get("messages") if isinstance(value, dict) else None
    if not isinstance(messages, list) or not messages:
        raise InputError(f'{where}: expected {{"messages": [{{"role": …, "content": …}}, …]}}')
    out = []
    for k, m in enumerate(messages, 1):
        if not isinstance(m, dict):
            raise InputError(f"{where}: message {k} is not an object with a role and a content")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise InputError(f"{where}: message {k} has role {role!r}; roles are {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise InputError(f"{where}: message {k} has no text content")
        out.append({"role": role, "content": content})
    return out


# -- windows -----------------------------------------------------------------------------


def windows(stream: Sequence[int], ctx: int) -> list[list[int]]:
    """``stream`` cut into windows of ``ctx + 1`` tokens (inputs and the next-token labels), ``ctx`` apart.

    The stream is read as a ring: the last window runs on into its beginning, so every token is trained on
    once an epoch however the length divides, and a stream shorter than a window fills one.
    """
    n = len(stream)
    if n < 2:
        raise InputError("the training data is a single token")
    count = max(1, math.ceil((n - 1) / ctx))
    return [[stream[(start + k) % n] for k in range(ctx + 1)] for start in range(0, count * ctx, ctx)]


def chunks(stream: Sequence[int], size: int) -> list[list[int]]:
    """``stream`` in consecutive pieces of at most ``size`` tokens (no wrapping: for scoring)."""
    return [list(stream[i:i + size]) for i in range(0, len(stream), size) if len(stream[i:i + size]) >= 2]
