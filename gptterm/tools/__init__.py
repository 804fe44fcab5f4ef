"""Tools the model can call: built-ins, MCP servers, the permission policy, and the call formats.

``base`` holds the plain data (Tool, ToolCall, ToolResult); ``registry`` the
``ToolBox`` of one conversation; ``builtin`` the tools gptterm brings;
``mcp_client`` the MCP servers (official ``mcp`` SDK); ``permissions`` who
may run what; ``formats`` how each model family writes a call, and
``render`` how calls and results go back into its prompt.
"""
