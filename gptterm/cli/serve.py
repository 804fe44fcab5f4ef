"""``gptterm serve``: llama-cpp-python's own OpenAI-compatible server on a local model.

gptterm adds only what a user would get wrong: the bundled or configured
model, a context capped at the model's training size, this machine's
threads, 127.0.0.1 unless told otherwise, an API key read from the
environment (never from the command line, where ``ps`` would show it), and
one clear line when something is missing.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys

from gptterm.cli.options import ServeOptions
from gptterm.cli.io import note
from gptterm.engine.local import default_threads
from gptterm.errors import RemoteError, UsageError
from gptterm.models.gguf_meta import read_metadata
from gptterm.models.resolve import resolve_model
from gptterm.settings import load_config

# What `python -m llama_cpp.server` imports beyond llama-cpp-python itself
# (its [server] extra).
SERVER_MODULES = ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def check_server_extra() -> None:
    missing = []
    for name in SERVER_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise RemoteError(f"gptterm serve needs llama-cpp-python's server extra (missing: {', '.join(missing)}): "
                          "pip install 'gptterm[server]'")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be in 1..65535, not {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise UsageError(f"cannot listen on {host!r}: {err.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            raise RemoteError(f"cannot listen on {host}:{port} ({err.strerror}): pick another --port") from None


def server_command(opts: ServeOptions) -> tuple[list[str], dict[str, str], str]:
    """The command line and environment of the server process, and the model's name."""
    config = load_config()
    params = config.params.replace(**opts.params)
    path = resolve_model(opts.model or config.model)
    try:
        train = read_metadata(path).context_length
    except ValueError:
        train = None
    ctx = min(params.ctx, train) if train else params.ctx
    name = opts.name or path.stem
    threads = params.threads or default_threads()  # for prompts too, as the local engine does
    env = {k: v for k, v in os.environ.items() if k.upper() != "API_KEY"}
    if opts.api_key_env:
        key = os.environ.get(opts.api_key_env)
        if not key:
            raise UsageError(f"--api-key-env {opts.api_key_env}: that environment variable is not set")
        env["API_KEY"] = key  # the server's settings read it from its environment
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(path), "--model_alias", name,
        "--host", opts.host, "--port", str(opts.port),
        "--n_ctx", str(ctx), "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--n_gpu_layers", str(params.gpu_layers), "--verbose", "false",
    ]
    return command, env, name


def run_serve(opts: ServeOptions) -> int:
    check_server_extra()
    command, env, name = server_command(opts)
    _check_port(opts.host, opts.port)
    shown_host = socket.gethostname() if opts.host in ("0.0.0.0", "::") else opts.host
    url = f"http://{shown_host}:{opts.port}/v1"
    if not _is_loopback(opts.host):
        note(f"listening on {opts.host}: anyone who can reach this machine can use the model"
             + ("" if opts.api_key_env else " (--api-key-env VAR requires a key)"))
    note(f"serving {name} at {url} — on another machine: gptterm --server {url}  (Ctrl+C stops)")
    proc = subprocess.Popen(command, env=env)
    # A service manager stops gptterm with SIGTERM: the server must go too.
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        # A terminal's Ctrl+C reaches the server too; a second SIGINT would
        # make it abort noisily, so forward one only if it keeps running.
        for forward in (None, signal.SIGINT, signal.SIGKILL):
            if forward is not None:
                proc.send_signal(forward)
            try:
                proc.wait(timeout=3)
                break
            except subprocess.TimeoutExpired:
                continue
        return 0
    if code not in (0, -signal.SIGINT, -signal.SIGTERM):
        raise RemoteError(f"the server stopped with exit code {code} (its log is above)")
    return 0
