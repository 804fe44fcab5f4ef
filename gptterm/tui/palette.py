"""The command palette's entries: every action by its label and key, documents for the chat, and the
backends (local, each configured server, the other models of the server in use)."""

from __future__ import annotations

import shlex
from functools import partial
from typing import TYPE_CHECKING, Iterable

from textual.app import SystemCommand

from gptterm.tui.actions import APP_ACTIONS, CHAT_ACTIONS, CONVERSATION_ACTIONS
from gptterm.tui.screens import AskScreen

if TYPE_CHECKING:
    from gptterm.tui.app import GpttermApp


def commands(app: GpttermApp) -> Iterable[SystemCommand]:
    keys = app.current_keys()
    for a in APP_ACTIONS:
        yield SystemCommand(f"{a.label} ({keys[a.id]})", a.help, partial(app.run_action, a.action))
    for a in CHAT_ACTIONS:
        if a.id != "cancel-edit":
            yield SystemCommand(f"{a.label} ({keys[a.id]})", a.help, partial(app.run_chat_action, a.action))
    for a in CONVERSATION_ACTIONS:
        yield SystemCommand(f"{a.label} ({keys[a.id]})", a.help, partial(app.run_conversation_action, a.action))
    yield SystemCommand("Documents for this chat…", "Answer from files, folders or a collection too (ask)",
                        partial(ask_for_documents, app))
    yield SystemCommand("Tools for the chat…", "Let the model call tools: read_file, list_dir, search_docs, "
                        "run_shell, fetch_url, or MCP servers of the config file", partial(ask_for_tools, app))
    yield SystemCommand("Fine-tune…", "Train the local model on your data (JSONL chat or text) into a new local "
                        "model, in the background", app.open_finetune)
    yield from backend_commands(app)


def ask_for_documents(app: GpttermApp) -> None:
    def done(where: str | None) -> None:
        if where is not None:
            app.show_tab("chat")
            app.chat.attach_documents([] if where.strip() == "-" else shlex.split(where))

    app.push_screen(AskScreen("Documents for this chat: paths or @collection (- detaches them)"), done)


def ask_for_tools(app: GpttermApp) -> None:
    current = ", ".join(app.session.params.tools or ())

    def done(names: str | None) -> None:
        if names is not None:
            app.apply(app.session.set("tools", "" if names.strip() == "-" else names))

    app.push_screen(AskScreen("Tools the model may call, comma-separated (- for none): read_file, list_dir, "
                              "search_docs, run_shell, fetch_url, or an [mcp.NAME] server", current), done)


def backend_commands(app: GpttermApp) -> Iterable[SystemCommand]:
    """Entries that switch to the local model, a configured server, or another remote model."""
    backend = app.backend
    if backend.server is not None:
        yield SystemCommand("Backend: local model", "Run the local model in this process",
                            partial(app.switch_backend, backend.local()))
    servers = dict(app.session.config.servers)
    if backend.server is not None:
        servers.setdefault(backend.server.name, backend.server)
    for name, profile in sorted(servers.items()):
        if backend.server is None or name != backend.server.name:
            yield SystemCommand(f"Backend: server {name}", f"Use the OpenAI-compatible server at {profile.url}",
                                partial(app.switch_backend, backend.remote(profile)))
    engine = app.engine
    if backend.server is None or engine is None:
        return
    for model in engine.info.served_models:
        if model != engine.info.name:
            yield SystemCommand(f"Remote model: {model}", f"Use {model} on {backend.label()}",
                                partial(app.switch_backend, backend.remote(backend.server, model)))
