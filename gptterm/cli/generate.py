"""``gptterm generate``: raw continuation of a text, no chat template."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable

from gptterm import textio
from gptterm.cli import setup, structured
from gptterm.cli.options import GenerateOptions
from gptterm.cli.io import ProbabilityWriter, keeping_partial, note, read_stdin, run_reply
from gptterm.errors import InputError, UsageError
from gptterm.tasks.context import overflow_error, reply_reserve

if TYPE_CHECKING:
    from gptterm.types import Reply
    from gptterm.history.store import HistoryStore
    from gptterm.settings import Params

SEPARATOR = "\n-----\n"


def _saver(store: HistoryStore, conversation_id: int, model: str, params: Params) -> Callable[[Reply], None]:
    """Saves a finished sample to the history with the parameters (and seed) it was generated with."""
    def save(reply: Reply) -> None:
        store.add_message(conversation_id, "assistant", reply.text, model=model,
                          params={**params.sampling(), "seed": reply.seed},
                          stats=reply.summary())
    return save


def run_generate(opts: GenerateOptions) -> int:
    if opts.samples < 1:
        raise UsageError("-n/--samples must be at least 1")
    session = opts.session()
    if opts.prompt:
        prompt: str | None = textio.clean(" ".join(opts.prompt), "the prompt", note)
    else:
        prompt = read_stdin(session.config.encoding)
    if prompt is None or not prompt.strip():
        raise InputError("nothing to continue: give a PROMPT or pipe text on stdin")
    schema = structured.schema(opts)  # one line before the model loads when it cannot be used
    engine = session.load()
    params = session.params
    structured.warn_unsupported(engine, schema)
    holds = structured.held(opts, schema)
    n_prompt = len(engine.completion_tokens(prompt))
    reserve = reply_reserve(params.max_tokens, engine.n_ctx)
    if n_prompt + reserve > engine.n_ctx:
        raise overflow_error(n_prompt, engine.n_ctx, reserve, engine.info.n_ctx_train)
    store = session.store
    conversation_id = None
    if store is not None:
        conversation_id = store.new_conversation(kind="generate", model=engine.info.name)
        store.add_message(conversation_id, "user", prompt)
    base_seed = params.seed
    samples = []
    writer = setup.reply_writer(opts)
    interrupted = False
    for i in range(opts.samples):
        # Consecutive seeds: `--seed S -n 3` repeats all three samples.
        sample_params = params.replace(seed=None if base_seed is None else (base_seed + i) % (2**32 - 1))
        reply = engine.complete(prompt, sample_params, **({"schema": schema} if schema is not None else {}))
        if store is not None and conversation_id is not None:
            reply.on_done(_saver(store, conversation_id, engine.info.name, sample_params))
        if not opts.json:
            if i:
                writer(SEPARATOR)
            if not opts.no_echo and schema is None:  # with a schema, stdout is the JSON alone
                writer(prompt)
        if isinstance(writer, ProbabilityWriter):
            writer.follow(reply)
        with keeping_partial(reply, writer, logged=store is not None):
            interrupted = run_reply(reply, engine.cancel, (lambda _t: None) if opts.json or holds else writer)
        samples.append(reply)
        if not interrupted:
            checked = structured.check(reply, schema, sample_params, logged=store is not None)
            if holds:
                structured.write_held(checked)
        if opts.verbose:
            note(f"sample {i + 1}: {setup.stats_line(reply)}")
        if interrupted or writer.broken:
            break
    if opts.json:
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
