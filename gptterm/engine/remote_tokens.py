"""Token counts for a remote model: the server's own tokenizer where it has one, else an estimate.

Context checks and chunking need counts in the model's tokens. Servers
expose them differently:

- llama-cpp-python's server: ``POST /extras/tokenize`` (special tokens parsed),
  ``/extras/tokenize/count``, ``/extras/detokenize``;
- llama.cpp's llama-server: ``POST /tokenize``, ``/detokenize`` and
  ``/apply-template`` (renders a chat with the model's own template);
- vLLM: ``POST /tokenize`` and ``/detokenize`` (chat messages too);
- plain OpenAI-style servers (Ollama, hosted APIs): nothing, so
  ``EstimatedTokens`` cuts text into pieces of at most ``BYTES_PER_TOKEN``
  UTF-8 bytes. Real tokenizers average about 4 bytes a token on English and
  code, so the estimate counts ~30% high there (the safety margin); CJK text
  (3 bytes a character) comes out at about a token a character.

Chat prompts: where the server cannot render its chat template, the
messages are counted as ChatML (the wrapper most instruct models use, parsed
as special tokens) plus ``CHAT_MARGIN`` tokens for what a template adds on
its own (a default system prompt, BOS).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Callable, Iterator, Sequence

from gptterm.types import Message
from gptterm.engine.openai_http import ServerAPI
from gptterm.errors import RemoteError

BYTES_PER_TOKEN = 3
CHAT_MARGIN = 32
CACHE_SIZE = 2048


def chatml(messages: Sequence[Message]) -> str:
    body = "".join(f"<|im_start|>{m['role']}\n{_text(m)}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def _text(m: Message) -> str:
    """A message's text, with the tool calls it made written out (they take room in the prompt too)."""
    content = m.get("content") or ""
    calls = m.get("tool_calls")
    if not calls:
        return content
    return content + "".join(f"<tool_call>\n{json.dumps(c.get('function', c), ensure_ascii=False)}\n</tool_call>"
                             for c in calls)


def tools_text(tools: Any) -> str:
    """Tool definitions as a server's template would put them in the prompt (JSON, one a line)."""
    return "\n".join(json.dumps(t.openai(), ensure_ascii=False) for t in tools)


class _Counts:
    """Memoized counts: chunking asks for the same pieces again and again."""

    def __init__(self, count: Callable[[str], int]):
        self._count = count
        self._cache: OrderedDict[str, int] = OrderedDict()

    def __call__(self, text: str) -> int:
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        n = self._count(text)
        self._cache[text] = n
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return n


class RemoteTokens:
    """The interface the engine uses; ``exact`` says whether counts come from the model's tokenizer."""

    name = "estimate"
    exact = False

    def __init__(self) -> None:
        self.count = _Counts(self._count)

    def tokenize(self, text: str) -> list[int]:
        raise NotImplementedError

    def detokenize(self, tokens: Sequence[int]) -> str:
        raise NotImplementedError

    def _count(self, text: str) -> int:
        return len(self.tokenize(text)) if text else 0

    def count_chat(self, messages: Sequence[Message]) -> int:
        return self.count(chatml(messages)) + CHAT_MARGIN

    def pieces(self, tokens: Sequence[int]) -> list[str]:
        """Each token's text, asked of the server one token at a time (no server has a batch call)."""
        if not self.exact:
            raise RemoteError("this server has no tokenizer endpoint: gptterm only estimates its token counts, so "
                              "it cannot show the model's own tokens")
        return [self.detokenize([t]) for t in tokens]

    def chat_tokens(self, messages: Sequence[Message]) -> list[int]:
        raise RemoteError("this server cannot render a chat with the model's own template, so the tokens of a chat "
                          "are unknown here (llama-server's /apply-template and vLLM's /tokenize can)")


class EstimatedTokens(RemoteTokens):
    """Pieces of at most BYTES_PER_TOKEN bytes (never splitting a character), interned as ids."""

    def __init__(self) -> None:
        super().__init__()
        self._ids: dict[str, int] = {}
        self._pieces: list[str] = []

    @staticmethod
    def split(text: str) -> Iterator[str]:
        piece, size = "", 0
        for ch in text:
            n = len(ch.encode("utf-8", "surrogatepass"))
            if piece and size + n > BYTES_PER_TOKEN:
                yield piece
                piece, size = "", 0
            piece += ch
            size += n
        if piece:
            yield piece

    def tokenize(self, text: str) -> list[int]:
        return [self._intern(piece) for piece in self.split(text)]

    def _intern(self, piece: str) -> int:
        token = self._ids.get(piece)
        if token is None:
            token = self._ids[piece] = len(self._pieces)
            self._pieces.append(piece)
        return token

    def detokenize(self, tokens: Sequence[int]) -> str:
        return "".join(self._pieces[t] for t in tokens)

    def _count(self, text: str) -> int:
        return sum(1 for _ in self.split(text))


