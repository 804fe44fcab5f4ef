"""Every generation and load parameter, declared once.

CLI flags, REPL ``/set`` names, config-file validation, the TUI settings form
and help texts are all derived from ``PARAMS``; nothing else lists them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from gptterm import atomic, paths, textio
from gptterm.adapter_spec import parse_list
from gptterm.errors import ConfigError, ParamError, UsageError
from gptterm.servers import LOCAL, ServerProfile, check_server_profile, is_url

SAMPLING = "sampling"
LOAD = "load"
PROMPT = "prompt"
#: what a reply carries besides its text (log-probabilities); not a sampling setting
OUTPUT = "output"
#: which tools the model may call, and how far a turn may go with them (gptterm.tools)
TOOLS = "tools"


@dataclass(frozen=True)
class Param:
    name: str
    type: type
    default: Any
    help: str
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    #: ``None`` is a valid value (it means "automatic" / "random"); its meaning.
    none_means: str | None = None
    aliases: tuple[str, ...] = ()
    metavar: str | None = None
    #: the values a text parameter may take (empty: any text)
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.flag, *self.aliases)

    def range_text(self) -> str:
        if self.minimum is None and self.maximum is None:
            return ""
        lo = "" if self.minimum is None else _fmt(self.minimum)
        hi = "" if self.maximum is None else _fmt(self.maximum)
        return f"{lo}..{hi}"

    @property
    def is_list(self) -> bool:
        """A list of values (LoRA adapters): a flag that may repeat, comma-separated where typed as one line."""
        return self.type is tuple

    def format(self, value: Any) -> str:
        """``value`` as every face shows it: what None means ("random"), text quoted, numbers short (0.7, 4096),
        a list comma-separated ("none" when empty)."""
        if value is None:
            return self.none_means or ""
        if self.is_list:
            return ", ".join(value) or "none"
        return repr(value) if self.type is str else _fmt(value)

    def edit_text(self, value: Any) -> str:
        """``value`` as an input field holds it, ready for ``parse``: empty for None, text unquoted."""
        if self.is_list:
            return ", ".join(value)
        return "" if value is None else str(value)

    def describe(self) -> str:
        """Help text with range and default, as shown by --help and /set."""
        parts = [self.help]
        rng = self.range_text()
        if rng:
            parts.append(f"range {rng}")
        parts.append(f"default {self.format(self.default)}")
        return "; ".join(parts)

    def parse(self, text: str) -> Any:
        """Parse a user-typed string (CLI flag, /set, TUI field)."""
        raw = text.strip()
        if self.none_means is not None and raw.lower() in ("", "auto", "none", "random"):
            return None
        if self.is_list:
            return _list_check(self.name)(raw)
        if self.type is str:
            return self.check(text)
        try:
            value = int(raw) if self.type is int else float(raw)
        except ValueError:
            kind = "an integer" if self.type is int else "a number"
            raise ParamError(f"{self.name} must be {kind}, not {text!r}") from None
        return self.check(value)

    def check(self, value: Any) -> Any:
        """Validate a typed value (config file, programmatic); returns it normalized."""
        if value is None:
            if self.none_means is None:
                raise ParamError(f"{self.name} cannot be empty")
            return None
        if self.type is str:
            if not isinstance(value, str):
                raise ParamError(f"{self.name} must be text, not {value!r}")
            if self.choices and value.strip().lower() not in self.choices:
                raise ParamError(f"{self.name} must be one of {', '.join(self.choices)}, not {value!r}")
            return value.strip().lower() if self.choices else value
        if self.is_list:
            if isinstance(value, str):
                return _list_check(self.name)(value)
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ParamError(f"{self.name} must be a list of text, not {value!r}")
            return tuple(item for v in value for item in _list_check(self.name)(v))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"{self.name} must be a number, not {value!r}")
        if self.type is int:
            if isinstance(value, float) and not value.is_integer():
                raise ParamError(f"{self.name} must be an integer, not {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise ParamError(f"{self.name} must be a finite number, not {value!r}")
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise ParamError(f"{self.name} must be in {self.range_text()}, not {_fmt(value)}")
        return value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _names(text: str) -> tuple[str, ...]:
    """Comma-separated names or paths; empty, 'none' or 'off' for none."""
    if text.strip().lower() in ("", "none", "off"):
        return ()
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def _list_check(name: str) -> Any:
    """The parser of a list parameter's items, by name."""
    return {"lora": parse_list, "tools": _names, "allow": _names}[name]


