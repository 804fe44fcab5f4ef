"""What the commands that stream a reply share: where the text goes, the statistics line, advice."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from gptterm.cli.io import ProbabilityWriter, StdoutWriter, note

if TYPE_CHECKING:
    from gptterm.cli.options import ReplyOptions
    from gptterm.session import Session
    from gptterm.types import Reply


def reply_writer(opts: ReplyOptions, reply: Reply | None = None) -> StdoutWriter:
    """Where a streamed reply goes: stdout, coloured by probability with --show-probs on a terminal."""
    if opts.show_probs and not opts.json:
        if sys.stdout.isatty() and "NO_COLOR" not in os.environ:
            from gptterm import probability  # only --show-probs needs it (this module is on the app's start path)

            note(probability.LEGEND)
            return ProbabilityWriter(reply)
        note("--show-probs colours only a terminal's output (and not with NO_COLOR set)")
    return StdoutWriter()


def logprobs_json(reply: Reply) -> dict[str, Any]:
    """OpenAI's shape: {"logprobs": {"content": [{token, logprob, bytes, top_logprobs}, …]}} when asked for."""
    if reply.logprobs is None:
        return {}
    return {"logprobs": {"content": [t.as_openai() for t in reply.logprobs]}}


def stats_line(reply: Reply) -> str:
    s = reply.stats
    parts = [f"{s.prompt_tokens} prompt tokens ({s.cached_tokens} cached)", f"{s.completion_tokens} generated"]
    if s.ttft_s is not None:
        parts.append(f"first token {s.ttft_s:.2f} s")
    if s.tokens_per_s:
        parts.append(f"{s.tokens_per_s:.1f} tok/s")
    parts.append(f"finish: {reply.finish_reason}")
    return ", ".join(parts)


def advise(session: Session, task: str, languages: tuple[str, ...] = ()) -> None:
    """Say once when the loaded model does not cover ``task`` or ``languages`` (and which model does)."""
    found = session.advice(task, languages)
    if found is not None:
        note(found.line())


def text_languages(text: str) -> tuple[str, ...]:
    """The language a prompt's script names, for advice (none for Latin script: see advice.script_language)."""
    # the catalog and the machine's probe (subprocess): only advice needs them (this module is on the app's start path)
    from gptterm.models.advice import script_language

    lang = script_language(text)
    return (lang,) if lang else ()
