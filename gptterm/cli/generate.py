"""``gptterm generate``: raw continuation of a text, no chat template."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Callable

from gptterm import textio
from gptterm.cli import setup, structured
from gptterm.cli.io import ProbabilityWriter, keeping_partial, note, read_stdin, run_reply
from gptterm.errors import InputError, UsageError
from gptterm.tasks.context import overflow_error, reply_reserve

if TYPE_CHECKING:
    from gptterm.engine.base import Reply
    from gptterm.history.store import HistoryStore
    from gptterm.settings import Params

SEPARATOR = "\n-----\n"


def _saver(store: HistoryStore, conversation_id: int, model: str, params: Params) -> Callable[[Reply], None]:
    """Saves a finished sample to the history with the parameters (and seed) it was generated with."""
    def save(reply: Reply) -> None:
        store.add_message(conversation_id, "assistant", reply.text, model=model,
                          params={**params.sampling(), "seed": reply.seed},
                          stats={**reply.stats.as_dict(), "finish_reason": reply.finish_reason})
    return save


def run_generate(ns: argparse.Namespace) -> int:
    if ns.samples < 1:
        raise UsageError("-n/--samples must be at least 1")
    if ns.prompt:
        prompt: str | None = textio.clean(" ".join(ns.prompt), "the prompt", note)
    else:
        prompt = read_stdin(setup.input_encoding(ns))
    if prompt is None or not prompt.strip():
        raise InputError("nothing to continue: give a PROMPT or pipe text on stdin")
    schema = structured.schema(ns)  # one line before the model loads when it cannot be used
    config, params = setup.settings(ns)
    engine = setup.engine(ns, config, params)
    structured.warn_unsupported(engine, schema)
    holds = structured.held(ns, schema)
    n_prompt = len(engine.completion_tokens(prompt))
    reserve = reply_reserve(params.max_tokens, engine.n_ctx)
    if n_prompt + reserve > engine.n_ctx:
        raise overflow_error(n_prompt, engine.n_ctx, reserve, engine.info.n_ctx_train)
    store = setup.store(ns)
    conversation_id = None
    if store is not None:
        conversation_id = store.new_conversation(kind="generate", model=engine.info.name)
        store.add_message(conversation_id, "user", prompt)
    base_seed = params.seed
    samples = []
    writer = setup.reply_writer(ns)
    interrupted = False
    for i in range(ns.samples):
        # Consecutive seeds: `--seed S -n 3` repeats all three samples.
        sample_params = params.replace(seed=None if base_seed is None else (base_seed + i) % (2**32 - 1))
        reply = engine.complete(prompt, sample_params, **({"schema": schema} if schema is not None else {}))
        if store is not None and conversation_id is not None:
            reply.on_done(_saver(store, conversation_id, engine.info.name, sample_params))
        if not ns.json:
            if i:
                writer(SEPARATOR)
            if not ns.no_echo and schema is None:  # with a schema, stdout is the JSON alone
                writer(prompt)
        if isinstance(writer, ProbabilityWriter):
            writer.follow(reply)
        with keeping_partial(reply, writer, logged=store is not None):
            interrupted = run_reply(reply, engine.cancel, (lambda _t: None) if ns.json or holds else writer)
        samples.append(reply)
        if not interrupted:
            checked = structured.check(reply, schema, sample_params, logged=store is not None)
            if holds:
                structured.write_held(checked)
        if ns.verbose:
            note(f"sample {i + 1}: {setup.stats_line(reply)}")
        if interrupted or writer.broken:
            break
    if ns.json:
        print(json.dumps({
            "prompt": prompt,
            "model": engine.info.name,
            "samples": [{"text": r.text, "finish_reason": r.finish_reason, "seed": r.seed, **r.stats.as_dict(),
                         **setup.logprobs_json(r)} for r in samples],
            "params": params.sampling(),
            "conversation_id": conversation_id,
        }, ensure_ascii=False))
    else:
        writer.end_line()
    if interrupted:
        note("stopped; the partial text is kept in history" if store else "stopped")
        return 130
    return 0
