"""The local engine: one llama.cpp model in this process, via llama-cpp-python.

Generation drives ``Llama.generate`` token by token (llama.cpp's C sampler
chain, no per-token logits copy) rather than ``create_completion``, whose
per-token bookkeeping costs ~20% of the decode rate on small models.
``Llama.generate`` keeps the KV cache of the longest common prefix with the
previous request, so a chat turn only evaluates its new tokens.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import hashlib
import io
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TYPE_CHECKING

from gptterm import schema as schemas
from gptterm.engine import llama_log, tool_formats as formats, tool_render as render
from gptterm.engine.thinking import ThinkSplitter, template_thinks
from gptterm.engine.tool_stream import CallSplitter
from gptterm.errors import ContextOverflowError, EngineError, InputError, ModelError, UsageError
from gptterm.models import adapters
from gptterm.models.gguf_meta import GGUFMetadata, check_gguf_file, read_metadata
from gptterm.types import Alternative, Message, ModelInfo, Reply, ScoredWindow, TokenInfo, TokenLogprob

if TYPE_CHECKING:
    from gptterm.engine.grammar import ToolTrigger
    from gptterm.settings import Params
    from gptterm.types import Tool
    from gptterm.engine.tool_formats import CallFormat

# Used when a GGUF carries no chat template (base models, some conversions):
# ChatML is what most small instruct models were tuned on.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def default_threads() -> int:
    """All usable cores on small machines; half (≈ physical cores) on large ones."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return n if n <= 8 else max(8, n // 2)


def _prompt_lookup(n: int) -> Any:
    if n <= 0:
        return None
    # heavy: llama_cpp (only the commands that load a model pay for it)
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    return LlamaPromptLookupDecoding(num_pred_tokens=n)


