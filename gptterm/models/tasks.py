"""The tasks a catalog model can be good for (its own module: the command line's choices import it at start-up,
and the catalog itself is not needed to parse arguments)."""

TASKS = ("chat", "summarize", "translate", "ask", "code", "embed")
