"""What every model-using command does first: settings, backend, model, history."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from gptterm.cli.args import effective_params
from gptterm.settings import Config, Params, ServerProfile, load_config, resolve_server, server_spec


def settings(ns: argparse.Namespace) -> tuple[Config, Params]:
    config = load_config()
    return config, effective_params(ns, config.params)


def server(ns: argparse.Namespace, config: Config, params: Params) -> ServerProfile | None:
    """The server to use (--server, environment, config file), or None for the local model."""
    profile = resolve_server(server_spec(getattr(ns, "server", None), config), config)
    if profile is not None and params.ctx != config.params.ctx:
        # --ctx (or /set ctx) given for this run: it bounds what is sent to the server.
        profile = dataclasses.replace(profile, ctx=params.ctx)
    return profile


def model_spec(ns: argparse.Namespace, config: Config, profile: ServerProfile | None = None) -> str | None:
    if profile is not None:
        return getattr(ns, "model", None) or profile.model
    return getattr(ns, "model", None) or config.model


def engine(ns: argparse.Namespace, config: Config, params: Params) -> Any:
    from gptterm.engine import load_engine

    profile = server(ns, config, params)
    return load_engine(model_spec(ns, config, profile), params, profile)


def store(ns: argparse.Namespace) -> Any:
    if getattr(ns, "no_log", False):
        return None
    from gptterm.history.store import HistoryStore

    return HistoryStore()


def stats_line(reply: Any) -> str:
    s = reply.stats
    parts = [f"{s.prompt_tokens} prompt tokens ({s.cached_tokens} cached)", f"{s.completion_tokens} generated"]
    if s.ttft_s is not None:
        parts.append(f"first token {s.ttft_s:.2f} s")
    if s.tokens_per_s:
        parts.append(f"{s.tokens_per_s:.1f} tok/s")
    parts.append(f"finish: {reply.finish_reason}")
    return ", ".join(parts)
