"""The remote engine: the Engine contract over an OpenAI-compatible server.

Replies stream from ``/v1/chat/completions`` and ``/v1/completions``
(``stream: true``, server-sent events); ``/v1/models`` lists the models.
The stream is read by a helper thread that hands events over a queue, so
``cancel()`` from any thread ends the reply at once — even while the server
is still evaluating the prompt and sends nothing — and shuts the stream's
socket, which tells the server to stop generating.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import socket
import threading
import time
from typing import Any, Iterator, Sequence, TYPE_CHECKING

from gptterm import schema as schemas
from gptterm.engine import remote_tokens
from gptterm.engine.openai_http import ServerAPI, StreamDropped
from gptterm.engine.thinking import ThinkSplitter
from gptterm.errors import ContextOverflowError, ModelError, RemoteContextError, RemoteError
from gptterm.servers import ServerProfile
from gptterm.types import Alternative, Message, ModelInfo, Reply, ScoredWindow, TokenInfo, TokenLogprob, calls_of

if TYPE_CHECKING:
    from gptterm.settings import Params
    from gptterm.types import Tool

# Sampling parameters that llama.cpp-based servers and vLLM accept but
# OpenAI's own API refuses; dropped (once, for the engine's lifetime) when a
# server says it does not know them.
EXTENSION_PARAMS = ("top_k", "min_p", "repeat_penalty", "chat_template_kwargs")
# Pieces that are control tokens by their look (servers do not say which are special).
SPECIAL_PIECE = re.compile(r"^(<\|[^|<>]+\|>|</?s>|\[/?INST\]|<(start|end)_of_turn>)$")

_END = object()


class _Flight:
    """One streamed request: its stop signal, its events, and the socket that stopping shuts."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._response: Any = None
        self._lock = threading.Lock()

    def opened(self, response: Any) -> None:
        with self._lock:
            self._response = response
            if self.stop.is_set():
                self._shut()

    def closed(self, response: Any) -> None:
        with self._lock:
            if self._response is response:
                self._response = None

    def cancel(self) -> None:
        with self._lock:
            self.stop.set()
            self._shut()
        self.events.put(_END)

    def _shut(self) -> None:
        # Closing a socket does not wake a thread blocked reading it;
        # shutting it down does, and the server sees the client leave.
        stream = self._response.extensions.get("network_stream") if self._response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _logprobs(found: Any) -> list[TokenLogprob]:
    """The log-probabilities in one streamed choice: the chat shape (``content``: token, logprob,
    top_logprobs) or the legacy completions shape (tokens, token_logprobs, top_logprobs as dicts)."""
    if not isinstance(found, dict):
        return []
    out: list[TokenLogprob] = []
    content = found.get("content")
    if isinstance(content, list):
        for entry in content:
            if isinstance(entry, dict) and isinstance(entry.get("logprob"), (int, float)):
                top = tuple(Alternative(-1, str(a.get("token", "")), float(a["logprob"]))
                            for a in entry.get("top_logprobs") or () if isinstance(a, dict) and "logprob" in a)
                out.append(TokenLogprob(-1, str(entry.get("token", "")), float(entry["logprob"]), top))
        return out
    tokens, logprobs = found.get("tokens") or [], found.get("token_logprobs") or []
    tops = found.get("top_logprobs") or [None] * len(tokens)
    for token, lp, top in zip(tokens, logprobs, tops):
        if isinstance(lp, (int, float)):
            alts = sorted(((str(t), float(v)) for t, v in (top or {}).items()), key=lambda a: -a[1])
            out.append(TokenLogprob(-1, str(token), float(lp), tuple(Alternative(-1, t, v) for t, v in alts)))
    return out


