"""Engines: the one place that knows how text is generated.

Which engine a run uses (local or a server) is chosen in ``gptterm.backend``.
"""
