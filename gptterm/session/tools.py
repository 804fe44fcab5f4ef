"""The tools a session's conversations may call: named by the ``tools`` parameter (built-ins and the config
file's ``[mcp.NAME]`` servers) and ``--mcp`` (servers for one run), made into one ``ToolBox`` and kept while
those settings stay the same (MCP servers start once, not at every message)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gptterm.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from gptterm.settings import Config, Params
    from gptterm.tools.builtin import DocsScope
    from gptterm.tools.mcp_client import McpServerSpec
    from gptterm.tools.registry import ToolBox


@dataclass
class ToolSettings:
    """What a face was told for its whole run: servers for this run, and what runs without asking."""

    #: --mcp: servers for this run (their tools are offered without naming them in ``tools``)
    servers: list[McpServerSpec] = field(default_factory=list)
    #: --approve NAME (or mcp:SERVER)
    approved: set[str] = field(default_factory=set)
    #: --yes
    yes: bool = False


def wanted(params: Params, config: Config, settings: ToolSettings) -> tuple[list[str], list[McpServerSpec]]:
    """The built-ins and MCP servers the ``tools`` parameter names (with --mcp's); a UsageError for a name
    that is neither."""
    # subprocess, html: only a session with tools needs them (this module is on --help's path)
    from gptterm.tools.builtin import BUILTINS

    builtins: list[str] = []
    servers: list[McpServerSpec] = list(settings.servers)
    for name in params.tools or ():
        server = name.removeprefix("mcp:")
        if name in BUILTINS:
            builtins.append(name)
        elif server in config.mcp:
            servers.append(configured_server(config, server))
        else:
            known = ", ".join(BUILTINS) + (f"; MCP servers in the config file: {', '.join(config.mcp)}"
                                           if config.mcp else "")
            raise UsageError(f"unknown tool {name!r}: the built-in tools are {known}")
    return builtins, servers


def configured_server(config: Config, name: str) -> McpServerSpec:
    """The config file's ``[mcp.NAME]`` server, checked (one line naming the file when it is wrong)."""
    # asyncio (the MCP client): only a configured server needs it (this module is on --help's path)
    from gptterm.tools.mcp_client import check_mcp_table

    values = dict(config.mcp[name])
    if values.pop("enabled", True) is False:
        raise ConfigError(f"{config.path}: mcp.{name} has enabled = false: set it to true to use the server")
    return check_mcp_table(name, values, str(config.path))


class SessionTools:
    """The one ToolBox of a session, made when a conversation first needs it (MCP servers start then)."""

    def __init__(self, settings: ToolSettings | None = None) -> None:
        self.settings = settings or ToolSettings()
        self._box: ToolBox | None = None
        self._key: Any = None
        self._failures_said = True

    def box(self, params: Params, config: Config, docs: DocsScope | None = None) -> ToolBox | None:
        """The tools for these settings (None: none asked for); made again when they changed."""
        builtins, servers = wanted(params, config, self.settings)
        if not builtins and not servers:
            self.close()
            return None
        key = (tuple(builtins), tuple(servers), tuple(params.allow or ()), id(docs))
        if self._box is None or key != self._key:
            # asyncio (the MCP client): only a session with tools builds its box (this module is on --help's path)
            from gptterm.tools.registry import build_toolbox

            self.close()
            self._box = build_toolbox(builtins, allow=list(params.allow or ()), mcp=servers, docs=docs)
            self._key = key
            self._failures_said = False
            if not builtins and not self._box.tools and self._box.failures:
                box, self._box, self._key = self._box, None, None
                box.close()  # every tool asked for is on a server that did not start: say it, do not go on
                raise UsageError("no tool could be offered: " + "; ".join(box.failures))
        return self._box

    def new_failures(self) -> list[str]:
        """What the user should hear once after the tools were made, one line each: the MCP servers that did not
        start, and the --approve names that match no tool offered."""
        if self._box is None or self._failures_said:
            return []
        self._failures_said = True
        offered = {tool.name for tool in self._box.tools} | {tool.source for tool in self._box.tools}
        unknown = sorted(self.settings.approved - offered)
        # a misspelt --approve would leave the tool asking (or refused in a pipe) with no word why
        return ([f"MCP server not started: {line}" for line in self._box.failures]
                + [f"--approve {name}: no tool of that name is offered" for name in unknown])

    def close(self) -> None:
        box, self._box, self._key = self._box, None, None
        if box is not None:
            box.close()