PARAMS: tuple[Param, ...] = (
    Param("temperature", float, 0.7, "randomness of sampling; 0 picks the most likely token (greedy)",
          SAMPLING, 0.0, 5.0, aliases=("--temp",)),
    Param("top_p", float, 0.95, "nucleus sampling: keep the smallest token set whose probability reaches this",
          SAMPLING, 0.0, 1.0),
    Param("top_k", int, 40, "keep only the K most likely tokens; 0 keeps all", SAMPLING, 0, 100_000),
    Param("min_p", float, 0.05, "drop tokens less likely than this fraction of the most likely one",
          SAMPLING, 0.0, 1.0),
    Param("repeat_penalty", float, 1.1, "penalty for repeating recent tokens; 1 disables it",
          SAMPLING, 0.5, 2.0),
    Param("max_tokens", int, 1024, "most tokens to generate in one reply", SAMPLING, 1, 1_048_576,
          metavar="N"),
    Param("seed", int, None, "sampling seed; the same seed, prompt and settings repeat the output",
          SAMPLING, 0, 2**32 - 2, none_means="random"),
    # 4096 rather than llama-cpp-python's 512: room for a real conversation or
    # a page of piped text, while the KV cache of a 7B model stays ~0.5 GB.
    # Capped to the model's training context at load time.
    Param("ctx", int, 4096, "context window in tokens (prompt + reply); capped at the model's training context",
          LOAD, 64, 1_048_576, aliases=("--n-ctx",), metavar="N"),
    Param("gpu_layers", int, -1, "layers offloaded to the GPU; -1 offloads all (when the build supports a GPU)",
          LOAD, -1, 100_000, aliases=("-ngl",), metavar="N"),
    Param("threads", int, None, "CPU threads for generation", LOAD, 1, 1024, none_means="auto", metavar="N"),
    # A list: the flag repeats (--lora a.gguf --lora b.gguf:0.5); typed as one line, comma-separated.
    Param("lora", tuple, (), "LoRA adapters applied to the model, each PATH or PATH:SCALE (a .gguf adapter file "
          "or a local adapter's name; scale 0 gives the base model)", LOAD, metavar="PATH[:SCALE]"),
    Param("logprobs", int, 0, "give each generated token's log-probability and the N most likely alternatives "
          "(with --json; 0: off)", OUTPUT, 0, 20, metavar="N"),
    Param("system", str, "", "system prompt; empty uses the model's own default", PROMPT,
          aliases=("-s",), metavar="TEXT"),
    # Reasoning models (Qwen3, SmolLM3): "on"/"off" switch their <think> block through the chat template
    # (enable_thinking, else /think and /no_think); "auto" leaves the model's default. Tasks use "off".
    Param("thinking", str, "auto", "thinking mode of a reasoning model (Qwen3, SmolLM3): on, off, or auto (the "
          "model's default)", PROMPT, metavar="auto|on|off", choices=("auto", "on", "off")),
    # Off until asked for: a model that can read files or run commands only does so when the user names the tool.
    Param("tools", tuple, (), "tools the model may call, comma-separated: the built-ins read_file, list_dir, "
          "search_docs, run_shell, fetch_url, and MCP servers by their [mcp.NAME] (all their tools)", TOOLS,
          aliases=("-T",), metavar="NAME[,NAME]"),
    Param("allow", tuple, (), "folders read_file and list_dir may read below (default: the current directory)",
          TOOLS, metavar="PATH"),
    Param("max_steps", int, 8, "most rounds of tool calls for one message; then the model answers with what it "
          "has", TOOLS, 1, 100, metavar="N"),
    Param("tool_choice", str, "auto", "whether the model must call a tool in the first step of a message: auto "
          "(it decides), required (some tool), or a tool's name", TOOLS, metavar="auto|required|NAME"),
)

BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}


def find_param(name: str) -> Param:
    key = name.strip().lower().replace("-", "_")
    for p in PARAMS:
        if key == p.name or any(key == a.lstrip("-").replace("-", "_") for a in p.aliases):
            return p
    raise ParamError(f"unknown parameter {name!r}; known: {', '.join(BY_NAME)}")


@dataclass(frozen=True)
class Params:
    """A complete, validated set of parameter values."""

    values: Mapping[str, Any] = field(default_factory=lambda: {p.name: p.default for p in PARAMS})

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **changes: Any) -> "Params":
        new = dict(self.values)
        for name, value in changes.items():
            new[name] = BY_NAME[name].check(value) if name in BY_NAME else _unknown(name)
        return Params(new)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def sampling(self) -> dict[str, Any]:
        return {p.name: self.values[p.name] for p in PARAMS if p.kind == SAMPLING}

    def load(self) -> dict[str, Any]:
        return {p.name: self.values[p.name] for p in PARAMS if p.kind == LOAD}


def _unknown(name: str) -> Any:
    raise ParamError(f"unknown parameter {name!r}")


# Keys the config file may hold besides parameters (later faces add theirs here).
#: ``server``: a [servers.NAME] profile or a URL; absent or "local" runs the model in-process.
#: ``encoding``: the encoding text input is read in, instead of detecting it (--encoding overrides it).
#: ``advice``: false silences the line that says a task needs another model (and names one).
OTHER_KEYS = {"model": str, "theme": str, "server": str, "encoding": str, "advice": bool}
#: ``mcp``: [mcp.NAME] tables, the MCP servers a conversation may use (checked when they are used: gptterm.tools)
TABLE_KEYS = ("presets", "keymap", "servers", "mcp")

