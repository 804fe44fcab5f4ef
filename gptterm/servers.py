"""OpenAI-compatible servers: ``[servers.NAME]`` profiles, and which one a run uses.

The config file's profiles are validated here; ``server_spec`` and
``resolve_server`` turn --server, the environment and the config file into
the one profile in use (or None: the local model). ``gptterm.backend`` is
where a face asks for that choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from gptterm.errors import ConfigError

if TYPE_CHECKING:
    from gptterm.settings import Config

#: The value of --server / GPTTERM_SERVER / ``server`` that means "no server".
LOCAL = "local"

#: Keys of a ``[servers.NAME]`` profile and their types. API keys are never
#: stored: ``api_key_env`` names the environment variable that holds one.
SERVER_KEYS: dict[str, tuple[type, ...]] = {
    "url": (str,),
    "api_key_env": (str,),
    "model": (str,),
    "ctx": (int,),
    "timeout": (int, float),
    "retries": (int,),
    "retry_delay": (int, float),
}


@dataclass(frozen=True)
class ServerProfile:
    """An OpenAI-compatible server to use instead of a local model."""

    name: str  # the profile's name, or the URL itself when given directly
    url: str
    api_key_env: str | None = None
    #: remote model id (None: the first one the server lists)
    model: str | None = None
    #: context size to assume when the server does not report its own
    ctx: int | None = None
    #: seconds without a byte from the server before giving up
    timeout: float = 600.0
    #: extra tries after a 429 or 5xx answer, waiting retry_delay, then twice as long each time
    retries: int = 3
    retry_delay: float = 0.5

    def api_key(self, environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
        """The API key and the environment variable it came from, if any."""
        env = os.environ if environ is None else environ
        names = (self.api_key_env,) if self.api_key_env else ("GPTTERM_API_KEY", "OPENAI_API_KEY")
        for name in names:
            if env.get(name):
                return env[name], name
        return None, None

    def key_hint(self) -> str:
        return self.api_key_env or "GPTTERM_API_KEY (or OPENAI_API_KEY)"


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def check_server_profile(name: str, values: Mapping[str, Any], where: str) -> ServerProfile:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: servers.{name} must be a table ([servers.{name}])")
    if name == LOCAL or is_url(name):
        raise ConfigError(f"{where}: '{name}' cannot name a server profile")
    for key, value in values.items():
        types = SERVER_KEYS.get(key)
        if types is None:
            raise ConfigError(f"{where}: servers.{name}: unknown key {key!r}; known: {', '.join(SERVER_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, types):
            raise ConfigError(f"{where}: servers.{name}.{key} must be {' or '.join(t.__name__ for t in types)}")
    url = values.get("url")
    if not url or not is_url(url):
        raise ConfigError(f"{where}: servers.{name}.url must be an http:// or https:// URL")
    for key, low in (("ctx", 64), ("timeout", 0.001), ("retries", 0), ("retry_delay", 0)):
        if key in values and values[key] < low:
            raise ConfigError(f"{where}: servers.{name}.{key} must be at least {low:g}")
    return ServerProfile(name=name, **values)


def server_spec(flag: str | None, config: Config, environ: Mapping[str, str] | None = None) -> str | None:
    """Which server to use: --server, then GPTTERM_SERVER, OPENAI_BASE_URL, then the config file."""
    env = os.environ if environ is None else environ
    for value in (flag, env.get("GPTTERM_SERVER"), env.get("OPENAI_BASE_URL"), config.server):
        if value and value.strip():
            return value.strip()
    return None


def resolve_server(spec: str | None, config: Config) -> ServerProfile | None:
    """The profile named by ``spec`` (a profile name or a URL); None for the local model."""
    if not spec or spec == LOCAL:
        return None
    if spec in config.servers:
        return config.servers[spec]
    if is_url(spec):
        return ServerProfile(name=spec, url=spec)
    known = ", ".join(sorted(config.servers)) or "none configured"
    raise ConfigError(f"unknown server {spec!r}: give an http(s):// URL, '{LOCAL}', "
                      f"or a [servers.NAME] profile of the config file ({known})")
