"""Errors a user can cause: each carries one line to show and an exit code.

The faces catch ``GpttermError`` and print ``str(err)``; anything else is a bug
and may show a traceback. Every exit code is declared here, in this one table
(the README's "Exit codes" list mirrors it, and a test holds both to that);
subclasses elsewhere refine a message, never a code.
"""

from __future__ import annotations


class GpttermError(Exception):
    """A failure the user can fix; ``str()`` is the one line shown."""

    # Also what ``doctor`` returns when it finds a problem (its report, not an exception).
    exit_code = 1


class UsageError(GpttermError):
    """Bad flags, arguments or parameter values."""

    exit_code = 2


class ParamError(UsageError):
    """A parameter value outside its declared type or range."""


class ConfigError(GpttermError):
    """The config file cannot be read or holds an invalid setting."""

    exit_code = 3


class ModelError(GpttermError):
    """The model file is missing, unreadable or cannot be loaded."""

    exit_code = 4


class InputError(GpttermError):
    """Stdin or an input file cannot be used as given."""

    exit_code = 5


class ContextOverflowError(GpttermError):
    """The prompt and the requested reply do not fit the context window."""

    exit_code = 6

    def __init__(self, message: str, *, prompt_tokens: int, n_ctx: int, reply_tokens: int):
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.n_ctx = n_ctx
        self.reply_tokens = reply_tokens


class HistoryError(GpttermError):
    """The history database cannot be opened or an entry was not found."""

    exit_code = 7


class EngineError(GpttermError):
    """The model failed while generating (or saving its state)."""

    exit_code = 8


class HubError(GpttermError):
    """The Hub cannot be reached, or refused or failed a request."""

    exit_code = 9


class DownloadError(GpttermError):
    """A download cannot finish: checksum mismatch, full disk, an unsafe file name."""

    exit_code = 10


class TaskError(GpttermError):
    """A summary or translation could not be completed."""

    exit_code = 11


class RemoteError(GpttermError):
    """The server cannot be reached, refused the request, or broke off."""

    exit_code = 12


class RemoteContextError(RemoteError):
    """The server says the prompt does not fit its context (``n_ctx``: its size, when it says)."""

    def __init__(self, message: str, n_ctx: int | None):
        super().__init__(message)
        self.n_ctx = n_ctx


class DocsError(GpttermError):
    """The document index cannot be used: it cannot be opened, or a collection is unknown."""

    exit_code = 13


class SchemaError(GpttermError):
    """The reply is not JSON that matches the schema asked for (--schema, --json-object, a template's schema)."""

    exit_code = 14


class FinetuneError(GpttermError):
    """Fine-tuning cannot start or did not finish: not enough memory or disk, or the training process failed or
    was killed (nothing is saved then)."""

    exit_code = 15


class Interrupted(GpttermError):
    """The user pressed Ctrl+C; what was generated so far is kept."""

    exit_code = 130
