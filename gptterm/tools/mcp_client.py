"""MCP servers as tools, through the official ``mcp`` SDK (2.x): stdio and streamable HTTP.

gptterm is synchronous (thread workers), the SDK is asyncio: one ``McpHub``
runs one event loop in a background thread for all the servers of a
``ToolBox``, and hands out blocking calls with time limits. Each server lives
in one task that enters the SDK's ``Client`` and waits until the hub closes,
inside one anyio cancel scope: its deadline is the start timeout (a server
that never answers the handshake is cancelled there, and the SDK's transport
still stops its process), then it is lifted. Everything that can go wrong
becomes one line: a server that fails to start is a line in ``failures``
(with the last thing it wrote on stderr), a call that fails, hangs past its
time limit or answers garbage is a ``ToolResult`` with ``error`` set.

A server's stderr goes to a temporary file, never to the terminal (the TUI
draws on stderr); the SDK's log records are caught too (it logs tracebacks
for a stdout that is not JSON-RPC).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import logging
import math
import os
import re
import shlex
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from gptterm.errors import ConfigError, UsageError
from gptterm.types import Tool, ToolResult

#: seconds a server has to start and list its tools
START_TIMEOUT = 20.0
#: seconds for the SDK to stop a server (it closes stdin, then terminates, then kills)
STOP_TIMEOUT = 8.0
NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
MCP_KEYS: dict[str, tuple[type, ...]] = {
    "command": (str,), "args": (list,), "env": (dict,), "cwd": (str,),
    "url": (str,), "headers": (dict,), "timeout": (int, float), "enabled": (bool,),
}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class McpServerSpec:
    """How to reach one MCP server: a command (stdio) or a URL (streamable HTTP)."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    #: added to the few variables the SDK passes on (HOME, PATH, …); values may say ${VAR}
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    #: HTTP headers (values may say ${VAR}, so that a token stays in the environment, not the config file)
    headers: Mapping[str, str] = field(default_factory=dict)
    #: seconds to start and list tools
    timeout: float = START_TIMEOUT

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    def shown(self) -> str:
        """What the server is, for ``gptterm tools`` and failure lines (no header values: they hold tokens)."""
        if self.url:
            return self.url
        return " ".join(shlex.quote(p) for p in (self.command or "", *self.args))


