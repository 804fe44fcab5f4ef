"""Running the tools the model calls: built-ins, MCP servers, and who may run what.

``registry`` holds the ``ToolBox`` of one conversation; ``builtin`` the tools
gptterm brings; ``mcp_client`` the MCP servers (official ``mcp`` SDK);
``permissions`` the approval policy. The data (Tool, ToolCall, ToolResult)
is plain and lives in ``gptterm.types``; how each model family writes a call
and how calls and results go back into its prompt belong to the engine
(``engine/tool_formats.py``, ``tool_stream.py``, ``tool_render.py``).
"""
