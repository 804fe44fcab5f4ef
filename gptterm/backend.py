"""Which engine a run uses — the local model or a model on a server — chosen once for every face.

The CLI and the TUI both call ``choose_backend`` with the config and their
flags, and ``Backend.load`` to get the engine; the TUI switches with
``Backend.local``, ``with_local_model`` and ``remote`` (a new value each time: the app owns
the one in use).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from gptterm.errors import UsageError
from gptterm.servers import ServerProfile, resolve_server, server_spec

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.settings import Config, Params

#: What the status line names before anything is loaded and no model is configured.
BUNDLED_NAME = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class Backend:
    #: the local model: a .gguf path or a local model's name (None: the bundled model).
    #: Kept while a server is in use, so that switching back finds it.
    local_model: str | None = None
    #: the OpenAI-compatible server in use; None runs ``local_model`` in this process
    server: ServerProfile | None = None
    #: the model asked of the server (None: the profile's, else the first the server lists)
    remote_model: str | None = None

    @property
    def is_remote(self) -> bool:
        return self.server is not None

    @property
    def model(self) -> str | None:
        """The model this backend loads: a remote model id, or a local path or name."""
        if self.server is not None:
            return self.remote_model or self.server.model
        return self.local_model

    def label(self) -> str | None:
        """``server NAME`` for a server, None for the local model."""
        return f"server {self.server.name}" if self.server is not None else None

    def display_name(self) -> str:
        """A name for the model before it is loaded."""
        if self.server is not None:
            return self.model or "remote model"
        return Path(self.local_model).stem if self.local_model else BUNDLED_NAME

    def local(self) -> Backend:
        """The local model kept, whatever server was in use."""
        return Backend(local_model=self.local_model)

    def with_local_model(self, model: str | None) -> Backend:
        """Local model ``model`` (a path or a name; None: the bundled one), whatever server was in use."""
        return Backend(local_model=model)

    def remote(self, server: ServerProfile, model: str | None = None) -> Backend:
        return dataclasses.replace(self, server=server, remote_model=model)

    def load(self, params: Params, config: Config, *, flash_attn: bool | None = None) -> Engine:
        """The engine, loaded (a local model) or connected (a server).

        ``flash_attn``: a local engine's flash attention (None: on with a GPU, off on the CPU)."""
        server = self.server
        if server is not None:
            if params.lora:
                raise UsageError(f"LoRA adapters apply to a local model, not to one on {self.label()} (which loads "
                                 "its own): drop --lora (or 'gptterm config unset lora'), or use --server local")
            if params.ctx != config.params.ctx:
                # ctx set for this run (--ctx, /set, the Settings pane) bounds what is sent to the server
                server = dataclasses.replace(server, ctx=params.ctx)
            from gptterm.engine.remote import RemoteEngine  # heavy: httpx2 (only a server backend pays for it)

            return RemoteEngine(server, model=self.model, ctx=params.ctx)
        # after the first frame: the app loads the model in a worker (ctypes, the store)
        from gptterm.engine.local import LocalEngine
        from gptterm.models import store
        from gptterm.models.resolve import resolve_model

        engine = LocalEngine(resolve_model(self.local_model), flash_attn=flash_attn, **params.load())
        store.mark_in_use(engine.info.path)  # so 'gptterm models rm' elsewhere refuses this model
        return engine


def choose_backend(config: Config, *, model: str | None = None, server: str | None = None,
                   environ: Mapping[str, str] | None = None) -> Backend:
    """The backend for ``-m MODEL`` and ``--server SPEC`` (each None when not given).

    The server is, first found: ``server``, $GPTTERM_SERVER, $OPENAI_BASE_URL,
    the config file's ``server``; none (or 'local') runs the local model. With
    a server, ``model`` names a model the server lists; without one, a local
    model (default: the config file's ``model``, else the bundled one).
    """
    profile = resolve_server(server_spec(server, config, environ), config)
    if profile is not None:
        return Backend(local_model=config.model, server=profile, remote_model=model)
    return Backend(local_model=model or config.model)