def _server_context(props: dict[str, Any] | None, entry: dict[str, Any]) -> tuple[int | None, int | None]:
    """(context size, training context) as far as the server tells them."""
    n_ctx = None
    if isinstance(props, dict):
        settings = props.get("default_generation_settings")
        n_ctx = (settings or {}).get("n_ctx") if isinstance(settings, dict) else None
        n_ctx = n_ctx or props.get("n_ctx")
    n_ctx = n_ctx or entry.get("max_model_len")  # vLLM
    meta = entry.get("meta")
    train = meta.get("n_ctx_train") if isinstance(meta, dict) else None
    as_int = (lambda v: v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None)
    return as_int(n_ctx), as_int(train)


def _wire_message(m: Message) -> dict[str, Any]:
    """A message as OpenAI's API takes it: tool calls with their arguments as JSON text."""
    out: dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
    if m.get("tool_calls"):
        out["tool_calls"] = [
            {**c, "function": {**c.get("function", {}), "arguments": args if isinstance(
                args := c.get("function", {}).get("arguments"), str) else json.dumps(args or {}, ensure_ascii=False)}}
            for c in m["tool_calls"]]
    for key in ("tool_call_id", "name"):
        if m.get(key):
            out[key] = m[key]
    return out


def _take_tool_calls(calls: dict[int, dict[str, str]], deltas: Any) -> bool:
    """Adds one event's ``delta.tool_calls`` to ``calls``; whether it held any.

    OpenAI sends a call's id and name in its first delta and the arguments in pieces; llama-cpp-python's
    server repeats the whole name (and id) in every delta, so a name is only extended by a piece it does not
    already hold."""
    if not isinstance(deltas, list):
        return False
    seen = False
    for position, delta in enumerate(deltas):
        if not isinstance(delta, dict):
            continue
        found = delta.get("index")
        index = found if isinstance(found, int) else position
        entry = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if isinstance(delta.get("id"), str) and delta["id"]:
            entry["id"] = delta["id"]
        function = delta.get("function")
        if isinstance(function, dict):
            name = function.get("name")
            if isinstance(name, str) and name and name != entry["name"]:
                entry["name"] = name if not entry["name"] or name.startswith(entry["name"]) else entry["name"] + name
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                entry["arguments"] += arguments
            elif isinstance(arguments, dict):  # a server that sends the arguments decoded, in one piece
                entry["arguments"] = json.dumps(arguments, ensure_ascii=False)
        seen = True
    return seen