def check_mcp_table(name: str, values: Mapping[str, Any], where: str) -> McpServerSpec:
    """A ``[mcp.NAME]`` table of the config file as a spec; a ConfigError that says what is wrong."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: mcp.{name} must be a table ([mcp.{name}])")
    if not NAME.match(name):
        raise ConfigError(f"{where}: mcp.{name}: a server name is letters, digits, '-' and '_' (at most 40)")
    for key, value in values.items():
        if key not in MCP_KEYS:
            raise ConfigError(f"{where}: mcp.{name}: unknown key {key!r}; known: {', '.join(MCP_KEYS)}")
        types = MCP_KEYS[key]
        if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
            raise ConfigError(f"{where}: mcp.{name}.{key} must be {' or '.join(_type_name(t) for t in types)}")
    command, url = values.get("command"), values.get("url")
    if bool(command) == bool(url):
        raise ConfigError(f"{where}: mcp.{name} needs either command (a server run over stdio) or url "
                          "(streamable HTTP), not both")
    if url and not str(url).startswith(("http://", "https://")):
        raise ConfigError(f"{where}: mcp.{name}.url must be an http:// or https:// URL")
    for key in ("args",):
        if not all(isinstance(a, str) for a in values.get(key, [])):
            raise ConfigError(f"{where}: mcp.{name}.{key} must be a list of strings")
    for key in ("env", "headers"):
        table = values.get(key, {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
            raise ConfigError(f"{where}: mcp.{name}.{key} must be a table of strings")
    if url and (values.get("args") or values.get("env") or values.get("cwd")):
        raise ConfigError(f"{where}: mcp.{name}: args, env and cwd are for a command; a url server takes headers")
    if command and values.get("headers"):
        raise ConfigError(f"{where}: mcp.{name}: headers are for a url server")
    timeout = float(values.get("timeout", START_TIMEOUT))
    if timeout <= 0:
        raise ConfigError(f"{where}: mcp.{name}.timeout must be more than 0 seconds")
    return McpServerSpec(name, command=command or None, args=tuple(_home(a) for a in values.get("args", [])),
                         env=dict(values.get("env", {})), cwd=_home(values["cwd"]) if values.get("cwd") else None,
                         url=url or None, headers=dict(values.get("headers", {})), timeout=timeout)


def _type_name(t: type) -> str:
    return {str: "a string", list: "a list", dict: "a table", int: "a number", float: "a number",
            bool: "true or false"}[t]


def _home(arg: str) -> str:
    return os.path.expanduser(arg) if arg.startswith("~") else arg


_LAUNCHERS = {"npx", "bunx", "pnpx", "uvx", "pipx", "deno", "docker", "podman"}


def parse_mcp_command(text: str, name: str | None = None) -> McpServerSpec:
    """``--mcp 'npx -y @modelcontextprotocol/server-filesystem ~/notes'`` (a URL there: streamable HTTP);
    the server's name is ``name`` or made from the package or host (``filesystem``)."""
    stripped = text.strip()
    if not stripped:
        raise UsageError("--mcp needs a command that starts an MCP server, or its http(s):// URL")
    if stripped.startswith(("http://", "https://")):
        try:
            host = urlsplit(stripped).hostname or "server"
        except ValueError as err:
            raise UsageError(f"--mcp {stripped!r} is not a URL that can be read: {err}") from None
        label = host.replace(".", "-") if host.replace(".", "").isdigit() else host.split(".")[0]
        return McpServerSpec(_clean_name(name or label), url=stripped)
    try:
        parts = shlex.split(stripped)
    except ValueError as err:
        raise UsageError(f"cannot read the --mcp command {stripped!r}: {err}") from None
    command, args = parts[0], tuple(_home(a) for a in parts[1:])
    return McpServerSpec(_clean_name(name or _guess_name(command, args)), command=_home(command), args=args)


def _guess_name(command: str, args: tuple[str, ...]) -> str:
    base = os.path.basename(command)
    words = [a for a in args if not a.startswith("-")]
    if base in _LAUNCHERS and words:
        words = [w for w in words if w not in ("run", "x")] or words
        target = words[0]
    elif base.startswith("python") and "-m" in args and args.index("-m") + 1 < len(args):
        target = args[args.index("-m") + 1]
    elif base.startswith(("python", "node", "bun")) and words:
        target = os.path.splitext(os.path.basename(words[0]))[0]
    else:
        target = base
    target = target.rsplit("/", 1)[-1].split("@")[0] or target
    for affix in ("mcp-server-", "server-", "mcp-", "mcp_"):
        target = target.removeprefix(affix)
    for affix in ("-mcp-server", "-mcp", "_mcp", "-server"):
        target = target.removesuffix(affix)
    return target or "server"


def _clean_name(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40]
    return cleaned or "server"


def _expand(values: Mapping[str, str], what: str, server: str) -> dict[str, str]:
    out = {}
    for key, value in values.items():
        for var in _ENV_REF.findall(value):
            if var not in os.environ:
                raise _StartFailure(f"its {what} {key} uses ${{{var}}}, which is not set in the environment")
        out[key] = _ENV_REF.sub(lambda m: os.environ[m.group(1)], value)
    return out


class _StartFailure(Exception):
    pass


# -- the SDK's log -------------------------------------------------------------------------------

_server: contextvars.ContextVar[str | None] = contextvars.ContextVar("gptterm_mcp_server", default=None)


