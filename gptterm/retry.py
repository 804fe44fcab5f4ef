"""The one retry policy of every HTTP client: the Hub's API, model downloads, an OpenAI-compatible server.

- **What is retried**: the statuses in ``TRANSIENT_STATUSES`` (408, 429,
  500, 502, 503, 504), and whatever transport failures a client counts as
  passing (timeouts, dropped connections; each HTTP library names those
  differently, so each client says which). A refused connection is never
  retried: no server or a wrong URL, and offline use must fail at once.
- **How long to wait**: ``base × 2^N`` before retry N (0 for the first),
  never more than ``MAX_WAIT_S``. A ``Retry-After`` header (seconds or an
  HTTP date) replaces that delay.
- **A longer Retry-After ends the retries at once**: when a server asks for
  more than ``MAX_WAIT_S``, the failure is reported now (the Hub's message
  says how long it asked for) rather than retried early, which the server
  would only refuse again, or after a wait nobody at a terminal expects.
- **Waits are cancellable**: ``sleep`` returns early, saying so, when a stop
  ``Event`` is set or a ``stop()`` callable says yes.

Each client keeps its own knobs (``GPTTERM_HUB_RETRIES``; a server profile's
``retries`` and ``retry_delay``) and passes them in as a ``Policy``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

#: Statuses that say "not now" rather than "no": timeouts, rate limits, passing server trouble.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: The longest single wait, whether from the back-off or a Retry-After header (seconds).
MAX_WAIT_S = 30.0
# How often a callable stop is asked during a wait: a cancel feels instant at 0.1 s.
_POLL_S = 0.1

#: Ends a wait early: an Event that gets set, or a callable that returns True once it is time to stop.
Stop = threading.Event | Callable[[], bool]


def transient(status: int | None) -> bool:
    """Whether an HTTP status is worth another try."""
    return status in TRANSIENT_STATUSES


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # only for a date: it costs a start-up ~5 ms

    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass(frozen=True)
class Policy:
    """How often and how long one client retries."""

    #: tries after the first
    retries: int
    #: seconds before the first retry; doubled for each one after it
    base_delay: float
    max_wait: float = MAX_WAIT_S

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retry ``attempt`` (0: the first); None: give up now.

        ``retry_after`` is the server's own hint (``parse_retry_after``); one
        above the cap gives up rather than waits less than asked.
        """
        if attempt >= self.retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_wait else None
        return min(max(0.0, self.base_delay) * 2**attempt, self.max_wait)


def sleep(seconds: float, stop: Stop | None = None) -> bool:
    """Wait ``seconds``; False as soon as ``stop`` says to stop (True: the wait ran out)."""
    if isinstance(stop, threading.Event):
        return not stop.wait(max(0.0, seconds))
    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        if stop is not None and stop():
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(_POLL_S, left) if stop is not None else left)