class RemoteEngine:
    """A model served by an OpenAI-compatible server. One reply at a time; ``cancel()`` from any thread."""

    def __init__(self, profile: ServerProfile, *, model: str | None = None, ctx: int = 4096, **_: Any):
        """``ctx``: the context size to assume when neither the server nor the profile tells it."""
        key, source = profile.api_key()
        self.profile = profile
        self.api = ServerAPI(profile.url, api_key=key, key_source=source, key_hint=profile.key_hint(),
                             timeout=profile.timeout, retries=profile.retries, retry_delay=profile.retry_delay)
        try:
            self._connect(model or profile.model, ctx)
        except BaseException:
            self.api.close()
            raise
        self._flight: _Flight | None = None
        self._busy = threading.Lock()
        self._standard_only = False
        #: how a schema is asked for: OpenAI's json_schema, else (a server that refused it) json_object + schema
        self._schema_style = "json_schema"

    def _connect(self, wanted: str | None, ctx: int) -> None:
        listing = self.api.request_json("GET", "/models")
        entries = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(entries, list):
            raise RemoteError(f"the answer of {self.api.shown} to /models has no model list: "
                              "is this an OpenAI-compatible server?")
        entries = [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]
        self.models = [e["id"] for e in entries]
        if wanted and self.models and wanted not in self.models:
            raise ModelError(f"the server at {self.api.shown} has no model {wanted!r}; "
                             f"it has: {', '.join(self.models)} (pick one with -m)")
        if not wanted:
            if not self.models:
                raise ModelError(f"the server at {self.api.shown} lists no models; name one with -m")
            wanted = self.models[0]
        self.model = wanted
        entry: dict[str, Any] = next((e for e in entries if e["id"] == wanted), {})
        props = self.api.probe_json("GET", "/props")
        reported, train = _server_context(props, entry)
        chosen = self.profile.ctx
        if reported:
            n_ctx, source = (min(reported, chosen), "profile/--ctx") if chosen and chosen < reported else (reported, "server")
        else:
            n_ctx, source = chosen or ctx, "profile/--ctx" if chosen else "--ctx (the server does not report it)"
        self._n_ctx = n_ctx
        self.tokens = remote_tokens.detect(self.api, wanted, props)
        self.info = ModelInfo(
            name=wanted,
            path=self.api.shown,
            size_bytes=0,
            n_ctx_train=train or reported,
            n_ctx=n_ctx,
            has_chat_template=True,
            server=self.profile.name,
            url=self.api.shown,
            ctx_source=source,
            token_counts=self.tokens.name,
            can_score=False,
            served_models=tuple(self.models),
        )

    # -- tokens ---------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def tokenize(self, text: str) -> list[int]:
        return self.tokens.tokenize(text)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.tokens.detokenize(tokens)

    def count_tokens(self, text: str) -> int:
        return self.tokens.count(text)

    def count_chat_tokens(self, messages: Sequence[Message], *, tools: Sequence[Tool] | None = None) -> int:
        # the server renders the tools with its own template: their definitions are counted as JSON text
        extra = self.tokens.count(remote_tokens.tools_text(tools)) if tools else 0
        return self.tokens.count_chat(messages) + extra

    def completion_tokens(self, prompt: str) -> list[int]:
        return self.tokens.tokenize(prompt)

    # -- looking inside ---------------------------------------------------------

    @property
    def bos_token(self) -> int | None:
        return None  # the server's tokenizer adds it where the model wants one

    def token_info(self, tokens: Sequence[int]) -> list[TokenInfo]:
        return [TokenInfo(t, piece.encode("utf-8"), special=bool(SPECIAL_PIECE.match(piece)))
                for t, piece in zip(tokens, self.tokens.pieces(tokens))]

    def chat_tokens(self, messages: Sequence[Message], *, tools: Sequence[Tool] | None = None) -> list[int]:
        return self.tokens.chat_tokens(messages)

    def score(self, tokens: Sequence[int], first: int, *, top: int = 0) -> ScoredWindow:
        # Measured: llama-cpp-python's server answers echo+logprobs with each prompt token's
        # log-probability taken from the position after it (off by one on models without BOS),
        # and llama-server gives none for the prompt; no server here scores a text correctly.
        raise RemoteError(f"the server at {self.api.shown} cannot score a text (OpenAI-compatible servers give "
                          "log-probabilities of what they generate, not reliably of a given text): run "
                          "perplexity on a local model (-m NAME or --server local)")

    # -- generation -----------------------------------------------------------

    def chat(self, messages: Sequence[Message], params: Params, *, schema: dict[str, Any] | None = None,
             tools: Sequence[Tool] | None = None, tool_choice: str | None = None) -> Reply:
        body: dict[str, Any] = {"messages": [_wire_message(m) for m in messages]}
        if schema is not None:
            body["response_format"] = self._response_format(schema)
        if params.thinking in ("on", "off"):  # llama-server and vLLM hand this to the model's template
            body["chat_template_kwargs"] = {"enable_thinking": params.thinking == "on"}
        if tools:
            body["tools"] = [t.openai() for t in tools]
            if tool_choice in ("auto", "none", "required"):
                body["tool_choice"] = tool_choice
            elif tool_choice:
                body["tool_choice"] = {"type": "function", "function": {"name": tool_choice}}
        reply = self._reply("/chat/completions", body, self.count_chat_tokens(messages, tools=tools), params)
        reply.split_thinking(ThinkSplitter())
        if tools:
            # a server that renders the tools but does not parse the reply (llama-cpp-python's with
            # tool_choice "auto") hands back the call as text: it is read as the Hermes shape most models use
            from gptterm.engine.tool_formats import HERMES
            from gptterm.engine.tool_stream import CallSplitter

            reply.split_calls(CallSplitter(HERMES))
        return reply

    def complete(self, prompt: str, params: Params, *, schema: dict[str, Any] | None = None) -> Reply:
        body: dict[str, Any] = {"prompt": prompt}
        if schema is not None:
            # no response_format for completions: llama.cpp's servers (llama-server, llama-cpp-python) take a grammar
            body["grammar"] = schemas.grammar(schema)
        return self._reply("/completions", body, self.count_tokens(prompt), params)

    def _response_format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self._schema_style == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
        return {"type": "json_object", "schema": schema}  # llama-cpp-python's server (and Anyscale's)

    def cancel(self) -> None:
        flight = self._flight
        if flight is not None:
            flight.cancel()

    def close(self) -> None:
        self.cancel()
        self.api.close()

    def _reply(self, path: str, body: dict[str, Any], n_prompt: int, params: Params) -> Reply:
        if n_prompt >= self.n_ctx:
            raise ContextOverflowError(
                f"the prompt is {n_prompt} tokens but the context holds {self.n_ctx}",
                prompt_tokens=n_prompt, n_ctx=self.n_ctx, reply_tokens=0,
            )
        seed = params.seed if params.seed is not None else secrets.randbelow(2**32 - 1)
        flight = self._flight = _Flight()
        request = {**body, "model": self.model, "stream": True, "stream_options": {"include_usage": True},
                   "temperature": params.temperature, "top_p": params.top_p, "seed": seed,
                   "max_tokens": max(1, min(params.max_tokens, self.n_ctx - n_prompt)),
                   "top_k": params.top_k, "min_p": params.min_p, "repeat_penalty": params.repeat_penalty}
        if params.logprobs:
            chat = path == "/chat/completions"
            request.update({"logprobs": True, "top_logprobs": params.logprobs} if chat
                           else {"logprobs": params.logprobs})
        return Reply(lambda reply: self._generate(reply, flight, path, request),
                     prompt_tokens=n_prompt, seed=seed)

    def _pump(self, flight: _Flight, out: queue.SimpleQueue[Any], path: str, request: dict[str, Any]) -> None:
        opened: list[Any] = []

        def on_open(response: Any) -> None:
            opened.append(response)
            flight.opened(response)

        try:
            with self.api.events(path, request, stop=flight.stop, on_open=on_open) as events:
                for event in events:
                    out.put(event)
                    if flight.stop.is_set():
                        break
        except BaseException as err:  # handed to the reading thread
            out.put(err)
        finally:
            if opened:
                flight.closed(opened[0])
            out.put(_END)

    def _start(self, flight: _Flight, path: str, request: dict[str, Any]) -> None:
        if self._standard_only:
            request = {k: v for k, v in request.items() if k not in EXTENSION_PARAMS}
        threading.Thread(target=self._pump, args=(flight, flight.events, path, request), name="gptterm-remote",
                         daemon=True).start()

    def _generate(self, reply: Reply, flight: _Flight, path: str, request: dict[str, Any]) -> Iterator[str]:
        stats = reply.stats
        chat = path == "/chat/completions"
        finish: str | None = None
        t0 = time.perf_counter()
        t_first = t_last = None
        n = 0
        in_reasoning = False
        #: the streamed tool calls, by index: their id, name and argument text so far
        calls: dict[int, dict[str, str]] = {}
        if "logprobs" in request:
            reply.logprobs = []
        with self._busy:
            if flight.stop.is_set():
                reply.finish_reason = "cancelled"
                return
            self._start(flight, path, request)
            try:
                while True:
                    item = flight.events.get()
                    if flight.stop.is_set():
                        finish = "cancelled"
                        break
                    if item is _END:
                        break
                    if isinstance(item, BaseException):
                        if isinstance(item, StreamDropped) and finish is not None:
                            break  # ended without [DONE] after saying why it finished: fine
                        if (not self._standard_only and n == 0 and isinstance(item, RemoteError)
                                and any(p in str(item) for p in EXTENSION_PARAMS)):
                            self._standard_only = True  # an OpenAI-strict server: try again without them
                            flight.events = queue.SimpleQueue()
                            self._start(flight, path, request)
                            continue
                        if (n == 0 and isinstance(item, RemoteError) and self._schema_style == "json_schema"
                                and "response_format" in request
                                and any(w in str(item) for w in ("json_object", "json_schema", "response_format"))):
                            self._schema_style = "json_object"  # a server that knows only json_object (+ schema)
                            schema = request["response_format"]["json_schema"]["schema"]
                            request = {**request, "response_format": self._response_format(schema)}
                            flight.events = queue.SimpleQueue()
                            self._start(flight, path, request)
                            continue
                        raise self._explain(item, n, stats.prompt_tokens)
                    usage = item.get("usage")
                    if isinstance(usage, dict):
                        self._take_usage(stats, usage)
                    timings = item.get("timings")
                    if isinstance(timings, dict) and isinstance(timings.get("cache_n"), int):
                        stats.cached_tokens = timings["cache_n"]
                    choices = item.get("choices") or []
                    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
                    if chat:
                        delta = choice.get("delta")
                        text = delta.get("content") if isinstance(delta, dict) else None
                        # a server that parses the <think> block itself sends it as reasoning_content:
                        # put back in its tags, the reply's splitter keeps it apart from the answer
                        reasoning = delta.get("reasoning_content") if isinstance(delta, dict) else None
                        if reasoning and not in_reasoning:
                            in_reasoning = True
                            reasoning = "<think>" + str(reasoning)
                        if in_reasoning and text:
                            in_reasoning = False
                            text = "</think>" + str(text)
                        if reasoning:
                            text = str(reasoning) + (text or "")
                    else:
                        text = choice.get("text")
                    if reply.logprobs is not None:
                        reply.logprobs.extend(_logprobs(choice.get("logprobs")))
                    if chat and isinstance(delta, dict) and _take_tool_calls(calls, delta.get("tool_calls")):
                        t_last = time.perf_counter()
                        if t_first is None:
                            t_first = t_last
                            stats.ttft_s = t_first - t0
                        n += 1
                        stats.completion_tokens = max(stats.completion_tokens, n)
                    if text:
                        t_last = time.perf_counter()
                        if t_first is None:
                            t_first = t_last
                            stats.ttft_s = t_first - t0
                        n += 1
                        stats.completion_tokens = max(stats.completion_tokens, n)
                        yield str(text)
                    reason = choice.get("finish_reason")
                    if reason:
                        finish = "length" if reason == "length" else "stop"
            finally:
                flight.cancel()  # no-op after a clean end; stops the server if the reply was abandoned
                stats.total_s = time.perf_counter() - t0
                if t_first is not None and t_last is not None:
                    stats.decode_s = t_last - t_first
        if finish is None:
            # [DONE] without a finish reason: count it as a natural end.
            finish = "stop"
        reply.finish_reason = finish
        if calls:
            reply.tool_calls.extend(calls_of({"tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for _, c in sorted(calls.items())]}))

    @staticmethod
    def _take_usage(stats: Any, usage: dict[str, Any]) -> None:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int) and prompt > 0:
            stats.prompt_tokens = prompt
        if isinstance(completion, int) and completion > 0:
            stats.completion_tokens = completion
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
            stats.cached_tokens = details["cached_tokens"]

    def _explain(self, err: BaseException, n: int, n_prompt: int) -> BaseException:
        if isinstance(err, RemoteContextError):
            if err.n_ctx:
                self._n_ctx = min(self._n_ctx, err.n_ctx)
            return ContextOverflowError(
                f"{err}; gptterm now assumes {self.n_ctx} tokens (set ctx in the server profile or --ctx)",
                prompt_tokens=n_prompt, n_ctx=self.n_ctx, reply_tokens=0)
        if isinstance(err, StreamDropped):
            if n:
                return StreamDropped(err.server, f"{err.reason}; after {n} tokens")
            return StreamDropped(
                err.server, f"{err.reason}; before any text: if the prompt ({n_prompt} tokens) is longer than the "
                f"server's context (assumed {self.n_ctx}), set the profile's ctx or --ctx to the server's size")
        return err
