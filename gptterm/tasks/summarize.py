"""Summarize text of any length: one pass when it fits, else map-reduce, recursively.

Text too long for the context is cut into chunks on token counts (the
model's tokenizer) at paragraph and sentence boundaries; each chunk is
summarized, the summaries are joined, and the result is summarized again
(chunked again if it still does not fit) until one final pass fits. The
system prompt comes first and is the same for every chunk, so llama.cpp
reuses its KV cache and only evaluates each chunk's own tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, TYPE_CHECKING

from gptterm.assets import language_name, load_prompt
from gptterm.errors import TaskError, UsageError
from gptterm.tasks.chunking import chunk_text
from gptterm.tasks.job import Job, SentenceHold, TaskEvent, strip_preamble, stream_reply, trim_to_sentence
from gptterm.words import plural

if TYPE_CHECKING:
    from gptterm.engine.base import Engine
    from gptterm.types import Message
    from gptterm.settings import Params

LENGTH_WORDS = {"short": 60, "medium": 150, "long": 300}
FORMS = {
    "paragraph": "Write it as prose paragraphs.",
    "bullets": "Write it as a Markdown bullet list: one key point per line, each line starting with \"- \".",
    "tldr": "Write it as one single sentence.",
}
# Tokens kept free besides prompt and reply: template tokens can merge
# differently around the inserted text.
SAFETY_TOKENS = 16
TOKENS_PER_WORD = 1.6
# A "word" of Chinese, Japanese or Korean takes more tokens than an English one.
TOKENS_PER_WORD_CJK = 2.5
# --length is a target, not a cut: the token cap leaves this much room over it, and a reply that still
# reaches the cap ends at its last complete sentence (SentenceHold).
HEADROOM = 1.6


@dataclass(frozen=True)
class SummaryOptions:
    length: str | int = "medium"
    form: str = "paragraph"
    language: str | None = None
    focus: str | None = None

    @classmethod
    def parse(cls, length: str = "medium", form: str = "paragraph", language: str | None = None,
              focus: str | None = None) -> "SummaryOptions":
        size: str | int = length
        if length not in LENGTH_WORDS:
            try:
                words = int(length)
            except ValueError:
                raise UsageError(f"--length must be short, medium, long or a number of words, not {length!r}") from None
            if not 5 <= words <= 5000:
                raise UsageError(f"--length in words must be in 5..5000, not {words}")
            size = words
        if form not in FORMS:
            raise UsageError(f"--form must be one of {', '.join(FORMS)}, not {form!r}")
        if language:
            language = language_name(language)
        return cls(size, form, language, (focus or "").strip() or None)

    @property
    def words(self) -> int:
        return self.length if isinstance(self.length, int) else LENGTH_WORDS[self.length]


class Summarizer(Job):
    def __init__(self, engine: Engine, params: Params, options: SummaryOptions):
        super().__init__(engine, params)
        self.options = options
        self.text = ""
        self.levels = 0

    def _focus(self) -> str:
        return f"Pay special attention to: {self.options.focus}." if self.options.focus else ""

    def _final_messages(self, text: str) -> list[Message]:
        o = self.options
        length = ("Use one sentence." if o.form == "tldr" else f"Use at most about {o.words} words.")
        language = f"Write the summary in {o.language}." if o.language else ""
        return load_prompt("summarize").messages(text=text, length=length, form=FORMS[o.form],
                                                 language=language, focus=self._focus())

    def _part_messages(self, text: str) -> list[Message]:
        return load_prompt("summarize_part").messages(text=text, focus=self._focus())

    def final_reserve(self) -> int:
        """The final summary's token cap: the --length target with headroom (at most half the context)."""
        words = 40 if self.options.form == "tldr" else self.options.words
        per_word = TOKENS_PER_WORD_CJK if self.options.language in ("Chinese", "Japanese", "Korean") else TOKENS_PER_WORD
        return max(64, min(int(words * per_word * HEADROOM) + 48, self.engine.n_ctx // 2))

    def part_reserve(self) -> int:
        return max(96, min(512, self.engine.n_ctx // 8))

    def run(self, text: str) -> Iterator[TaskEvent]:
        engine = self.engine
        if not text.strip():
            raise TaskError("nothing to summarize: the input is empty")
        n_ctx = engine.n_ctx
        current = text
        level = 0
        self.count.total = 1  # the final pass; the parts are added once the text is cut
        while True:
            final = self._final_messages(current)
            reserve = self.final_reserve()
            if engine.count_chat_tokens(final) + reserve + SAFETY_TOKENS <= n_ctx:
                break
            overhead = engine.count_chat_tokens(self._part_messages(""))
            part_reserve = self.part_reserve()
            budget = n_ctx - overhead - part_reserve - SAFETY_TOKENS
            if budget < 32:
                raise TaskError(f"the context ({n_ctx} tokens) is too small to summarize in parts; use a bigger --ctx")
            chunks = chunk_text(current, budget, engine.count_tokens)
            if level == 0:
                self.count.total += len(chunks)
            else:
                self.count.grow(len(chunks), f"the partial summaries need round {level + 1}: "
                                             f"{plural(len(chunks), 'more part')}")
            summaries = []
            for k, chunk in enumerate(chunks):
                if self.stopping:
                    self.cancelled = True
                    return
                part = self.count.done
                yield self.progress(level)
                reply = engine.chat(self._part_messages(chunk), self.params.replace(max_tokens=part_reserve))
                for _ in stream_reply(self, reply, emit=False):
                    pass
                self.count.done += 1
                result = self.record(reply, level=level, index=part, total=self.count.total, chunk=k,
                                     input_tokens=engine.count_tokens(chunk))
                output = strip_preamble(reply.text).strip()
                if reply.finish_reason == "length":  # cut by the cap: it ends at its last complete sentence
                    output, result["trimmed"] = trim_to_sentence(output)
                result["output"] = output
                yield TaskEvent("chunk", index=part, total=self.count.total, level=level, result=result)
                if self.cancelled:
                    return
                summaries.append(result["output"])
            combined = "\n\n".join(s for s in summaries if s)
            if engine.count_tokens(combined) >= engine.count_tokens(current):
                raise TaskError("the partial summaries are not shorter than their input; try a bigger --ctx")
            current = combined
            level += 1
        self.levels = level
        if self.stopping:
            self.cancelled = True
            return
        part = self.count.done
        yield self.progress(level)
        reply = engine.chat(final, self.params.replace(max_tokens=reserve))
        hold = SentenceHold()
        parts = []
        for event in stream_reply(self, reply, emit=True, hold=hold):
            parts.append(event.text)
            yield event
        self.count.done += 1
        self.text = "".join(parts).strip()
        result = self.record(reply, level=level, index=part, total=self.count.total,
                             input_tokens=engine.count_tokens(current), final=True, trimmed=hold.trimmed,
                             max_tokens=reserve)
        result["output"] = self.text
        yield TaskEvent("chunk", index=part, total=self.count.total, level=level, result=result)
