"""``gptterm config``: read and change the config file, validated by the parameter declarations."""

from __future__ import annotations

import tomllib
from pathlib import Path

from gptterm.cli.options import ConfigOptions
from gptterm import paths, textio
from gptterm.cli.io import note
from gptterm.errors import UsageError
from gptterm.models.resolve import check_gguf_file, resolve_model
from gptterm.servers import LOCAL, is_url
from gptterm.settings import OTHER_KEYS, PARAMS, find_param, load_config, save_config


def run_config(opts: ConfigOptions) -> int:
    action = opts.action or "show"
    path = paths.config_file()
    if action == "path":
        print(path)
        return 0
    if action == "show":
        config = load_config()  # validates the file
        raw = tomllib.loads(path.read_text("utf-8")) if path.exists() else {}
        for p in PARAMS:
            value = config.params.values[p.name]
            shown = p.format(value)
            source = "config" if p.name in raw or any(a.lstrip("-").replace("-", "_") in raw for a in p.aliases) else "default"
            print(f"{p.name:<16} {shown:<12} {source}")
        print(f"{'model':<16} {config.model or '(bundled)'!s:<12} {'config' if config.model else 'default'}")
        print(f"{'server':<16} {config.server or LOCAL!s:<12} {'config' if config.server else 'default'}")
        encoding = config.encoding or "(detected)"
        print(f"{'encoding':<16} {encoding:<12} {'config' if config.encoding else 'default'}")
        print(f"{'advice':<16} {str(config.advice).lower():<12} {'config' if 'advice' in raw else 'default'}")
        for name, profile in sorted(config.servers.items()):
            print(f"{'servers.' + name:<16} {profile.url}")
        return 0
    name = opts.name
    if name in OTHER_KEYS:
        if action == "set" and name == "model":
            model = Path(opts.value).expanduser()
            if model.exists() or opts.value.lower().endswith(".gguf"):
                check_gguf_file(model)
                save_config({name: str(model.resolve())})
            else:
                resolve_model(opts.value)  # a local model's name ('gptterm models ls'), kept as a name
                save_config({name: opts.value})
        elif action == "set" and name == "server":
            if opts.value != LOCAL and not is_url(opts.value) and opts.value not in load_config().servers:
                raise UsageError(f"server must be an http(s):// URL, '{LOCAL}', or the name of a "
                                 f"[servers.NAME] profile in {path}")
            save_config({name: opts.value})
        elif action == "set" and name == "advice":
            value = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}.get(
                opts.value.strip().lower())
            if value is None:
                raise UsageError("advice must be true or false")
            save_config({name: value})
        elif action == "set" and name == "encoding":
            textio.check_encoding(opts.value)  # one line naming where valid names are, exit 2
            save_config({name: opts.value})
        elif action == "set":
            save_config({name: opts.value})
        else:
            save_config({}, remove=[name])
    else:
        param = find_param(name)
        if action == "set":
            value = param.parse(opts.value)
            if value is None:
                raise UsageError(f"use 'gptterm config unset {param.name}' for the default ({param.none_means})")
            save_config({param.name: value}, remove=[a.lstrip("-").replace("-", "_") for a in param.aliases])
        else:
            save_config({}, remove=[param.name])
        name = param.name
    load_config()  # the file as written must load
    note(f"{name} {'set' if action == 'set' else 'removed'} in {path}")
    return 0
