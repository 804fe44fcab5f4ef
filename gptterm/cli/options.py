"""The command line, parsed once into a typed options object per command.

``cli/args.py`` declares the grammar (argparse); ``parse`` there hands the
namespace to ``from_namespace``, which turns it into the command's options
class below: the parameter flags into one ``params`` mapping (parsed and
validated once), repeated flags into tuples. A command's runner reads only
its own options' fields; a test holds every parser's destinations to its
options class, so a flag cannot be added to one and forgotten in the other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, TypeVar

from gptterm import textio
from gptterm.session import open_session
from gptterm.session.tools import ToolSettings
from gptterm.settings import PARAMS

if TYPE_CHECKING:
    import argparse

    from gptterm.session import Session

O = TypeVar("O", bound="Options")


@dataclass(frozen=True)
class Options:
    @classmethod
    def from_namespace(cls: type[O], ns: argparse.Namespace) -> O:
        given = vars(ns)
        names = {f.name for f in dataclasses.fields(cls)}
        # a command whose own flag shares a parameter's name (finetune's --ctx) reads it as its own field
        params = {p.name for p in PARAMS} - names
        unknown = set(given) - names - params
        if unknown:  # a flag declared in args.py that its options class does not know: a bug, said plainly
            raise TypeError(f"{cls.__name__} has no field for {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "params":
                values["params"] = param_overrides({k: v for k, v in given.items() if k in params})
            elif f.name in given:
                value = given[f.name]
                if value is None and f.default is not None and f.default is not dataclasses.MISSING:
                    continue  # not given: the field's default ("" for an optional name, say)
                values[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)

    def shared(self, cls: type[O], **changes: Any) -> O:
        """These options as ``cls`` (another command's), for the fields both have."""
        mine = {f.name for f in dataclasses.fields(self)}
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(cls) if f.name in mine}
        return cls(**{**values, **changes})


def param_overrides(given: Mapping[str, Any]) -> dict[str, Any]:
    """The parameter values given as flags, parsed and validated."""
    out: dict[str, Any] = {}
    for p in PARAMS:
        raw = given.get(p.name)
        if isinstance(raw, list):  # a flag that repeats (--lora): its values in order
            out[p.name] = tuple(item for r in raw for item in p.parse(textio.clean(r, p.flag)))
        elif raw is not None:  # an argument's undecodable bytes (--system $'caf\xe9') decoded, never surrogates
            out[p.name] = p.parse(textio.clean(raw, p.flag))
    return out


@dataclass(frozen=True)
class ModelOptions(Options):
    """What every command that uses a model shares: which one, where it runs, its parameters."""

    model: str | None = None
    server: str | None = None
    #: the parameter flags given (--temperature, --ctx, …), parsed: over the config file's values
    params: Mapping[str, Any] = field(default_factory=dict)
    encoding: str | None = None
    json: bool = False
    verbose: bool = False
    quiet: bool = False
    no_log: bool = False

    def session(self, *, log: bool = True) -> Session:
        """The session these options describe (no model loaded yet); ``log``: the command keeps a history
        (unless --no-log)."""
        return open_session(model=self.model, server=self.server, overrides=dict(self.params),
                            encoding=self.encoding, log=log and not self.no_log, quiet=self.quiet)


@dataclass(frozen=True)
class ReplyOptions(ModelOptions):
    """Commands that stream a model's reply (a prompt, the REPL, generate, ask)."""

    on_overflow: str = "error"
    show_probs: bool = False
    show_thinking: bool = False
    schema: str | None = None
    json_object: bool = False
    template: str | None = None
    var: tuple[str, ...] = ()

    def session(self, *, log: bool = True) -> Session:
        session = super().session(log=log)
        if self.show_probs and not session.params.logprobs:
            session.params = session.params.replace(logprobs=1)  # the colours need each token's probability
        return session


@dataclass(frozen=True)
class ToolOptions(ReplyOptions):
    """Conversing commands, whose model may call tools (the tool parameters are in ``params``)."""

    #: MCP servers for this run (commands or URLs)
    mcp: tuple[str, ...] = ()
    #: tools (or mcp:SERVER) that run without asking
    approve: tuple[str, ...] = ()
    yes: bool = False

    def tool_settings(self) -> ToolSettings:
        servers = []
        if self.mcp:
            # asyncio (the MCP client): only a run given --mcp needs it, not every prompt
            from gptterm.tools.mcp_client import parse_mcp_command

            servers = [parse_mcp_command(text) for text in self.mcp]
        return ToolSettings(servers=servers, approved=set(self.approve), yes=self.yes)

    def session(self, *, log: bool = True) -> Session:
        session = super().session(log=log)
        session.tools.settings = self.tool_settings()
        return session


