"""``gptterm tools``: every tool the model could be given — the built-ins and the tools of each MCP server
of the config file (and of --mcp) — with descriptions, argument schemas, and the servers that failed."""

from __future__ import annotations

import json
from typing import Any

from gptterm.cli.io import Status, note
from gptterm.cli.options import ToolsOptions
from gptterm.errors import GpttermError
from gptterm.session.tools import configured_server
from gptterm.settings import load_config
from gptterm.tools import builtin
from gptterm.tools.mcp_client import parse_mcp_command
from gptterm.tools.registry import build_toolbox


def run_tools(opts: ToolsOptions) -> int:
    config = load_config()
    servers, failures = [], []
    for name in config.mcp:
        try:
            servers.append(configured_server(config, name))
        except GpttermError as err:
            failures.append(f"mcp.{name}: {err}")
    servers += [parse_mcp_command(text) for text in opts.mcp]
    names = [n for n in builtin.BUILTINS if n != "search_docs"]  # search_docs needs documents to search
    with Status() as status:
        if servers:
            status.show(f"starting {len(servers)} MCP server{'s' if len(servers) > 1 else ''}…")
        box = build_toolbox(names, mcp=servers)
    with box:
        failures += box.failures
        rows = [_tool_json(t) for t in box.tools]
        rows.insert(2, {"name": "search_docs", "source": "built-in", "description": builtin.BUILTINS["search_docs"]
                        + " (with chat --docs)", "read_only": True, "asks": False, "parameters": None})
        if opts.json:
            print(json.dumps({"tools": rows, "servers": box.servers(), "failures": failures}, ensure_ascii=False))
            return 0
        for row in rows:
            how = "reads only" if row["read_only"] else "asks before each call" if row["asks"] else "asks first"
            network = " · reaches the network" if row["name"] in builtin.NETWORK else ""
            print(f"{row['name']}  ({row['source']}; {how}{network})")
            print(f"    {row['description']}")
            for arg in _arguments(row["parameters"]):
                print(f"    - {arg}")
        if not servers:
            note("no MCP server is configured: add [mcp.NAME] tables to the config file, or give --mcp COMMAND")
    for line in failures:
        note(line)
    note("the tools are off until named: gptterm -T read_file,list_dir … (MCP servers by their name)")
    return 0


def _tool_json(tool: Any) -> dict[str, Any]:
    return {"name": tool.name, "source": tool.source, "description": tool.description, "read_only": tool.read_only,
            "asks": tool.confirm_each, "parameters": tool.parameters}


def _arguments(schema: dict[str, Any] | None) -> list[str]:
    """One line per argument: name, type, required, description."""
    if not schema:
        return []
    required = set(schema.get("required") or ())
    out = []
    for name, spec in (schema.get("properties") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "any")
        need = "" if name in required else ", optional"
        about = f": {spec['description']}" if spec.get("description") else ""
        out.append(f"{name} ({kind}{need}){about}")
    return out
