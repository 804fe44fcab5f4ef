"""The session core: what every face shares (settings, backend, engine, lease) and the turn loop."""

from gptterm.session.core import Busy, Effect, Lease, Refused, Session, User, open_session

__all__ = ["Busy", "Effect", "Lease", "Refused", "Session", "User", "open_session"]