class LlamaCppPythonTokens(RemoteTokens):
    name = "server (/extras/tokenize)"
    exact = True

    def __init__(self, api: ServerAPI, model: str):
        super().__init__()
        self.api, self.model = api, model

    def tokenize(self, text: str) -> list[int]:
        return _int_list(self.api.request_json("POST", "/extras/tokenize", {"input": text, "model": self.model},
                                               root=True).get("tokens"), "/extras/tokenize")

    def _count(self, text: str) -> int:
        if not text:
            return 0
        answer = self.api.request_json("POST", "/extras/tokenize/count", {"input": text, "model": self.model},
                                       root=True)
        return int(answer["count"])

    def detokenize(self, tokens: Sequence[int]) -> str:
        return str(self.api.request_json("POST", "/extras/detokenize", {"tokens": list(tokens), "model": self.model},
                                         root=True).get("text", ""))


class LlamaServerTokens(RemoteTokens):
    name = "server (/tokenize, /apply-template)"
    exact = True

    def __init__(self, api: ServerAPI):
        super().__init__()
        self.api = api

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        body = {"content": text, "add_special": False, "parse_special": special}
        return _int_list(self.api.request_json("POST", "/tokenize", body, root=True).get("tokens"), "/tokenize")

    def detokenize(self, tokens: Sequence[int]) -> str:
        return str(self.api.request_json("POST", "/detokenize", {"tokens": list(tokens)}, root=True).get("content", ""))

    def count_chat(self, messages: Sequence[Message]) -> int:
        rendered = self.api.request_json("POST", "/apply-template", {"messages": list(messages)}, root=True)
        prompt = rendered.get("prompt") if isinstance(rendered, dict) else None
        if not isinstance(prompt, str):
            return super().count_chat(messages)
        # +1: the BOS the server may add in front of a rendered chat
        return len(self.tokenize(prompt, special=True)) + 1

    def chat_tokens(self, messages: Sequence[Message]) -> list[int]:
        rendered = self.api.request_json("POST", "/apply-template", {"messages": list(messages)}, root=True)
        prompt = rendered.get("prompt") if isinstance(rendered, dict) else None
        if not isinstance(prompt, str):
            return super().chat_tokens(messages)
        return self.tokenize(prompt, special=True)


class VllmTokens(RemoteTokens):
    name = "server (/tokenize)"
    exact = True

    def __init__(self, api: ServerAPI, model: str):
        super().__init__()
        self.api, self.model = api, model

    def tokenize(self, text: str) -> list[int]:
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        return _int_list(self.api.request_json("POST", "/tokenize", body, root=True).get("tokens"), "/tokenize")

    def detokenize(self, tokens: Sequence[int]) -> str:
        body = {"model": self.model, "tokens": list(tokens)}
        return str(self.api.request_json("POST", "/detokenize", body, root=True).get("prompt", ""))

    def count_chat(self, messages: Sequence[Message]) -> int:
        body = {"model": self.model, "messages": list(messages), "add_generation_prompt": True}
        answer = self.api.request_json("POST", "/tokenize", body, root=True)
        return int(answer.get("count", len(answer.get("tokens", []))))

    def chat_tokens(self, messages: Sequence[Message]) -> list[int]:
        body = {"model": self.model, "messages": list(messages), "add_generation_prompt": True}
        return _int_list(self.api.request_json("POST", "/tokenize", body, root=True).get("tokens"), "/tokenize")


def _int_list(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(t, int) for t in value):
        raise RemoteError(f"unexpected answer from {where}: no list of tokens")
    return value


def detect(api: ServerAPI, model: str, props: dict[str, Any] | None) -> RemoteTokens:
    """The best token counter this server offers (one or two small probe requests)."""
    if props is not None:  # only llama-server answers /props
        if api.probe_json("POST", "/tokenize", {"content": "a", "add_special": False}) is not None:
            return LlamaServerTokens(api)
    if api.probe_json("POST", "/extras/tokenize/count", {"input": "a", "model": model}) is not None:
        return LlamaCppPythonTokens(api, model)
    answer = api.probe_json("POST", "/tokenize", {"model": model, "prompt": "a"})
    if isinstance(answer, dict) and "tokens" in answer:
        return VllmTokens(api, model)
    return EstimatedTokens()
