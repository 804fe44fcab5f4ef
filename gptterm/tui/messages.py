"""Messages the app's own workers and the panes post; only their handlers touch widgets.

Messages that belong to one widget (a pane's job events, the sidebar's
choices) are declared in that widget's class, as Textual's own are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from gptterm.backend import Backend
    from gptterm.engine.base import Engine


@dataclass
class ModelLoaded(Message):
    engine: Engine
    seconds: float


@dataclass
class ModelFailed(Message):
    error: str


@dataclass
class SwitchBackend(Message):
    """Any pane asks the app to run another backend (a local model, a server, another remote model)."""

    backend: Backend


@dataclass
class OpenFinetune(Message):
    """The Models pane asks the app for the fine-tune screen, to fine-tune a local model (its name)."""

    base: str


@dataclass
class ModelAdded(Message):
    """A new local model exists (a fine-tune finished): the Models pane lists it."""

    name: str


@dataclass
class ApplyAdapter(Message):
    """The Models pane asks the app to add a LoRA adapter (a local model's name) to the loaded model."""

    name: str
