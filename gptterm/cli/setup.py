"""What every model-using command does first: settings, backend, model, history."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from gptterm.backend import Backend, choose_backend
from gptterm.cli.args import effective_params
from gptterm.cli.io import ProbabilityWriter, StdoutWriter, note
from gptterm.settings import Config, Params, load_config

if TYPE_CHECKING:
    from gptterm.engine.base import Engine, Reply
    from gptterm.history.store import HistoryStore


def settings(ns: argparse.Namespace) -> tuple[Config, Params]:
    config = load_config()
    params = effective_params(ns, config.params)
    if getattr(ns, "show_probs", False) and not params.logprobs:
        params = params.replace(logprobs=1)  # the colours need each token's probability
    return config, params


def input_encoding(ns: argparse.Namespace) -> str | None:
    """The encoding text input is read in: --encoding (checked when parsed), else the config file's
    'encoding', else None (detected by gptterm.textio)."""
    return getattr(ns, "encoding", None) or load_config().encoding


def reply_writer(ns: argparse.Namespace, reply: Reply | None = None) -> StdoutWriter:
    """Where a streamed reply goes: stdout, coloured by probability with --show-probs on a terminal."""
    if getattr(ns, "show_probs", False) and not getattr(ns, "json", False):
        if sys.stdout.isatty() and "NO_COLOR" not in os.environ:
            from gptterm import probability

            note(probability.LEGEND)
            return ProbabilityWriter(reply)
        note("--show-probs colours only a terminal's output (and not with NO_COLOR set)")
    return StdoutWriter()


def logprobs_json(reply: Reply) -> dict[str, Any]:
    """OpenAI's shape: {"logprobs": {"content": [{token, logprob, bytes, top_logprobs}, …]}} when asked for."""
    if reply.logprobs is None:
        return {}
    return {"logprobs": {"content": [t.as_openai() for t in reply.logprobs]}}


def backend(ns: argparse.Namespace, config: Config) -> Backend:
    """The backend -m and --server (with the environment and the config file) choose."""
    return choose_backend(config, model=getattr(ns, "model", None), server=getattr(ns, "server", None))


def engine(ns: argparse.Namespace, config: Config, params: Params, *, flash_attn: bool | None = None) -> Engine:
    return backend(ns, config).load(params, config, flash_attn=flash_attn)


def store(ns: argparse.Namespace) -> HistoryStore | None:
    if getattr(ns, "no_log", False):
        return None
    from gptterm.history.store import HistoryStore

    return HistoryStore()


def stats_line(reply: Reply) -> str:
    s = reply.stats
    parts = [f"{s.prompt_tokens} prompt tokens ({s.cached_tokens} cached)", f"{s.completion_tokens} generated"]
    if s.ttft_s is not None:
        parts.append(f"first token {s.ttft_s:.2f} s")
    if s.tokens_per_s:
        parts.append(f"{s.tokens_per_s:.1f} tok/s")
    parts.append(f"finish: {reply.finish_reason}")
    return ", ".join(parts)


def advise(ns: argparse.Namespace, config: Any, engine: Any, task: str, languages: tuple[str, ...],
           seen: set[str] | None = None) -> None:
    """Say once when the loaded model does not cover ``task`` or ``languages`` (and which model does);
    --quiet or 'advice = false' in the config file silences it. ``seen``: the lines said already (the REPL
    asks at every message)."""
    if getattr(ns, "quiet", False) or not getattr(config, "advice", True):
        return
    from gptterm.models.advice import check, profile_for

    advice = check(profile_for(engine.info), task, languages)
    if advice is not None and (seen is None or advice.text not in seen):
        if seen is not None:
            seen.add(advice.text)
        note(advice.line())


def text_languages(text: str) -> tuple[str, ...]:
    """The language a prompt's script names, for advice (none for Latin script: see advice.script_language)."""
    from gptterm.models.advice import script_language

    lang = script_language(text)
    return (lang,) if lang else ()