class _Log(logging.Handler):
    """Keeps the SDK's log records (one line each, no traceback) by the server whose task logged them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: dict[str | None, deque[str]] = {}
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage().splitlines()[0][:200] if record.getMessage() else ""
        except Exception:  # a record whose arguments do not format: keep nothing rather than fail
            return
        with self._guard:
            self.lines.setdefault(_server.get(), deque(maxlen=20)).append(text)

    def of(self, server: str) -> list[str]:
        with self._guard:
            return list(self.lines.get(server, ()))


_log: _Log | None = None


def _sdk_log() -> _Log:
    global _log
    if _log is None:
        _log = _Log()
        logger = logging.getLogger("mcp")
        logger.addHandler(_log)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # never onto the terminal (nor through Python's last-resort stderr handler)
    return _log


# -- the hub --------------------------------------------------------------------------------------


@dataclass
class McpTool:
    """A tool of one server: its name there, and the Tool the model sees (maybe renamed)."""

    server: str
    remote_name: str
    tool: Tool


class _Server:
    def __init__(self, spec: McpServerSpec) -> None:
        self.spec = spec
        self.client: Any = None
        self.stop: Any = None  # an anyio.Event, made in the loop
        self.alive = False
        self.errlog: Any = None
        self.started_s = 0.0


def _leaf(err: BaseException) -> BaseException:
    """The first real exception inside (anyio wraps task failures in exception groups)."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    return err


def _stderr_tail(errlog: Any) -> str:
    if errlog is None:
        return ""
    try:
        errlog.flush()
        errlog.seek(0)
        lines = [line.strip() for line in errlog.read()[-4000:].splitlines() if line.strip()]
    except (OSError, ValueError):
        return ""
    return lines[-1][:160] if lines else ""


