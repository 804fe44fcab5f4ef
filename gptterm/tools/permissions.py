"""Who may run which tool: the permission policy of tool calls.

- A tool that only reads (the built-in readers; an MCP tool annotated
  ``readOnlyHint: true``) runs without asking.
- Every other tool asks first: yes, no, or always (for the rest of this
  conversation). ``run_shell`` asks for each command: "always" answers yes
  to that one command only.
- ``--approve NAME`` (repeatable; ``mcp:SERVER`` approves every tool of a
  server) and ``--yes`` (everything) answer before anything is asked.
- Where nothing can ask (a pipe, ``--json``), a tool that would ask is
  refused: the model gets the refusal as the tool's result, the face shows
  the same one line.

Each face supplies ``ask(call, tool)``: "yes", "no", "always", or None when
it has no way to ask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

from gptterm.types import Tool, ToolCall

Answer = Literal["yes", "no", "always"]
Ask = Callable[[ToolCall, Tool], "Answer | None"]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    #: why a call was refused (the one line shown, and the result the model gets); "" when allowed
    reason: str = ""
    #: how it was allowed: "read-only", "approved" (--approve / --yes / always), "asked"
    how: str = ""


@dataclass
class Approvals:
    """The approvals of one conversation."""

    #: tool names (and ``mcp:SERVER``) given with --approve
    approved: set[str] = field(default_factory=set)
    #: --yes: every tool runs without asking
    yes: bool = False
    #: tools answered "always" in this conversation
    always: set[str] = field(default_factory=set)

    def needs_asking(self, tool: Tool) -> bool:
        if tool.read_only or self.yes or tool.name in self.approved or tool.source in self.approved:
            return False
        return tool.confirm_each or tool.name not in self.always

    def decide(self, call: ToolCall, tool: Tool | None, ask: Ask | None) -> Verdict:
        """Whether ``call`` may run, asking through ``ask`` where the policy wants a yes."""
        if tool is None or call.error:
            return Verdict(True, how="nothing to run")  # the registry answers with the error itself
        if tool.read_only:
            return Verdict(True, how="read-only")
        if not self.needs_asking(tool):
            return Verdict(True, how="approved")
        answer = ask(call, tool) if ask is not None else None
        if answer is None:
            return Verdict(False, f"{tool.name} needs approval and there is no terminal to ask: give --approve "
                                  f"{tool.name} (or --yes) to let it run")
        if answer == "always":
            if not tool.confirm_each:
                self.always.add(tool.name)
            return Verdict(True, how="asked")
        if answer == "yes":
            return Verdict(True, how="asked")
        return Verdict(False, f"the user declined to run {tool.name}")
