"""What every model-using command does first: settings, model, history."""

from __future__ import annotations

import argparse
from typing import Any

from gptterm.cli.args import effective_params
from gptterm.settings import Config, Params, load_config


def settings(ns: argparse.Namespace) -> tuple[Config, Params]:
    config = load_config()
    return config, effective_params(ns, config.params)


def model_spec(ns: argparse.Namespace, config: Config) -> str | None:
    return getattr(ns, "model", None) or config.model


def engine(ns: argparse.Namespace, config: Config, params: Params) -> Any:
    from gptterm.engine import load_engine

    return load_engine(model_spec(ns, config), params)


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