class McpHub:
    """The MCP servers of one ToolBox, on one background event loop."""

    def __init__(self, specs: list[McpServerSpec]) -> None:
        self.servers = {s.name: _Server(s) for s in specs}
        #: one line per server that could not start, and why
        self.failures: list[str] = []
        self.tools: list[McpTool] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gptterm-mcp", daemon=True)
        self._thread.start()
        self._running: set[Any] = set()  # cancel scopes of the calls in flight
        self._closed = False

    # -- starting ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start every server (at once) and list their tools; failures become lines in ``failures``."""
        # the SDK's import takes about a second: here, before the start timeouts begin
        import mcp  # noqa: F401
        import mcp.client.stdio  # noqa: F401
        import mcp.client.streamable_http  # noqa: F401

        log = _sdk_log()
        t0 = time.monotonic()
        waits: dict[str, concurrent.futures.Future[list[McpTool]]] = {}
        for name, server in self.servers.items():
            waits[name] = concurrent.futures.Future()
            asyncio.run_coroutine_threadsafe(self._serve(server, waits[name]), self._loop)
        for name, server in self.servers.items():
            # a server that misses its deadline is reported now; the SDK stops its process in the background
            left = t0 + server.spec.timeout + 0.5 - time.monotonic()
            try:
                listing = waits[name].result(timeout=max(0.0, left))
            except concurrent.futures.TimeoutError:
                self.failures.append(f"mcp.{name}: " + self._why(server, log,
                                                                 f"did not answer within {server.spec.timeout:g} s"))
                continue
            except _StartFailure as err:
                self.failures.append(f"mcp.{name}: {err}")
                continue
            self.tools += listing

    async def _serve(self, server: _Server, ready: concurrent.futures.Future[list[McpTool]]) -> None:
        import anyio  # anyio (~2 ms): only a running server needs it, and this module loads with every conversation

        spec = server.spec
        _server.set(spec.name)
        log = _sdk_log()
        t0 = time.perf_counter()
        started = False
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + spec.timeout) as scope:
                server.stop = anyio.Event()
                async with self._client(server) as client:
                    listing = await self._list(client, spec.name)
                    scope.deadline = math.inf  # started: no deadline from here on
                    server.client, server.alive, started = client, True, True
                    server.started_s = time.perf_counter() - t0
                    ready.set_result(listing)
                    await server.stop.wait()
            if not started and scope.cancelled_caught:
                raise _StartFailure(self._why(server, log, f"did not answer within {spec.timeout:g} s"))
            if not started:
                raise _StartFailure(self._why(server, log, "closed the connection before listing its tools"))
        except BaseException as err:  # anything a server can do at start becomes its one line
            server.alive = False
            if started or ready.done():
                return
            leaf = _leaf(err)
            if isinstance(leaf, _StartFailure):
                ready.set_exception(leaf)
            elif isinstance(leaf, FileNotFoundError):
                ready.set_exception(_StartFailure(f"cannot start {spec.command!r}: no such program (is it "
                                                  "installed and on PATH?)"))
            else:
                ready.set_exception(_StartFailure(self._why(server, log, _describe(leaf))))
        finally:
            server.alive = False
            if server.errlog is not None:
                server.errlog.close()

    def _client(self, server: _Server) -> Any:
        import httpx2  # heavy: mcp, httpx2 (~0.7 s): only starting a server pays for them
        from mcp import Client
        from mcp.client.stdio import StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client

        spec = server.spec
        if spec.url:
            headers = _expand(spec.headers, "header", spec.name)
            http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
            return _Closing(Client(streamable_http_client(spec.url, http_client=http)), http)
        env = _expand(spec.env, "env", spec.name)
        server.errlog = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        params = StdioServerParameters(command=spec.command or "", args=list(spec.args), env=env or None,
                                       cwd=spec.cwd, encoding_error_handler="replace")
        return Client(stdio_client(params, errlog=server.errlog))

    async def _list(self, client: Any, server: str) -> list[McpTool]:
        out: list[McpTool] = []
        cursor = None
        for _ in range(100):  # pages; a server that never ends its listing cannot hang the start
            page = await client.list_tools(cursor=cursor)
            for t in page.tools:
                annotations = t.annotations
                read_only = bool(annotations is not None and annotations.read_only_hint)
                schema = t.input_schema if isinstance(t.input_schema, dict) else {"type": "object"}
                out.append(McpTool(server, t.name, Tool(t.name, t.description or "", schema, read_only=read_only,
                                                        source=f"mcp:{server}")))
            cursor = page.next_cursor
            if not cursor:
                break
        return out

    def _why(self, server: _Server, log: _Log, what: str) -> str:
        said = _stderr_tail(server.errlog) if not server.errlog or not server.errlog.closed else ""
        sdk = [line for line in log.of(server.spec.name) if "JSONRPC" in line or "parse" in line.lower()]
        if sdk:
            what += " (it wrote something that is not JSON-RPC on stdout)"
        if said:
            what += f"; it said: {said}"
        return what

    # -- calling ------------------------------------------------------------------------------

    def call(self, entry: McpTool, arguments: dict[str, Any], *, timeout: float) -> ToolResult:
        """Call the tool; never raises (a failure, a hang past ``timeout``, garbage: an error result)."""
        server = self.servers[entry.server]
        t0 = time.perf_counter()

        def result(text: str, error: bool) -> ToolResult:
            return ToolResult("", entry.tool.name, text, error, time.perf_counter() - t0)

        if self._closed or not server.alive or server.client is None:
            return result(f"the MCP server {entry.server} is not running (it stopped earlier)", True)
        future = asyncio.run_coroutine_threadsafe(self._call(server, entry, arguments, timeout), self._loop)
        try:
            text, error = future.result(timeout=timeout + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return result(f"{entry.tool.name} did not answer within {timeout:g} s", True)
        except concurrent.futures.CancelledError:
            return result("the call was stopped", True)
        except Exception as err:  # the hub's own failure: still one line
            return result(f"the call to the MCP server {entry.server} failed: {_describe(err)}", True)
        return result(text, error)

    async def _call(self, server: _Server, entry: McpTool, arguments: dict[str, Any],
                    timeout: float) -> tuple[str, bool]:
        import anyio  # anyio (~2 ms): only a running server needs it, and this module loads with every conversation

        _server.set(server.spec.name)
        with anyio.CancelScope(deadline=anyio.current_time() + timeout) as scope:
            self._running.add(scope)
            try:
                answer = await server.client.call_tool(entry.remote_name, arguments, read_timeout_seconds=timeout)
            except Exception as err:
                leaf = _leaf(err)
                if not server.alive or _closed(leaf):
                    server.alive = False  # later calls are refused at once
                    said = _stderr_tail(server.errlog) if server.errlog is not None and not server.errlog.closed else ""
                    return (f"the MCP server {entry.server} stopped during the call ({_describe(leaf)})"
                            + (f"; it said: {said}" if said else "")), True
                return f"{entry.tool.name} failed: {_describe(leaf)}", True
            finally:
                self._running.discard(scope)
        if scope.cancelled_caught:
            if scope.cancel_called and scope.deadline == math.inf:
                return "the call was stopped", True
            return f"{entry.tool.name} did not answer within {timeout:g} s", True
        return content_text(answer), bool(getattr(answer, "is_error", False))

    def cancel(self) -> None:
        """Stop the calls in flight (from any thread)."""
        def stop() -> None:
            for scope in list(self._running):
                scope.deadline = math.inf  # marks it as stopped, not timed out
                scope.cancel()

        if not self._closed:
            self._loop.call_soon_threadsafe(stop)

    def close(self) -> None:
        """Stop every server (the SDK closes stdin, then terminates, then kills) and the loop."""
        if self._closed:
            return
        self._closed = True

        async def stop_all() -> None:
            for server in self.servers.values():
                if server.stop is not None:
                    server.stop.set()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if pending:
                await asyncio.wait(pending, timeout=STOP_TIMEOUT)

        try:
            asyncio.run_coroutine_threadsafe(stop_all(), self._loop).result(timeout=STOP_TIMEOUT + 2)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=2)
        if not self._thread.is_alive():
            self._loop.close()