# Named parameter sets offered by the TUI; the config file's [presets.NAME]
# tables add to (or override) these.
BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    "precise": {"temperature": 0.2, "top_p": 0.9, "top_k": 20, "min_p": 0.1, "repeat_penalty": 1.05},
    "balanced": {p: BY_NAME[p].default for p in ("temperature", "top_p", "top_k", "min_p", "repeat_penalty")},
    "creative": {"temperature": 1.0, "top_p": 0.98, "top_k": 100, "min_p": 0.02, "repeat_penalty": 1.1},
}


@dataclass(frozen=True)
class Config:
    params: Params
    model: str | None
    path: Path
    theme: str | None = None
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    keymap: Mapping[str, str] = field(default_factory=dict)
    server: str | None = None
    servers: Mapping[str, ServerProfile] = field(default_factory=dict)
    #: the codec every text input is read in (None: detected, see gptterm.textio)
    encoding: str | None = None
    #: say when the loaded model is not suited to a task, and which catalog model is (gptterm.models.advice)
    advice: bool = True
    #: the [mcp.NAME] tables as written (gptterm.tools.mcp_client checks each when a conversation uses it)
    mcp: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def all_presets(self) -> dict[str, dict[str, Any]]:
        return {**{k: dict(v) for k, v in BUILTIN_PRESETS.items()}, **{k: dict(v) for k, v in self.presets.items()}}


def check_values(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate a table of parameter values (config file, preset); canonical names."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        try:
            param = find_param(key)
            out[param.name] = param.check(value)
        except ParamError as err:
            raise ConfigError(f"{where}: {err}") from None
    return out


def load_config(path: Path | None = None) -> Config:
    """Defaults overridden by the config file; a bad file is a ConfigError."""
    path = path or paths.config_file()
    data: dict[str, Any] = {}
    try:
        with open(path, "rb") as fh:
            import tomllib  # only when there is a file: most starts have none (~3 ms)

            try:
                data = tomllib.load(fh)
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
                raise ConfigError(f"cannot read config file {path}: {err}") from None
    except FileNotFoundError:
        pass
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    for key in OTHER_KEYS:
        if key in data and not isinstance(data[key], OTHER_KEYS[key]):
            raise ConfigError(f"{path}: {key} must be {OTHER_KEYS[key].__name__}")
    for key in TABLE_KEYS:
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"{path}: {key} must be a table ([{key}])")
    presets: dict[str, dict[str, Any]] = {}
    for name, values in data.get("presets", {}).items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: presets.{name} must be a table ([presets.{name}])")
        presets[name] = check_values(values, f"{path}: presets.{name}")
    keymap = data.get("keymap", {})
    for binding_id, keys in keymap.items():
        if not isinstance(keys, str):
            raise ConfigError(f"{path}: keymap.{binding_id} must be a string of keys, e.g. \"ctrl+n\"")
    servers = {name: check_server_profile(name, values, str(path))
               for name, values in data.get("servers", {}).items()}
    for name, values in data.get("mcp", {}).items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: mcp.{name} must be a table ([mcp.{name}] with command or url)")
    server = data.get("server") or None
    if server and server != LOCAL and server not in servers and not is_url(server):
        raise ConfigError(f"{path}: server = {server!r} is neither a URL nor a [servers.{server}] profile")
    encoding = data.get("encoding") or None
    if encoding:
        try:
            textio.check_encoding(encoding)
        except UsageError as err:
            raise ConfigError(f"{path}: encoding: {err}") from None
    plain = {k: v for k, v in data.items() if k not in OTHER_KEYS and k not in TABLE_KEYS}
    params = Params().replace(**check_values(plain, str(path)))
    return Config(params, data.get("model") or None, path, theme=data.get("theme") or None,
                  presets=presets, keymap=dict(keymap), server=server, servers=servers,
                  encoding=encoding, advice=data.get("advice", True), mcp=dict(data.get("mcp", {})))


def save_config(updates: Mapping[str, Any], path: Path | None = None, remove: Iterable[str] = ()) -> Path:
    """Write ``updates`` into the config file, keeping the user's comments.

    Written whole or not at all (``gptterm.atomic``), so a crash never
    leaves half a config.
    """
    import tomlkit  # heavy: tomlkit (only saving the config pays for it)

    path = path or paths.config_file()
    try:
        doc = tomlkit.parse(path.read_text("utf-8")) if path.exists() else tomlkit.document()
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.ParseError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    for key in remove:
        doc.pop(key, None)
    for key, value in updates.items():
        if isinstance(value, tuple):
            value = list(value)  # a list parameter (lora): a TOML array
        if value is None:
            doc.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(doc.get(key), Mapping):
            table = doc[key]
            for sub, subvalue in value.items():
                table[sub] = subvalue  # merge into an existing table, keeping its other entries
        else:
            doc[key] = value
    try:
        paths.private_dir(path.parent)
        atomic.write_text(path, tomlkit.dumps(doc))
    except OSError as err:
        raise ConfigError(f"cannot write config file {path}: {err}") from None
    return path
