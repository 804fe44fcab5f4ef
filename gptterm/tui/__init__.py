"""The Textual face. Imported only when the TUI starts (never by the core or pipes)."""