class LocalEngine:
    """A loaded GGUF model. One reply at a time; ``cancel()`` from any thread."""

    def __init__(self, model_path: Path | str, *, ctx: int, gpu_layers: int, threads: int | None,
                 prompt_lookup: int = 0, flash_attn: bool | None = None, lora: Sequence[str] = (), **_: Any):
        """``prompt_lookup``: draft this many tokens by prompt-lookup decoding (0: off).
        ``flash_attn``: None follows the policy below; True for an engine that only scores texts.
        ``lora``: LoRA adapters, each ``PATH[:SCALE]`` (checked against the model before it loads).

        It needs logits for every position (``logits_all``), which llama-cpp-python
        then copies into numpy on each step; see bench/prompt_lookup.py for its cost.
        """
        import llama_cpp  # heavy: llama_cpp (only the commands that load a model pay for it)

        from gptterm.engine.grammar import GrammarLlama

        path = Path(model_path)
        check_gguf_file(path)
        llama_log.install()
        try:
            meta = read_metadata(path)
        except ValueError as err:
            raise ModelError(f"cannot load model {path}: {err}") from None
        if meta.is_adapter:  # llama.cpp would only say the load failed
            raise ModelError(f"{path.name} is a LoRA adapter for {meta.architecture or 'some'} models, not a model: "
                             f"load its base model with -m and add the adapter with --lora {path}")
        self.adapters = adapters.check(tuple(lora), path)  # a mismatch is one line, before anything loads
        n_ctx_train = meta.context_length
        n_ctx = min(ctx, n_ctx_train) if n_ctx_train else ctx
        offload = bool(llama_cpp.llama_supports_gpu_offload())
        n_gpu_layers = gpu_layers if offload else 0
        n_threads = threads or default_threads()
        mark = llama_log.mark()

        def load(flash_attn: bool) -> Any:
            # verbose=True keeps llama-cpp-python from dup2-ing fds 1 and 2 to
            # /dev/null (which would blank other threads' output); its Python
            # prints during load are caught here, llama.cpp's own log by
            # llama_log.
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                return GrammarLlama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_batch=min(512, n_ctx),
                    n_gpu_layers=n_gpu_layers,
                    n_threads=n_threads,
                    n_threads_batch=n_threads,
                    use_mmap=True,
                    verbose=True,
                    flash_attn=flash_attn,
                    draft_model=_prompt_lookup(prompt_lookup),
                )

        # Flash attention only with layers on a GPU. On the CPU it is faster
        # below ~300 tokens of context and slower beyond (measured here: -20%
        # decoding at 1,000 tokens, +50% prompt time after 1,500; see
        # bench/README.md), and chats and summaries live beyond. Scoring a text
        # is prompt evaluation alone, where it is faster on the CPU too (measured:
        # 512-token windows 5.45 -> 4.25 s, 2048-token 27.5 -> 19.7 s), so the
        # perplexity command asks for it. A device that refuses it gets the
        # model loaded again without.
        self.flash_attn = n_gpu_layers > 0 if flash_attn is None else flash_attn
        try:
            try:
                self._llm = load(self.flash_attn)
            except ValueError as err:
                if not self.flash_attn or "context" not in str(err):  # the model itself failed
                    raise
                self.flash_attn = False
                self._llm = load(False)
        except (ValueError, RuntimeError, OSError) as err:
            reason = llama_log.failure_reason(llama_log.since(mark)) or str(err)
            raise ModelError(f"cannot load model {path}: {reason}") from None
        self._llm.verbose = False  # silence per-request prints from here on
        self._apply_adapters(llama_cpp, mark)
        self._lib = llama_cpp
        self._vocab = self._llm._model.vocab
        self._cancel = threading.Event()
        self._busy = threading.Lock()
        self._pieces: dict[int, bytes] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        self._abort_cb = llama_cpp.ggml_abort_callback(lambda _data: self._cancel.is_set())
        self._formatter = self._make_formatter(meta)
        self._transcript_formatter: Any = None
        self.meta = meta
        self.info = ModelInfo(
            # the adapters are part of what the model is: the status line, doctor and the history name them
            name=" + ".join([path.stem] + [a.spec.label() for a in self.adapters]),
            path=str(path),
            size_bytes=path.stat().st_size,
            architecture=meta.architecture,
            n_params=self._llm._model.n_params(),
            n_ctx_train=n_ctx_train,
            n_ctx=self._llm.n_ctx(),
            has_chat_template=meta.chat_template is not None,
            gpu_layers=n_gpu_layers,
            threads=n_threads,
            thinks=self.thinks,
            tools=self.native_tools,
            lora=tuple(a.spec.text() for a in self.adapters),
            adapter_paths=tuple(str(a.path) for a in self.adapters),
        )

    def _apply_adapters(self, llama_cpp: Any, mark: Any) -> None:
        """Load the LoRA adapters and set them on the context (scale 0 leaves one out: the base model's output)."""
        active = [a for a in self.adapters if a.spec.scale != 0]
        if not active:
            return
        loaded = []
        for a in active:
            handle = llama_cpp.llama_adapter_lora_init(self._llm._model.model, str(a.path).encode())
            if not handle:
                reason = llama_log.failure_reason(llama_log.since(mark)) or "llama.cpp refused it"
                self.close()
                raise ModelError(f"cannot load the LoRA adapter {a.path}: {reason}")
            loaded.append(handle)  # freed with the model
        handles = (llama_cpp.llama_adapter_lora_p_ctypes * len(loaded))(*loaded)
        scales = (ctypes.c_float * len(loaded))(*(a.spec.scale for a in active))
        if llama_cpp.llama_set_adapters_lora(self._llm._ctx.ctx, handles, len(loaded), scales):
            self.close()
            raise ModelError("llama.cpp could not set the LoRA adapters on the model")

    def _make_formatter(self, meta: GGUFMetadata) -> Any:
        # heavy: llama_cpp (only the commands that load a model pay for it)
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        model = self._llm._model
        eos_id, bos_id = model.token_eos(), model.token_bos()
        eos = model.token_get_text(eos_id) if eos_id >= 0 else ""
        bos = model.token_get_text(bos_id) if bos_id >= 0 else ""
        template = meta.chat_template or FALLBACK_CHAT_TEMPLATE
        # llama-cpp-python compiled the model's own template while loading, for a
        # chat handler gptterm never calls; compiling it again cost ~10 ms of
        # every start, so that formatter is reused when it is the same one.
        handler = getattr(self._llm, "_chat_handlers", {}).get("chat_template.default")
        for cell in getattr(handler, "__closure__", None) or ():
            found = cell.cell_contents
            if (isinstance(found, Jinja2ChatFormatter) and found.template == template
                    and (found.eos_token, found.bos_token) == (eos, bos) and found.add_generation_prompt):
                return found
        try:
            return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        except Exception as err:  # jinja2 syntax errors in a model's template
            raise ModelError(f"the model's chat template is invalid: {err}") from None

    # -- tokens ---------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        return self._llm.n_ctx()

    def tokenize(self, text: str, *, special: bool = False, add_bos: bool = False) -> list[int]:
        return self._llm.tokenize(_utf8(text), add_bos=add_bos, special=special)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self._piece(t) for t in tokens).decode("utf-8", "replace")

    def chat_tokens(self, messages: Sequence[Message], thinking: str = "auto", *,
                    tools: Sequence[Tool] | None = None) -> list[int]:
        return self._rendered_tokens(self.render_chat(messages, thinking, tools=tools))

    def _rendered_tokens(self, rendered: str) -> list[int]:
        bos = self._formatter.bos_token
        add_bos = not (bos and rendered.startswith(bos))
        return self._llm.tokenize(_utf8(rendered), add_bos=add_bos, special=True)

    def count_chat_tokens(self, messages: Sequence[Message], *, tools: Sequence[Tool] | None = None) -> int:
        return len(self.chat_tokens(messages, tools=tools))

    # -- tool calling -----------------------------------------------------------

    @property
    def tool_format(self) -> CallFormat:
        """How this model writes a tool call (chosen from its chat template; Hermes when it shows none)."""
        return formats.for_template(self._formatter.template)

    @property
    def native_tools(self) -> bool:
        """Whether the model's own chat template renders tools (else gptterm's fallback prompt does)."""
        return formats.template_has_tools(self._formatter.template)

    def _marker_pieces(self, fmt: CallFormat) -> dict[int, bytes]:
        """The format's markers that are single control tokens (Llama 3's <|python_tag|>, Mistral's
        [TOOL_CALLS]), by id: generated text shows control tokens as nothing, these as their text."""
        found: dict[int, bytes] = {}
        for marker in formats.marker_texts(fmt):
            ids = self.tokenize(marker, special=True)
            if len(ids) == 1 and self._is_special(ids[0]):
                found[ids[0]] = marker.encode("utf-8")
        return found

    def _tool_trigger(self, fmt: CallFormat, tools: Sequence[Tool], tool_choice: str | None, rendered: str,
                      markers: dict[int, bytes]) -> ToolTrigger | None:
        from gptterm.engine import grammar  # heavy: llama_cpp (only the commands that load a model pay for it)

        if tool_choice == "none":
            return None
        chosen = list(tools)
        if tool_choice not in (None, "auto", "required"):
            chosen = [t for t in tools if t.name == tool_choice]
            if not chosen:
                raise UsageError(f"tool_choice names {tool_choice!r}, which is not among the tools given "
                                 f"({', '.join(t.name for t in tools) or 'none'})")
        gbnf = fmt.grammar(chosen)
        grammar.check(self._vocab, gbnf)
        return grammar.ToolTrigger(
            gbnf, fmt.openings, fmt.anchored,
            piece=lambda t: markers.get(t) or self._piece(t),
            tokenize=lambda text: self.tokenize(text, special=True),
            thinking=self.thinks, inside=rendered.rstrip().endswith("<think>"),
            forced=tool_choice not in (None, "auto"))

    def transcript_tokens(self, messages: Sequence[Message]) -> list[int]:
        """The tokens of a whole conversation as the template renders it, with no generation prompt after
        the last message (what fine-tuning trains on)."""
        # heavy: llama_cpp (only the commands that load a model pay for it)
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        f = self._formatter
        if self._transcript_formatter is None:
            self._transcript_formatter = Jinja2ChatFormatter(template=f.template, eos_token=f.eos_token,
                                                             bos_token=f.bos_token, add_generation_prompt=False)
        try:
            rendered = self._transcript_formatter(messages=[dict(m) for m in messages]).prompt
        except Exception as err:  # a template that raises is the model's fault, not a crash
            raise EngineError(f"the model's chat template failed: {err}") from None
        return self._rendered_tokens(rendered)

    @contextlib.contextmanager
    def exclusive_model(self) -> Iterator[Any]:
        """The loaded ``llama_model`` (a C pointer) for a second context on the same weights (attention
        capture), with no reply or scoring running on this engine meanwhile."""
        with self._busy:
            if self._llm is None:
                raise EngineError("the model was closed")
            yield self._llm._model.model

    @property
    def thinks(self) -> bool:
        """Whether the model's chat template knows a thinking mode (a <think> block or a switch for one)."""
        return template_thinks(self._formatter.template)

    def render_chat(self, messages: Sequence[Message], thinking: str = "auto", *,
                    tools: Sequence[Tool] | None = None) -> str:
        """The prompt the template makes of ``messages``; ``thinking`` "on"/"off" switches a reasoning
        model's thinking through the template's ``enable_thinking``, else with /think or /no_think at the end
        of the last user message (Qwen3 honours both); "auto" leaves the model's default.

        ``tools``, tool calls and tool results go in through the template's tools section, or gptterm's
        fallback for a template without one (gptterm.engine.tool_render)."""
        values: dict[str, Any] = {}
        shown: list[dict[str, Any]] = [dict(m) for m in messages]
        if tools or any(m.get("role") == "tool" or m.get("tool_calls") for m in shown):
            shown, values = render.prepare(shown, list(tools or ()), self._formatter.template, self.tool_format)
        if thinking in ("on", "off") and self.thinks:
            if "enable_thinking" in self._formatter.template:
                values["enable_thinking"] = thinking == "on"
            elif shown and shown[-1]["role"] == "user":
                shown[-1]["content"] = f"{shown[-1]['content']} /{'think' if thinking == 'on' else 'no_think'}"
        try:
            return self._formatter(messages=shown, **values).prompt
        except Exception as err:  # a template that raises is the model's fault, not a crash
            raise EngineError(f"the model's chat template failed: {err}") from None

    def completion_tokens(self, prompt: str) -> list[int]:
        return self._llm.tokenize(_utf8(prompt), add_bos=True, special=False)

    # -- generation -----------------------------------------------------------

    def chat(self, messages: Sequence[Message], params: Params, *, schema: dict[str, Any] | None = None,
             tools: Sequence[Tool] | None = None, tool_choice: str | None = None) -> Reply:
        tools = list(tools or ())
        if tools and schema is not None:
            raise UsageError("a reply cannot both match a schema and call tools: give one or the other")
        rendered = self.render_chat(messages, params.thinking, tools=tools)
        trigger = None
        markers: dict[int, bytes] = {}
        if tools:
            fmt = self.tool_format
            markers = self._marker_pieces(fmt)
            trigger = self._tool_trigger(fmt, tools, tool_choice, rendered, markers)
        reply = self._reply(self._rendered_tokens(rendered), params, schema, trigger, markers)
        # a <think> block is kept apart from the answer; some templates open it in the prompt
        reply.split_thinking(ThinkSplitter(inside=rendered.rstrip().endswith("<think>")))
        if tools:
            reply.split_calls(CallSplitter(self.tool_format))
        return reply

    def complete(self, prompt: str, params: Params, *, schema: dict[str, Any] | None = None) -> Reply:
        return self._reply(self.completion_tokens(prompt), params, schema)

    # -- KV state on disk ---------------------------------------------------------

    @property
    def evaluated_tokens(self) -> int:
        """Tokens whose KV state is in the context now (what a saved state would hold)."""
        return self._llm.n_tokens

    def state_key(self) -> str:
        """Identifies what a saved KV state is valid for: this model file, its LoRA adapters, context size and
        KV layout."""
        st = Path(self.info.path).stat()
        # flash attention stores V untransposed: a state from the other layout does not load
        ident = f"{Path(self.info.path).resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.n_ctx}|fa={self.flash_attn}"
        for a in self.adapters:  # another adapter set computed other keys and values: its state must not be reused
            if a.spec.scale != 0:
                ast = a.path.stat()
                ident += f"|lora={a.path.resolve()}|{ast.st_size}|{ast.st_mtime_ns}|{a.spec.scale!r}"
        return hashlib.sha256(ident.encode()).hexdigest()[:16]

    def save_state(self, path: Path) -> int:
        """Write the evaluated tokens and their KV cache to ``path``; returns the token count."""
        with self._busy:
            llm = self._llm
            n = llm.n_tokens
            if n == 0:
                return 0
            tokens = (self._lib.llama_token * n)(*llm.input_ids[:n].tolist())
            written = self._lib.llama_state_seq_save_file(llm._ctx.ctx, str(path).encode(), 0, tokens, n)
        if written == 0:
            raise EngineError(f"could not save the KV state to {path}")
        return n

    def load_state(self, path: Path) -> int:
        """Restore tokens and KV cache saved by ``save_state``; 0 (and an empty cache) on failure."""
        with self._busy:
            llm = self._llm
            capacity = self.n_ctx
            tokens = (self._lib.llama_token * capacity)()
            count = ctypes.c_size_t(0)
            read = self._lib.llama_state_seq_load_file(llm._ctx.ctx, str(path).encode(), 0, tokens, capacity,
                                                       ctypes.byref(count))
            n = count.value
            if read == 0 or not 0 < n <= capacity:
                llm.reset()
                llm._ctx.kv_cache_seq_rm(-1, 0, -1)
                return 0
            llm.input_ids[:n] = tokens[:n]
            llm.n_tokens = n
            llm._requires_eval = True  # logits are not part of the state: the next prompt re-evaluates its last token
            return n

    def cancel(self) -> None:
        self._cancel.set()

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None

    def _reply(self, tokens: list[int], params: Params, schema: dict[str, Any] | None = None,
               trigger: ToolTrigger | None = None, markers: dict[int, bytes] | None = None) -> Reply:
        gbnf: Any = trigger
        if schema is not None:
            from gptterm.engine import grammar  # heavy: llama_cpp (only the commands that load a model pay for it)

            gbnf = schemas.grammar(schema)
            grammar.check(self._vocab, gbnf)
        if len(tokens) >= self.n_ctx:
            raise ContextOverflowError(
                f"the prompt is {len(tokens)} tokens but the context holds {self.n_ctx}",
                prompt_tokens=len(tokens), n_ctx=self.n_ctx, reply_tokens=0,
            )
        self._cancel.clear()
        # os.urandom, not secrets: that import alone costs a one-shot 6 ms
        seed = params.seed if params.seed is not None else int.from_bytes(os.urandom(4), "little") % (2**32 - 1)
        # the markers go as a keyword only when there are some (tests/scripted.py stands in for _generate)
        extra = {"markers": markers} if markers else {}
        return Reply(lambda reply: self._generate(reply, tokens, params, seed, gbnf, **extra),
                     prompt_tokens=len(tokens), seed=seed)

    def _piece(self, token: int) -> bytes:
        """The bytes a token adds to generated text (control tokens add none)."""
        piece = self._pieces.get(token)
        if piece is None:
            n = self._lib.llama_token_to_piece(self._vocab, token, self._piece_buf, 256, 0, False)
            piece = self._piece_buf.raw[: max(n, 0)]
            self._pieces[token] = piece
        return piece

    def _is_special(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_get_attr(self._vocab, token) & self._lib.LLAMA_TOKEN_ATTR_CONTROL)

    def _shown(self, token: int) -> TokenInfo:
        """A token as a reader should see it: control tokens by their name (``<|im_end|>``)."""
        if not self._is_special(token):
            return TokenInfo(token, self._piece(token))
        n = self._lib.llama_token_to_piece(self._vocab, token, self._piece_buf, 256, 0, True)
        return TokenInfo(token, self._piece_buf.raw[: max(n, 0)], special=True)

    # -- looking inside ---------------------------------------------------------

    @property
    def bos_token(self) -> int | None:
        if not self._lib.llama_vocab_get_add_bos(self._vocab):
            return None
        bos = self._lib.llama_vocab_bos(self._vocab)
        return bos if bos >= 0 else None

    def token_info(self, tokens: Sequence[int]) -> list[TokenInfo]:
        return [self._shown(t) for t in tokens]

    def _alternatives(self, found: list[tuple[int, float]]) -> tuple[Alternative, ...]:
        shown = [self._shown(t) for t, _ in found]
        return tuple(Alternative(t, s.text, lp, s.piece) for (t, lp), s in zip(found, shown))

    def score(self, tokens: Sequence[int], first: int, *, top: int = 0) -> ScoredWindow:
        import numpy as np  # heavy: numpy (only the commands that load a model pay for it)

        from gptterm.engine import logprobs

        n = len(tokens)
        if n > self.n_ctx:
            raise ContextOverflowError(f"a window of {n} tokens does not fit the context of {self.n_ctx}",
                                       prompt_tokens=n, n_ctx=self.n_ctx, reply_tokens=0)
        lib, llm = self._lib, self._llm
        if llm is None:
            raise EngineError("the model was closed")
        ctx, n_vocab, n_batch = llm._ctx.ctx, llm.n_vocab(), llm.n_batch
        scored: list[float] = []
        alternatives: list[tuple[Alternative, ...]] = []
        self._cancel.clear()
        with self._busy:
            # From an empty cache, as a window should be: the chat's cached prefix is gone.
            lib.llama_memory_clear(lib.llama_get_memory(ctx), True)
            llm.n_tokens = 0
            batch = lib.llama_batch_init(n_batch, 0, 1)
            self._set_abort(True)
            try:
                for start in range(0, n, n_batch):
                    size = min(n_batch, n - start)
                    wanted = [p for p in range(start, start + size) if first <= p < n - 1]
                    batch.n_tokens = size
                    for k in range(size):
                        batch.token[k] = tokens[start + k]
                        batch.pos[k] = start + k
                        batch.n_seq_id[k] = 1
                        batch.seq_id[k][0] = 0
                        batch.logits[k] = first <= start + k < n - 1
                    rc = lib.llama_decode(ctx, batch)
                    if rc != 0:
                        if self._cancel.is_set():
                            break  # stopped: what was scored counts
                        raise EngineError(f"evaluating the text failed (llama_decode returned {rc})")
                    if not wanted:
                        continue
                    rows = np.ctypeslib.as_array(lib.llama_get_logits(ctx), shape=(len(wanted), n_vocab))
                    targets = [tokens[p + 1] for p in wanted]
                    normalizers = logprobs.log_normalizers(rows)
                    scored += (rows[np.arange(len(wanted)), targets] - normalizers).tolist()
                    if top:
                        alternatives += [self._alternatives(logprobs.top_k(row, top, float(z)))
                                         for row, z in zip(rows, normalizers)]
            finally:
                self._set_abort(False)
                lib.llama_batch_free(batch)
                lib.llama_memory_clear(lib.llama_get_memory(ctx), True)
        return ScoredWindow(scored, alternatives if top else None)

    def _set_abort(self, on: bool) -> None:
        # The abort callback runs between graph nodes of every llama_decode;
        # a Python callback there costs GIL round-trips per node, so it is
        # armed only while the prompt is evaluated (long, uninterruptible
        # otherwise). During decoding, cancel is checked once per token.
        cb = self._abort_cb if on else self._lib.ggml_abort_callback(0)
        self._lib.llama_set_abort_callback(self._llm._ctx.ctx, cb, None)

    def _generate(self, reply: Reply, tokens: list[int], params: Params, seed: int,
                  gbnf: Any = None, markers: dict[int, bytes] | None = None) -> Iterator[str]:
        """``gbnf``: GBNF text, or a ``ToolTrigger`` (gptterm/engine/grammar.py); ``markers``: control tokens
        whose text the reply shows (a tool call's markers)."""
        llm = self._llm
        if llm is None:
            raise EngineError("the model was closed")
        stats = reply.stats
        max_new = min(params.max_tokens, self.n_ctx - len(tokens))
        is_eog = self._lib.llama_vocab_is_eog
        vocab = self._vocab
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        record = self._logprob_recorder(reply, params.logprobs) if params.logprobs else None
        with self._busy:
            stats.cached_tokens = _common_prefix(llm.input_ids[: llm.n_tokens], tokens)
            llm.set_seed(seed)
            t0 = time.perf_counter()
            t_first = t_last = None
            n = 0
            finish = "length"
            self._set_abort(True)
            gen = llm.generate(
                tokens,
                temp=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,
                min_p=params.min_p,
                repeat_penalty=params.repeat_penalty,
                reset=True,
                grammar=gbnf,  # GrammarLlama: GBNF text or a ToolTrigger, checked lazily (gptterm/engine/grammar.py)
            )
            try:
                for token in gen:
                    t_last = time.perf_counter()
                    if t_first is None:
                        t_first = t_last
                        stats.ttft_s = t_first - t0
                        self._set_abort(False)
                    if self._cancel.is_set():
                        finish = "cancelled"
                        break
                    if is_eog(vocab, token):
                        finish = "stop"
                        break
                    n += 1
                    stats.completion_tokens = n
                    if record is not None:
                        record(token)
                    text = decoder.decode(markers[token] if markers and token in markers else self._piece(token))
                    if text:
                        yield text
                    if n >= max_new:
                        break
            except RuntimeError as err:
                if not self._cancel.is_set():
                    raise EngineError(f"generation failed: {err}") from None
                finish = "cancelled"
            finally:
                gen.close()
                self._set_abort(False)
                end = time.perf_counter()
                stats.total_s = end - t0
                if t_first is not None and t_last is not None:
                    stats.decode_s = t_last - t_first
                reply.finish_reason = finish
        # A reply cut by max_tokens can stop inside a multi-byte character: its first bytes
        # are dropped, not shown as U+FFFD (an invalid byte inside the text still is).
        held, _ = decoder.getstate()
        if not held:
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail


    def _logprob_recorder(self, reply: Reply, k: int) -> Callable[[int], None]:
        """Appends each generated token's log-probability (and ``k`` alternatives) to ``reply.logprobs``:
        read from the last position's logits, which llama.cpp still holds when the token is handed over."""
        import numpy as np  # heavy: numpy (only the commands that load a model pay for it)

        from gptterm.engine import logprobs

        llm, lib = self._llm, self._lib
        ctx, n_vocab = llm._ctx.ctx, llm.n_vocab()
        out: list[TokenLogprob] = []
        reply.logprobs = out

        def record(token: int) -> None:
            row = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
            lp, found = logprobs.row_logprob(row, token, k)
            shown = self._shown(token)
            out.append(TokenLogprob(token, shown.text, lp, self._alternatives(found), piece=shown.piece))

        return record


def _utf8(text: str) -> bytes:
    """What the tokenizer is given. Every face decodes its input with gptterm.textio; a string that still
    holds a surrogate (an undecodable byte smuggled in by the OS) is one clear error, not a traceback."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(f"the text holds U+{ord(err.object[err.start]):04X} at character {err.start}: an undecodable "
                         "byte, not text") from None


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