@dataclass(frozen=True)
class PromptOptions(ToolOptions):
    prompt: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatOptions(ToolOptions):
    cont: bool = False
    cid: int | None = None
    docs: tuple[str, ...] | None = None


@dataclass(frozen=True)
class GenerateOptions(ReplyOptions):
    prompt: tuple[str, ...] = ()
    samples: int = 1
    no_echo: bool = False


@dataclass(frozen=True)
class AskOptions(ReplyOptions):
    items: tuple[str, ...] = ()
    k: int = 4
    sources: bool = False
    embed_model: str | None = None


@dataclass(frozen=True)
class TaskOptions(ModelOptions):
    files: tuple[str, ...] = ()
    output_encoding: str | None = None


@dataclass(frozen=True)
class SummarizeOptions(TaskOptions):
    length: str = "medium"
    form: str = "paragraph"
    lang: str | None = None
    focus: str | None = None


@dataclass(frozen=True)
class TranslateOptions(TaskOptions):
    to: str = ""
    source: str | None = None
    glossary: str | None = None


@dataclass(frozen=True)
class TokensOptions(ModelOptions):
    text: tuple[str, ...] = ()
    chat: bool = False


@dataclass(frozen=True)
class PerplexityOptions(ModelOptions):
    file: str | None = None
    worst: int = 0


@dataclass(frozen=True)
class AttentionOptions(ModelOptions):
    text: tuple[str, ...] = ()
    layer: str | None = None
    head: str | None = None
    from_index: int | None = None
    chat: bool = False


@dataclass(frozen=True)
class FinetuneOptions(Options):
    data: str = ""
    out: str = ""
    model: str | None = None
    epochs: int = 2
    lr: float = 1e-4
    ctx: int = 256
    val_split: float = 0.1
    keep_f32: bool = False
    threads: int | None = None
    seed: int = 0
    json: bool = False


@dataclass(frozen=True)
class DoctorOptions(ModelOptions):
    pass


@dataclass(frozen=True)
class ServeOptions(ModelOptions):
    host: str = "127.0.0.1"
    port: int = 8000
    name: str | None = None
    api_key_env: str | None = None


@dataclass(frozen=True)
class HistoryOptions(Options):
    action: str = "list"
    limit: int = 20
    json: bool = False
    id: int = 0
    ids: tuple[int, ...] = ()
    text: str = ""
    format: str = "md"
    output: str | None = None
    title: str = ""


@dataclass(frozen=True)
class ConfigOptions(Options):
    action: str = "show"
    name: str = ""
    value: str = ""


@dataclass(frozen=True)
class ModelsOptions(Options):
    action: str = "ls"
    json: bool = False
    task: str | None = None
    lang: str | None = None
    query: str = ""
    limit: int = 20
    spec: str = ""
    dry_run: bool = False
    #: a model's name; for ``models import``, the name to give it ("": the file's)
    name: str = ""
    path: str = ""


@dataclass(frozen=True)
class DocsOptions(Options):
    action: str = "ls"
    json: bool = False
    #: a collection (``docs update`` without one: every collection)
    name: str = ""
    paths: tuple[str, ...] = ()
    embed_model: str | None = None


@dataclass(frozen=True)
class TemplatesOptions(Options):
    action: str = "ls"
    json: bool = False
    name: str = ""
    folder: str = ""
    force: bool = False


@dataclass(frozen=True)
class ToolsOptions(Options):
    mcp: tuple[str, ...] = ()
    json: bool = False


@dataclass(frozen=True)
class CompletionOptions(Options):
    shell: str | None = None
    values: str | None = None


#: each command's options class (None: a prompt, or the app)
BY_COMMAND: dict[str | None, type[Options]] = {
    None: PromptOptions, "chat": ChatOptions, "generate": GenerateOptions, "ask": AskOptions,
    "summarize": SummarizeOptions, "translate": TranslateOptions, "tokens": TokensOptions,
    "perplexity": PerplexityOptions, "doctor": DoctorOptions, "serve": ServeOptions, "history": HistoryOptions,
    "config": ConfigOptions, "models": ModelsOptions, "docs": DocsOptions, "templates": TemplatesOptions,
    "completion": CompletionOptions, "tools": ToolsOptions, "attention": AttentionOptions,
    "finetune": FinetuneOptions,
}
