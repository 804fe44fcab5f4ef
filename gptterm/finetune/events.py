"""What a fine-tuning run reports, as the child process writes it (one JSON object a line) and as
``FineTune.run`` yields it to a face."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Union

STAGES = {
    "prepare": "reading and tokenizing the data",
    "score-before": "scoring the validation part with the base model",
    "convert": "converting the base model to F32",
    "load": "loading the F32 model for training",
    "train": "training",
    "save": "saving the trained model",
    "quantize": "quantizing the trained model",
    "score-after": "scoring the validation part with the fine-tuned model",
}


@dataclass
class Stage:
    name: str

    @property
    def text(self) -> str:
        return STAGES.get(self.name, self.name)


@dataclass
class Data:
    kind: str
    train_examples: int
    val_examples: int
    train_tokens: int
    val_tokens: int
    steps_per_epoch: int
    epochs: int
    ctx: int

    @property
    def steps(self) -> int:
        return self.steps_per_epoch * self.epochs


@dataclass
class Step:
    """One optimizer step (a window of ``ctx`` tokens, forward and backward)."""

    epoch: int
    epochs: int
    step: int  # within the epoch, from 1
    steps: int  # per epoch
    done: int  # steps done in the whole run
    total: int
    loss: float
    tokens_per_s: float
    seconds_left: float


@dataclass
class Epoch:
    """The end of an epoch (epoch 0: before training): its mean training loss and the validation loss."""

    epoch: int
    done: int  # steps done so far
    train_loss: float | None
    val_loss: float | None


@dataclass
class Score:
    """Perplexity of the validation part with the base (``before``) or the fine-tuned model (``after``)."""

    which: str
    perplexity: float
    cross_entropy: float
    tokens: int


@dataclass
class Note:
    """A line worth telling the user (e.g. why the result was kept in F32)."""

    text: str


@dataclass
class Done:
    file: str  # the finished model, in the work folder (the parent puts it in place)
    f32: bool  # whether it is the F32 file (--keep-f32, an F32 base, or quantizing undid the training)
    seconds: float


@dataclass
class Stopped:
    done: int  # steps done when it stopped


@dataclass
class Failed:
    message: str


Event = Union[Stage, Data, Step, Epoch, Score, Note, Done, Stopped, Failed]
_KINDS: dict[str, type] = {cls.__name__.lower(): cls for cls in (Stage, Data, Step, Epoch, Score, Note, Done, Stopped,
                                                                Failed)}


def dumps(event: Event) -> str:
    return json.dumps({"event": type(event).__name__.lower(), **asdict(event)})


def loads(line: str) -> Event:
    """The event of one line; ValueError for a line that is not one."""
    data: Any = json.loads(line)
    cls = _KINDS.get(data.pop("event", None)) if isinstance(data, dict) else None
    if cls is None:
        raise ValueError(f"not an event: {line[:80]!r}")
    names = {f.name for f in fields(cls)}
    event: Event = cls(**{k: v for k, v in data.items() if k in names})
    return event
