"""The models pane: local models (active and default marked), the catalog, Hub search, downloads.

Hub requests and downloads run in thread workers that only post messages;
the handlers here are the only code that changes the pane's widgets. Loading
a model asks the app to switch backends (``SwitchBackend``), so the chat
keeps its conversation; the ▶ mark follows the app's engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import work
from textual.worker import get_current_worker
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label, ProgressBar, Static

from gptterm.backend import Backend
from gptterm.errors import GpttermError
from gptterm.models import catalog, store
from gptterm.models.adapters import adapter_for
from gptterm.models.names import human_size
from gptterm.tui.actions import MODELS_ACTIONS
from gptterm.tui.messages import ApplyAdapter, OpenFinetune, SwitchBackend
from gptterm.tui.screens import ConfirmScreen

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from gptterm.engine.base import Engine

#: a table's columns: (label, keep); the lower ``keep``, the sooner it is left out on a narrow screen
Columns = tuple[tuple[str, int], ...]

HINT = ("Enter: load a local model · list a result's files · pull a model or file · t: fine-tune a local model "
        "· the footer's keys act on the selected row")


class ModelsPane(Vertical):
    BINDINGS = [a.binding() for a in MODELS_ACTIONS]
    DEFAULT_CSS = """
    ModelsPane { padding: 0 1; }
    ModelsPane .section { text-style: bold; color: $accent; margin: 1 0 0 0; }
    ModelsPane #local-models { height: auto; max-height: 40%; }
    ModelsPane #remote-models { height: 1fr; }
    ModelsPane #models-search { margin: 1 0 0 0; }
    ModelsPane #download-row { height: 1; margin: 1 0 0 0; display: none; }
    ModelsPane #download-label { width: 1fr; }
    ModelsPane .hint { color: $text-muted; height: auto; }
    """

    @dataclass
    class SearchDone(Message):
        kind: str  # "search", "files" or "error"
        title: str
        payload: Any = None
        error: str | None = None

    @dataclass
    class DownloadStarted(Message):
        name: str
        total: int

    @dataclass
    class DownloadProgress(Message):
        progress: Any

    @dataclass
    class DownloadDone(Message):
        name: str | None
        error: str | None = None
        cancelled: bool = False
        already: bool = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.local: list[Any] = []
        self.remote_kind = "catalog"
        self.remote_specs: list[str] = []  # what 'pull' gets for each remote row
        self.remote_repos: list[str] = []  # search rows: the repo whose files Enter lists
        self.downloading: str | None = None
        self.download_worker: Any = None
        self._speed_mark: tuple[float, int] | None = None
        #: what each table shows (columns, rows): filled again when the pane is resized
        self._filled: dict[str, tuple[Columns, list[list[object]]]] = {}
        self._shown = False
        #: the file of the model the app has loaded (None: none, or a server), and of its LoRA adapters
        self.active_path: str | None = None
        self.active_adapters: list[str] = []
        #: the base architecture of each local LoRA adapter (None: a model)
        self.adapter_kinds: dict[str, str | None] = {}

    def compose(self) -> ComposeResult:
        yield Label("Local models  [dim](▶ loaded · * default · l loads one, or adds a LoRA to it)[/dim]",
                    classes="section")
        yield DataTable(id="local-models", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="Search the Hub for GGUF models (Enter) — OWNER/NAME lists a repo's files; "
                                "empty: the catalog", id="models-search")
        yield Label("Catalog", id="remote-title", classes="section")
        yield DataTable(id="remote-models", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="download-row"):
            yield Label("", id="download-label")
            yield ProgressBar(total=1, id="download-progress", show_eta=True)
        yield Static(HINT, classes="hint")

    def on_mount(self) -> None:
        self.watch(self.app, "engine", self._engine_changed)

    def on_show(self) -> None:
        # Filled on first sight, not at app start: the first frame stays fast.
        if not self._shown:
            self._shown = True
            self.refresh_local()
            self.show_catalog()
            self.focus_default()  # the local models, now that they are listed

    def focus_default(self) -> None:
        self.query_one("#local-models" if self.local else "#remote-models", DataTable).focus()

    # -- local models ----------------------------------------------------------------

    def _engine_changed(self, engine: Engine | None) -> None:
        self.active_path = engine.info.path if engine is not None else None
        self.active_adapters = list(engine.info.adapter_paths) if engine is not None else []
        if self._shown:
            self.refresh_local()

    def refresh_local(self) -> None:
        try:
            models = store.list_models()
            default = store.default_model(models)
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        active = [p for p in (self.active_path, *self.active_adapters) if p]
        table = self.query_one("#local-models", DataTable)
        keep = table.cursor_row
        self.local = models
        self.adapter_kinds = {m.name: None if m.missing else adapter_for(m.path) for m in models}
        rows: list[list[object]] = []
        for m in models:
            mark = ("▶" if any(store.same_file(m.path, p) for p in active) else " ") + (
                "*" if default is not None and m.name == default.name else " ")
            size = "missing" if m.missing else human_size(m.size)
            base = self.adapter_kinds[m.name]
            rows.append([mark, m.name, f"LoRA for {base}" if base else "model", m.quant or "?", size, m.source])
        self._fill(table, (("", 9), ("name", 9), ("kind", 7), ("quant", 3), ("size", 8), ("source", 1)), rows)
        if models:
            table.move_cursor(row=min(keep, len(models) - 1))

    def selected_local(self) -> Any:
        table = self.query_one("#local-models", DataTable)
        if not self.local or not table.has_focus:
            self.notify("Select a local model first (the upper table)", severity="warning")
            return None
        return self.local[table.cursor_row]

    def action_load(self) -> None:
        """Load the selected model; an adapter is added to the model that is loaded."""
        model = self.selected_local()
        if model is None:
            return
        if self.adapter_kinds.get(model.name):
            self.post_message(ApplyAdapter(model.name))
            return
        self.post_message(SwitchBackend(Backend(local_model=model.name)))

    def action_finetune(self) -> None:
        """Fine-tune the selected local model (not an adapter: llama.cpp trains a model's own weights)."""
        model = self.selected_local()
        if model is None:
            return
        if self.adapter_kinds.get(model.name):
            self.notify(f"{model.name} is a LoRA adapter: fine-tune its base model instead", severity="warning")
            return
        self.post_message(OpenFinetune(model.name))

    def action_make_default(self) -> None:
        model = self.selected_local()
        if model is None:
            return
        try:
            store.set_default(model.name)
        except GpttermError as err:
            self.notify(str(err), severity="error")
            return
        self.notify(f"{model.name} is now the default model")
        self.refresh_local()

    def action_delete(self) -> None:
        model = self.selected_local()
        if model is None:
            return
        what = "Forget" if model.source == "import" else "Delete"
        size = "" if model.source == "import" else f" and free {human_size(model.size)}"

        def done(yes: bool | None) -> None:
            if yes:
                self._remove(model.name)

        self.app.push_screen(ConfirmScreen(f"{what} the model {model.name}{size}?", yes=what), done)

    def _remove(self, name: str) -> None:
        try:
            removed = store.remove(name)
        except GpttermError as err:
            self.notify(str(err), severity="error", timeout=10)
            return
        if removed.kept_file:
            self.notify(f"Forgot {name}; its file was kept: {removed.model.path}")
        else:
            self.notify(f"Deleted {name}: freed {human_size(removed.freed)}")
        self.refresh_local()

    # -- catalog and search ------------------------------------------------------------

    def _remote_table(self, title: str) -> DataTable:
        self.query_one("#remote-title", Label).update(title)
        self.remote_specs = []
        self.remote_repos = []
        return self.query_one("#remote-models", DataTable)

    def _fill(self, table: DataTable, columns: Columns, rows: list[list[object]]) -> None:
        """Show ``rows`` under ``columns`` ((label, keep) pairs): on a screen too narrow for all of them,
        the columns with the lowest ``keep`` are left out first, before any is clipped."""
        self._filled[table.id or ""] = (columns, rows)
        room = (self.size.width or self.app.size.width) - 4  # the pane's padding and the table's scrollbar
        widths = [max([len(label), *(len(str(r[i])) for r in rows)]) + 2 for i, (label, _) in enumerate(columns)]
        shown = list(range(len(columns)))
        while len(shown) > 1 and sum(widths[i] for i in shown) > room:
            shown.remove(min(shown, key=lambda i: columns[i][1]))
        table.clear(columns=True)
        table.add_columns(*(columns[i][0] for i in shown))
        for row in rows:
            table.add_row(*(row[i] for i in shown))

    def on_resize(self) -> None:
        for table_id, (columns, rows) in list(self._filled.items()):
            self._fill(self.query_one(f"#{table_id}", DataTable), columns, rows)

    def show_catalog(self) -> None:
        from gptterm.models.machine import this_machine  # probes the machine: on the pane's first sight

        local = {m.name for m in self.local}
        table = self._remote_table("Catalog (fits: this machine's free memory)")
        self.remote_kind = "catalog"
        rows: list[list[object]] = []
        for row in catalog.rows(this_machine()):
            rows.append([row["id"], row["params"], row["quant"], human_size(row["size"]),
                         "~" + human_size(row["memory"]), row["fits"], ",".join(row["tasks"]),
                         catalog.languages_text(tuple(row["languages"])), catalog.context_text(row["context"]),
                         row["licence"] + (" (gated)" if row["gated"] else ""),
                         "yes" if row["thinking"] else "", "yes" if row["id"] in local else ""])
            self.remote_specs.append(row["id"])
            self.remote_repos.append(row["repo"])
        # what goes first on a narrow screen: quant, thinks, licence, ctx, params, memory, local;
        # id, size, fits, good for and languages stay longest
        self._fill(table, (("id", 12), ("params", 4), ("quant", 0), ("size", 10), ("memory", 5), ("fits", 9),
                           ("good for", 11), ("languages", 8), ("ctx", 3), ("licence", 2), ("thinks", 1),
                           ("local", 7)), rows)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "models-search":
            return
        event.stop()
        query = event.value.strip()
        if not query:
            self.show_catalog()
            return
        self.query_one("#remote-title", Label).update(f"Searching the Hub for “{query}”…")
        self.search(query)

    def action_focus_search(self) -> None:
        self.query_one("#models-search", Input).focus()

    @work(thread=True, exclusive=True, group="models-search", exit_on_error=False)
    def search(self, query: str) -> None:
        from gptterm.models import hub  # the Hub client (huggingface_hub): only a search or a listing needs it

        try:
            found = hub.find(query, limit=50)
        except GpttermError as err:
            self._post_search(self.SearchDone("error", "Search failed", error=str(err)))
            return
        if isinstance(found, hub.RepoListing):
            self._post_search(self.SearchDone("files", f"Files of {found.repo}", found))
        else:
            self._post_search(self.SearchDone("search", f"Hub search: “{query}” ({len(found)} repos)", found))

    def _post_search(self, message: Message) -> None:
        # A newer search cancelled this one (exclusive workers): its answer is stale.
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    @work(thread=True, exclusive=True, group="models-search", exit_on_error=False)
    def list_files(self, repo: str) -> None:
        from gptterm.models import hub  # the Hub client (huggingface_hub): only a search or a listing needs it

        try:
            listing = hub.list_repo(repo)
        except GpttermError as err:
            self._post_search(self.SearchDone("error", "Listing failed", error=str(err)))
            return
        self._post_search(self.SearchDone("files", f"Files of {listing.repo}", listing))

    def on_models_pane_search_done(self, message: SearchDone) -> None:
        if message.kind == "error":
            self.query_one("#remote-title", Label).update(message.title)
            self.notify(message.error or "", severity="error", timeout=10)
            return
        if message.kind == "search":
            table = self._remote_table(message.title)
            rows: list[list[object]] = []
            for h in message.payload:
                rows.append([h.repo + (" (gated)" if h.gated else ""),
                             f"{h.downloads:,}" if h.downloads is not None else "", h.likes or "", h.updated or ""])
                self.remote_specs.append(h.repo)
                self.remote_repos.append(h.repo)
            self._fill(table, (("repo", 9), ("downloads", 3), ("likes", 2), ("updated", 1)), rows)
        else:
            listing = message.payload
            table = self._remote_table(message.title + (" (gated: needs HF_TOKEN)" if listing.gated else ""))
            rows = []
            for m in listing.models:
                rows.append([m.filename, m.quant or "?", human_size(m.size), len(m.files), m.problem or ""])
                self.remote_specs.append(f"{listing.repo}/{m.filename}")
                self.remote_repos.append(listing.repo)
            self._fill(table, (("file", 9), ("quant", 7), ("size", 8), ("parts", 1), ("note", 2)), rows)
        self.remote_kind = message.kind
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.data_table.id == "local-models":
            self.action_load()
        elif self.remote_kind == "search":
            repo = self.remote_repos[event.cursor_row]
            self.query_one("#remote-title", Label).update(f"Listing {repo}…")
            self.list_files(repo)
        else:
            self.action_pull()

    # -- downloads ------------------------------------------------------------------------------

    def action_pull(self) -> None:
        table = self.query_one("#remote-models", DataTable)
        if not table.has_focus or not self.remote_specs:
            self.notify("Select a catalog model, a search result or a file first (the lower table)",
                            severity="warning")
            return
        self.start_pull(self.remote_specs[table.cursor_row])

    def start_pull(self, spec: str) -> bool:
        """Download ``spec`` (a catalog id, a repo or a repo's file) in the background; False (the user told
        why) while another download runs."""
        if self.downloading is not None:
            self.notify(f"{self.downloading} is downloading; c cancels it", severity="warning")
            return False
        self.downloading = spec
        self.download_worker = self.pull(spec)
        return True

    def action_cancel_download(self) -> None:
        if self.download_worker is None or self.downloading is None:
            self.notify("No download is running", severity="warning")
            return
        self.download_worker.cancel()

    @work(thread=True, exclusive=True, group="models-download", exit_on_error=False)
    def pull(self, spec: str) -> None:
        from gptterm.models import download  # the Hub client (huggingface_hub): only a pull needs it

        # Set by 'c' and when the app quits (Textual cancels every worker then):
        # the download stops at its next piece and keeps its part file.
        cancel = get_current_worker().cancelled_event
        try:
            plan = download.plan_pull(spec)
            self.post_message(self.DownloadStarted(plan.name, plan.model.size))
            result = download.pull(plan.model, progress=lambda p: self.post_message(self.DownloadProgress(p)),
                                   cancel=cancel)
        except download.DownloadCancelled as err:
            self.post_message(self.DownloadDone(None, str(err), cancelled=True))
            return
        except GpttermError as err:
            self.post_message(self.DownloadDone(None, str(err)))
            return
        self.post_message(self.DownloadDone(result.model.name, already=result.already))

    def on_models_pane_download_started(self, message: DownloadStarted) -> None:
        self.downloading = message.name
        self.query_one("#download-row").display = True
        self.query_one("#download-progress", ProgressBar).update(total=message.total, progress=0)
        self.query_one("#download-label", Label).update(f"{message.name}: starting…")
        self._speed_mark = None

    def on_models_pane_download_progress(self, message: DownloadProgress) -> None:
        p = message.progress
        self.query_one("#download-progress", ProgressBar).update(total=p.total, progress=p.done)
        now = time.monotonic()
        if self._speed_mark is None or p.phase != "downloading":
            self._speed_mark = (now, p.done)
            speed = ""
        else:
            t0, d0 = self._speed_mark
            speed = f" at {human_size((p.done - d0) / (now - t0))}/s" if now > t0 and p.done > d0 else ""
        what = "checking the part file" if p.phase == "checking" else f"{human_size(p.done)} of {human_size(p.total)}"
        self.query_one("#download-label", Label).update(f"{p.model}: {what}{speed}")

    def on_models_pane_download_done(self, message: DownloadDone) -> None:
        self.downloading = None
        self.download_worker = None
        self.query_one("#download-row").display = False
        self.query_one("#download-progress", ProgressBar).update(total=1, progress=0)  # stops its animation timer
        if message.error:
            severity: SeverityLevel = "warning" if message.cancelled else "error"
            self.notify(message.error, severity=severity, timeout=10)
        elif message.already:
            self.notify(f"{message.name} is already downloaded")
        else:
            self.notify(f"Downloaded {message.name} (sha256 verified): select it and press l to load it")
        self.refresh_local()
        if self.remote_kind == "catalog":
            self.show_catalog()
