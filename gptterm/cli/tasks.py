"""``gptterm summarize`` and ``gptterm translate``: long-text tasks on files or stdin."""

from __future__ import annotations

import json
from typing import Any, Callable, TYPE_CHECKING

from gptterm import textio
from gptterm.assets import language_code, language_name
from gptterm.cli import setup
from gptterm.cli.options import SummarizeOptions, TaskOptions, TranslateOptions
from gptterm.cli.io import EncodedWriter, Status, StdoutWriter, note, read_stdin_decoded, run_stream
from gptterm.errors import InputError, UsageError
from gptterm.tasks.inputs import read_text_files
from gptterm.tasks.job import TASK_DEFAULTS, Job, TaskEvent
from gptterm.tasks.progress import PartProgress
from gptterm.tasks.summarize import Summarizer, SummaryOptions
from gptterm.tasks.translate import Translator, check_target, detect_language, load_glossary, source_language
from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.settings import Params

def read_inputs(files: list[str], encoding: str | None) -> textio.Decoded:
    """The named files joined by blank lines, or piped stdin, and how they were decoded (a guess is
    noted on stderr); one clear error for each bad input."""
    if files:
        return read_text_files(files, encoding=encoding, notify=note)
    decoded = read_stdin_decoded(encoding)
    if decoded is None:
        raise InputError("give one or more FILEs or pipe text on stdin")
    return decoded


def output_writer(opts: TaskOptions, source: textio.Decoded) -> StdoutWriter:
    """UTF-8 on stdout, or --output-encoding's: 'same' is the input's (its byte-order mark too)."""
    wanted = opts.output_encoding
    if not wanted:
        return StdoutWriter()
    if opts.json:
        raise UsageError("--output-encoding applies to the text written, not to --json (JSON is always UTF-8)")
    if wanted == "same":
        return EncodedWriter(textio.Encoder(source.encoding, bom=source.bom))
    return EncodedWriter(textio.Encoder(wanted))


def task_params(opts: TaskOptions, params: Params) -> Params:
    """Tasks decode greedily unless the flags say otherwise."""
    return params.replace(**{k: v for k, v in TASK_DEFAULTS.items() if k not in opts.params})


def run_job(opts: TaskOptions, job: Job, text: str, verb: str, extra: Callable[[], dict[str, Any]],
            writer: StdoutWriter) -> int:
    progress = PartProgress(verb)
    with Status() as status:

        def handle(event: TaskEvent) -> None:
            if event.kind == "text":
                if not opts.json:
                    status.output(writer, event.text)
                return
            line = progress.update(event)
            if progress.total > 1:
                status.show(progress.text, fraction=lambda: progress.fraction)
                if line is not None:
                    status.log(line)

        interrupted = run_stream(job.run(text), job.cancel, handle)
    if opts.json:
        print(json.dumps({"text": job.text, "model": job.engine.info.name, **extra(), "chunks": job.chunks,
                          "stats": job.stats()}, ensure_ascii=False))
    else:
        writer.end_line()
        writer.finish()
    stats = job.stats()
    if opts.verbose:
        note(f"{plural(stats['model_calls'], 'model call')} for {plural(stats['parts'], 'part')}, "
             f"{stats['prompt_tokens']} prompt and "
             f"{stats['completion_tokens']} generated tokens, {stats['seconds']:.1f} s")
        for c in job.chunks:
            if c.get("trimmed"):
                where = "the summary" if c.get("final") else f"part {c['index'] + 1}"
                note(f"{where} reached its token cap ({c.get('max_tokens') or c.get('completion_tokens')}) and was "
                     "cut at its last complete sentence")
    if job.incomplete:
        numbers = ", ".join(map(str, job.incomplete))
        note(f"part{'s' if len(job.incomplete) > 1 else ''} {numbers} of {stats['parts']} reached the token cap even "
             "when split: the translation there may be incomplete (a bigger --max-tokens or --ctx helps)")
    if interrupted or job.cancelled:
        note("stopped; the output so far is above")
        return 130
    return 0


def run_summarize(opts: SummarizeOptions) -> int:
    focus = textio.clean(opts.focus, "--focus", note) if opts.focus else opts.focus
    options = SummaryOptions.parse(opts.length, opts.form, opts.lang, focus)
    session = opts.session(log=False)
    source = read_inputs(list(opts.files), session.config.encoding)
    if not source.text.strip():
        raise InputError("nothing to summarize: the input is empty")
    writer = output_writer(opts, source)
    engine = session.load()
    asked = (language_code(options.language),) if options.language else ()
    setup.advise(session, "summarize", (*asked, *source_language(source.text)))
    job = Summarizer(engine, task_params(opts, session.params), options)
    return run_job(opts, job, source.text, "summarizing", lambda: {"options": {
        "length": options.length, "form": options.form, "language": options.language, "focus": options.focus}},
        writer)


def run_translate(opts: TranslateOptions) -> int:
    check_target(opts.to)
    if opts.source:
        language_name(opts.source)
    glossary = load_glossary(opts.glossary, notify=note) if opts.glossary else None
    session = opts.session(log=False)
    source = read_inputs(list(opts.files), session.config.encoding)
    if not source.text.strip():
        raise InputError("nothing to translate: the input is empty")
    writer = output_writer(opts, source)
    engine = session.load()
    source_code = language_code(opts.source) if opts.source else detect_language(source.text)
    setup.advise(session, "translate", (language_code(opts.to), source_code))
    job = Translator(engine, task_params(opts, session.params), target=opts.to, source=opts.source or source_code,
                     glossary=glossary)
    code = run_job(opts, job, source.text, "translating", lambda: {"source": job.source, "target": job.target},
                   writer)
    if opts.source is None and job.source:
        note(f"detected source language: {job.source}")
    return code