class _Closing:
    """An SDK Client that also closes the httpx client it was given."""

    def __init__(self, client: Any, http: Any) -> None:
        self.client, self.http = client, http

    async def __aenter__(self) -> Any:
        try:
            return await self.client.__aenter__()
        except BaseException:
            await self.http.aclose()
            raise

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.client.__aexit__(*exc)
        finally:
            await self.http.aclose()


def _closed(err: BaseException) -> bool:
    """Whether ``err`` says the connection to the server is gone."""
    import anyio  # anyio (~2 ms): only a running server needs it, and this module loads with every conversation

    if isinstance(err, (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, ConnectionError)):
        return True
    return getattr(err, "message", None) == "Connection closed" or type(err).__name__ in ("RemoteProtocolError",
                                                                                         "ReadError")


def _describe(err: BaseException) -> str:
    """One line for an exception from the SDK, a transport or a server."""
    try:
        from mcp.shared.exceptions import MCPError  # heavy: mcp (only describing a server's error needs it)
    except ImportError:  # pragma: no cover - the SDK is a dependency
        MCPError = ()  # type: ignore[assignment,misc]
    if isinstance(err, MCPError):
        if err.message == "Connection closed":
            return "it closed the connection (the server exited?)"
        return err.message or f"MCP error {err.code}"
    if type(err).__name__ == "ConnectError":
        return "cannot connect (is the server running, and is the URL right?)"
    try:
        from pydantic import ValidationError  # pydantic (~30 ms, with mcp): only describing a server's error needs it
    except ImportError:  # pragma: no cover
        ValidationError = ()  # type: ignore[assignment,misc]
    if isinstance(err, ValidationError):
        return "its answer is not a valid MCP message"
    if isinstance(err, TimeoutError):
        return "timed out"
    text = " ".join(str(err).split())[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def content_text(answer: Any) -> str:
    """A CallToolResult as text for the model: its text parts, resources' text, and a note for what is not
    text (images, audio); the structured content when there is nothing else."""
    parts: list[str] = []
    for block in getattr(answer, "content", None) or ():
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            size = len(getattr(block, "data", "") or "") * 3 // 4
            parts.append(f"[{kind} ({block.mime_type}, about {size:,} bytes): not shown to the model]")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[binary resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[resource: {block.uri}]")
    if not parts and getattr(answer, "structured_content", None) is not None:
        parts.append(json.dumps(answer.structured_content, ensure_ascii=False))
    return "\n".join(parts)
