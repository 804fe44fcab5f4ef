"""The tools of one run or conversation: built-ins and MCP servers behind one ``ToolBox``.

``ToolBox.run`` never raises for anything a tool or a server does: an
unknown tool, arguments that do not match the tool's schema, a failure, a
hang past the time limit, garbage — each becomes a ``ToolResult`` with
``error`` set and one clear line for the model. A result longer than
``max_chars`` is cut, and says so.

Names: built-ins keep theirs. An MCP tool keeps its own name unless another
tool (a built-in or another server's) has it too; then it is called
``SERVER__TOOL``. Names are made of letters, digits, ``_`` and ``-`` (at most
64, what OpenAI's API accepts); other characters become ``_``.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from gptterm.errors import UsageError
from gptterm.tools import builtin
from gptterm.types import Tool, ToolCall, ToolResult
from gptterm.tools.mcp_client import McpHub, McpServerSpec, McpTool

#: default time limit of one call, seconds
TIMEOUT = 60.0
#: default size of a result handed to the model, characters
MAX_CHARS = 16_000


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "tool"


def cut(text: str, max_chars: int) -> tuple[str, bool]:
    """``text`` cut to ``max_chars`` characters with a note saying so; whether it was cut."""
    if len(text) <= max_chars:
        return text, False
    note = f"\n[… cut: the result is {len(text):,} characters; only the first {max_chars:,} are shown]"
    return text[: max(0, max_chars - len(note))] + note, True


class ToolBox:
    def __init__(self, builtins: Sequence[builtin.Builtin] = (), hub: McpHub | None = None) -> None:
        self._builtins = {b.tool.name: b for b in builtins}
        self._hub = hub
        self._mcp: dict[str, McpTool] = {}
        #: one line per MCP server that could not start, and why
        self.failures: list[str] = list(hub.failures) if hub else []
        self.tools: list[Tool] = [b.tool for b in builtins]
        taken = Counter(t.name for t in self.tools)
        remote = hub.tools if hub else []
        taken.update(_safe_name(t.tool.name) for t in remote)
        for entry in remote:
            name = _safe_name(entry.tool.name)
            if taken[name] > 1:
                name = _safe_name(f"{entry.server}__{entry.tool.name}")
            while name in self._mcp or name in self._builtins:
                name = _safe_name(name + "_")
            tool = Tool(name, entry.tool.description, entry.tool.parameters, entry.tool.read_only, entry.tool.source)
            self._mcp[name] = McpTool(entry.server, entry.remote_name, tool)
            self.tools.append(tool)
        self._stop = threading.Event()

    def servers(self) -> list[dict[str, Any]]:
        """The MCP servers, for ``gptterm tools`` and --json: name, transport, what was started (never header
        values), whether it runs, how long its start took, and its tools' names here."""
        if self._hub is None:
            return []
        out = []
        for name, server in self._hub.servers.items():
            out.append({"name": name, "transport": server.spec.transport, "shown": server.spec.shown(),
                        "running": server.alive, "start_s": round(server.started_s, 3),
                        "tools": [n for n, e in self._mcp.items() if e.server == name]})
        return out

    def get(self, name: str) -> Tool | None:
        if name in self._builtins:
            return self._builtins[name].tool
        entry = self._mcp.get(name)
        return entry.tool if entry else None

    def run(self, call: ToolCall, *, timeout: float = TIMEOUT, max_chars: int = MAX_CHARS) -> ToolResult:
        """Run ``call``; every failure is an error result, never an exception."""
        t0 = time.perf_counter()
        self._stop.clear()
        try:
            text, error = self._run(call, timeout)
        except Exception as err:  # a bug of a tool must not end the conversation
            text, error = f"{call.name} failed: {type(err).__name__}: {err}", True
        content, truncated = cut(text, max_chars)
        return ToolResult(call.id, call.name, content, error, time.perf_counter() - t0, truncated)

    def _run(self, call: ToolCall, timeout: float) -> tuple[str, bool]:
        if call.error:
            return f"the call could not be read: {call.error}", True
        tool = self.get(call.name)
        if tool is None:
            known = ", ".join(t.name for t in self.tools) or "none"
            return f"there is no tool named {call.name!r}; the tools are: {known}", True
        problem = check_arguments(tool, call.arguments)
        if problem:
            return f"invalid arguments for {tool.name}: {problem}", True
        if call.name in self._builtins:
            return self._run_builtin(self._builtins[call.name], call.arguments, timeout)
        assert self._hub is not None
        result = self._hub.call(self._mcp[call.name], call.arguments, timeout=timeout)
        return result.content, result.error

    def _run_builtin(self, tool: builtin.Builtin, arguments: dict[str, Any], timeout: float) -> tuple[str, bool]:
        # in a thread of its own: a reader stuck on a slow disk or network cannot hold the loop past the limit
        out: list[tuple[str, bool]] = []

        def work() -> None:
            try:
                out.append((tool.run(arguments, self._stop, timeout), False))
            except builtin.Refused as err:
                out.append((str(err), True))
            except Exception as err:
                out.append((f"{tool.tool.name} failed: {type(err).__name__}: {err}", True))

        worker = threading.Thread(target=work, name=f"gptterm-tool-{tool.tool.name}", daemon=True)
        worker.start()
        worker.join(timeout + 2)  # run_shell and fetch_url keep the limit themselves; this is the backstop
        if not out:
            self._stop.set()
            return f"{tool.tool.name} did not finish within {timeout:g} s", True
        return out[0]

    def cancel(self) -> None:
        """Stop the running call (from any thread): it ends with an error result."""
        self._stop.set()
        if self._hub is not None:
            self._hub.cancel()

    def close(self) -> None:
        """Stop the MCP servers."""
        if self._hub is not None:
            self._hub.close()

    def __enter__(self) -> ToolBox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def check_arguments(tool: Tool, arguments: Any) -> str | None:
    """Why ``arguments`` do not match the tool's schema (one line), or None."""
    if not isinstance(arguments, dict):
        return "the arguments must be a JSON object"
    from jsonschema import exceptions, validators  # heavy: jsonschema (only checking a call's arguments pays for it)

    try:
        cls = validators.validator_for(tool.parameters)
        cls.check_schema(tool.parameters)
    except exceptions.SchemaError:
        return None  # a server's schema that is not valid JSON Schema: the server checks its own arguments
    error = exceptions.best_match(cls(tool.parameters).iter_errors(arguments))
    if error is None:
        return None
    at = "/".join(str(p) for p in error.absolute_path)
    return error.message + (f" (at /{at})" if at else "")


def build_toolbox(builtins: Sequence[str] = (), *, allow: Sequence[str | Path] = (),
                  mcp: Sequence[McpServerSpec] = (), docs: builtin.DocsScope | None = None,
                  max_file_bytes: int = builtin.MAX_FILE_BYTES) -> ToolBox:
    """The ToolBox of ``builtins`` (names), the readers limited to ``allow`` (default: the current directory),
    and the MCP servers of ``mcp`` (started here, in parallel; those that fail are lines in ``failures``).

    A UsageError for an unknown built-in, a missing --allow folder, or search_docs without ``docs``."""
    names = list(dict.fromkeys(n.strip() for n in builtins if n.strip()))
    folders = builtin.Folders(list(allow))
    made = [builtin.make(n, folders, docs, max_file_bytes) for n in names]
    seen: set[str] = set()
    for spec in mcp:
        if spec.name in seen:
            raise UsageError(f"two MCP servers are called {spec.name!r}: give each a name of its own")
        seen.add(spec.name)
    hub = None
    if mcp:
        hub = McpHub(list(mcp))
        try:
            hub.start()
        except BaseException:
            hub.close()
            raise
    return ToolBox(made, hub)
