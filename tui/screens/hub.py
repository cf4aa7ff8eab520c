"""Hugging Face: search GGUF repos, see each quant's size and fit, and download it.

Pushed from the Models screen; Esc goes back. `open_hub` installs one screen per app, so
going back keeps the search, and the downloads run on (the Models screen rescans when it
shows again). Every Hub call runs in a thread worker that posts a message; text from the
Hub (repo ids, file names) is always shown as plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from stack.gpu import FreeVram, read_free_vram
from stack.hub.client import Hub, SearchPager, SearchSort, hub_from_settings
from stack.hub.downloads import DownloadRequest
from stack.hub.files import RepoFiles, RepoSummary
from stack.hub.remote_header import repo_fits
from stack.models.fit import FitEstimate
from stack.settings import Settings
from tui.commands import bindings
from tui.hub_log import HubLogRoute
from tui.screens.base import ModeScreen
from tui.screens.dialogs import ConfirmScreen
from tui.widgets.download_list import DownloaderFactory, DownloadPanel, make_downloader
from tui.widgets.footer import Footer
from tui.widgets.hub_tables import (
    QuantsTable,
    ResultsTable,
    download_question,
    entry_key,
    gated_text,
    repo_text,
)
from tui.widgets.key_order import Input
from tui.widgets.mode_bar import ModeBar

HUB_SCREEN = "hub"
SORTS: tuple[SearchSort, ...] = ("downloads", "likes", "trending", "recent")
PAGE_SIZE = 30
WORKER_TITLES = {"hub-search": "Search failed", "hub-files": "Could not list the files"}


def open_hub(app: App[Any]) -> None:
    """Show the Hugging Face screen, built once per app so downloads outlive a visit."""
    if not app.is_screen_installed(HUB_SCREEN):
        app.install_screen(HubScreen(), HUB_SCREEN)
    if app.screen is not app.get_screen(HUB_SCREEN):
        app.push_screen(HUB_SCREEN)


def hub_key(settings: Settings) -> tuple[str, str]:
    return (settings.hf_endpoint, settings.hub_token)


def measure_fits(
    settings: Settings, listing: RepoFiles, free: int | None
) -> tuple[dict[str, FitEstimate | None], str]:
    """Each complete model's fit (the same estimate as `llm-tui files`)."""
    result = repo_fits(settings, listing, free)
    return result.fits, f"No fit estimate: {result.problem}." if result.problem else ""


class HubScreen(ModeScreen):
    """Search results, the selected repo's quants, and the downloads, top to bottom."""

    CSS_PATH = "hub.tcss"  # loaded when it first shows

    MODE = HUB_SCREEN
    SUB_TITLE = "Hugging Face"
    BINDINGS = bindings("hub")
    SELF_REPORTED: ClassVar[frozenset[str]] = frozenset(WORKER_TITLES)

    @dataclass
    class Page(Message):
        pager: SearchPager
        repos: list[RepoSummary]

    @dataclass
    class Listed(Message):
        listing: RepoFiles

    @dataclass
    class FitsMeasured(Message):
        listing: RepoFiles
        fits: dict[str, FitEstimate | None]
        memory: FreeVram
        note: str

    @dataclass
    class HubNotice(Message):
        """A warning `huggingface_hub` logged, e.g. that it retries a request."""

        text: str

    def __init__(
        self,
        *,
        make_hub: Callable[[Settings], Hub] = hub_from_settings,
        make_downloader: DownloaderFactory = make_downloader,
    ) -> None:
        super().__init__()
        self._make_hub = make_hub
        self._hub: tuple[tuple[str, str], Hub] | None = None
        self._route = HubLogRoute(self, HubScreen.HubNotice)
        self.sort: SearchSort = "downloads"
        self.search_text = ""
        self.pager: SearchPager | None = None
        self.searching = False
        self._search_worker: Worker[None] | None = None
        self.listing: RepoFiles | None = None
        self.listing_repo = ""
        self._files_worker: Worker[None] | None = None
        self.fits: dict[str, FitEstimate | None] = {}
        self.fit_note = ""
        self.memory: FreeVram | None = None
        # Kept here, not queried: on_unmount closes its downloads after it left the DOM.
        self.downloads = DownloadPanel(make_downloader=make_downloader, id="hub-downloads")

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar("models", id="mode-bar")  # a screen of the Models mode
        with Vertical(id="hub"):
            with Horizontal(id="hub-search-row"):
                yield Input(
                    placeholder="Search GGUF models (Enter; empty: most popular)",
                    id="hub-query",
                    compact=True,
                )
                yield Static(self.sort_text(), id="hub-sort", markup=False)
            yield Static("", id="hub-status", markup=False)
            yield ResultsTable(id="hub-results")
            yield Static("", id="hub-repo", markup=False)
            yield QuantsTable(id="hub-quants")
            yield self.downloads
        yield Footer()

    def on_mount(self) -> None:
        self.set_class(True, "-no-repo")
        self.show_status(
            "Type words (e.g. qwen coder) and press Enter; an empty search lists the most "
            "downloaded."
        )
        self.show_repo("")
        self.query_one("#hub-query", Input).focus()
        self.downloads.find_interrupted(self.settings)

    def on_unmount(self) -> None:
        self.downloads.close()
        self._route.uninstall()

    @property
    def results(self) -> ResultsTable:
        return self.query_one(ResultsTable)

    @property
    def quants(self) -> QuantsTable:
        return self.query_one(QuantsTable)

    def hub(self) -> Hub:
        """The Hub client for the current endpoint and token (built here: it is cheap)."""
        key = hub_key(self.settings)
        if self._hub is None or self._hub[0] != key:
            self._hub = (key, self._make_hub(self.settings))
        return self._hub[1]

    def show_status(self, text: str) -> None:
        self.query_one("#hub-status", Static).update(text)

    def show_repo(self, text: str | Content) -> None:
        """The line above the quants; a str is plain text (repo ids come from the Hub)."""
        repo = self.query_one("#hub-repo", Static)
        repo.update(Content(text) if isinstance(text, str) else text)
        repo.display = bool(text)

    def sort_text(self) -> str:
        return f"sort: {self.sort} (o)"

    def settings_changed(self, settings: Settings) -> None:
        self.downloads.find_interrupted(settings)  # MODELS_DIR may be another folder
        hub_changed = self._hub is not None and self._hub[0] != hub_key(settings)
        if self.listing_repo and hub_changed:
            self.open_repo(self.listing_repo)  # what HF_TOKEN can read (and gating) changed

    # --- search ---------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.search(event.value.strip())

    def search(self, text: str) -> None:
        self.search_text = text
        self.pager = self.hub().search(text, sort=self.sort, page_size=PAGE_SIZE)
        self.searching = False  # a page still on its way belongs to the old search
        self.results.reset()
        what = f"GGUF repos matching “{text}”" if text else "the most popular GGUF repos"
        self.show_status(f"Searching {self.hub().endpoint} for {what}…")
        self.load_page()

    def load_page(self) -> None:
        if self.pager is None or self.searching or not self.pager.has_more:
            return
        self.searching = True
        self.refresh_bindings()
        self._search_worker = self._next_page(self.pager)

    @work(thread=True, exclusive=True, exit_on_error=False, group="hub-search")
    def _next_page(self, pager: SearchPager) -> None:
        self._route.install()
        self.post_message(self.Page(pager, pager.next_page()))

    def on_hub_screen_page(self, message: Page) -> None:
        if message.pager is not self.pager:
            return  # an older search
        self.searching = False
        self.results.add_repos(message.repos)
        self.show_status(self.results_text())
        if self.results.row_count and self.focused is self.query_one("#hub-query"):
            self.results.focus()
        self.refresh_bindings()

    def results_text(self) -> str:
        text, count = self.search_text, len(self.results.repos)
        if not count:
            where = self.hub().endpoint
            if not text:
                return f"No GGUF repos on {where}."
            return f"No GGUF repos on {where} match “{text}”: try fewer or other words."
        found = f"{count} repo{'s' if count != 1 else ''}" + (f" matching “{text}”" if text else "")
        more = " · n (or scrolling down) loads more" if self.pager and self.pager.has_more else ""
        return f"{found} · sorted by {self.sort}{more} · Enter lists a repo's quants"

    def action_more_results(self) -> None:
        self.load_page()

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.query_one("#hub-sort", Static).update(self.sort_text())
        if self.pager is not None:
            self.search(self.search_text)

    def action_focus_search(self) -> None:
        self.query_one("#hub-query", Input).focus()

    def action_leave_input(self) -> None:
        """To the results, else to the downloads (where p, x and s act), else nowhere."""
        if self.results.row_count:
            self.results.focus()
        elif self.downloads.rows:
            self.downloads.focus_list()
        else:
            self.set_focus(None)

    def action_back(self) -> None:
        self.dismiss()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if table is self.results and event.cursor_row >= table.row_count - 1:
            self.load_page()  # scrolled to the end: fetch the next page

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # A click on a row; the keyboard's Enter runs the tables' own bindings.
        if event.data_table is self.results:
            self.action_open_repo()
        elif event.data_table is self.quants:
            self.action_download_quant()

    # --- a repo's files -------------------------------------------------------------------

    def action_open_repo(self) -> None:
        repo_id = self.results.selected
        if repo_id is not None:
            self.open_repo(repo_id)

    def open_repo(self, repo_id: str) -> None:
        self.listing, self.listing_repo, self.fits, self.fit_note = None, repo_id, {}, ""
        self.memory = None
        self.quants.show(None, {}, measured=False)
        self.set_class(True, "-no-repo")
        self.show_repo(Content.assemble("Listing the GGUF files of ", (repo_id, "bold"), "…"))
        self._files_worker = self._list_files(self.hub(), self.settings, repo_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="hub-files")
    def _list_files(self, hub: Hub, settings: Settings, repo_id: str) -> None:
        self._route.install()
        worker = get_current_worker()
        listing = hub.list_gguf_files(repo_id)
        if worker.is_cancelled:
            return  # another repo was picked meanwhile
        self.post_message(self.Listed(listing))
        if not listing.models:
            return
        memory = read_free_vram(self.llm_app.services.read_gpus)
        fits: dict[str, FitEstimate | None] = {}
        note = ""  # a gated repo's header needs HF_TOKEN too: the gated note says so
        if settings.hub_token or not listing.gated:
            fits, note = measure_fits(settings, listing, memory.free)
        if not worker.is_cancelled:
            self.post_message(self.FitsMeasured(listing, fits, memory, note))

    def on_hub_screen_listed(self, message: Listed) -> None:
        if message.listing.repo_id != self.listing_repo:
            return
        self.listing = message.listing
        self.show_listing()
        if self.quants.row_count:
            self.set_class(False, "-no-repo")
            if self.focused is self.results:
                self.quants.focus()

    def on_hub_screen_fits_measured(self, message: FitsMeasured) -> None:
        if message.listing is not self.listing:
            return
        self.fits, self.memory, self.fit_note = message.fits, message.memory, message.note
        self.show_listing()

    def show_listing(self) -> None:
        if self.listing is not None:
            self.quants.show(self.listing, self.fits, measured=self.memory is not None)
            text = repo_text(
                self.listing,
                gated=self.is_gated(self.listing),
                repo_url=self.hub().repo_url(self.listing.repo_id),
                has_token=bool(self.settings.hub_token),
                memory=self.memory,
                fit_note=self.fit_note,
                withheld=self.settings.hub_token_withheld,
            )
            self.show_repo(text)

    def is_gated(self, listing: RepoFiles) -> bool:
        summary = self.results.repos.get(listing.repo_id)
        return listing.gated or (summary is not None and summary.gated)

    def on_hub_screen_hub_notice(self, message: HubNotice) -> None:
        self.log.warning(f"huggingface_hub: {message.text}")
        waiting = f"the Hub does not answer yet: {message.text}"
        listing = self._files_worker
        if self.searching:
            self.show_status(f"Searching… {waiting}")
        elif listing is not None and not listing.is_finished and self.listing is None:
            # Plain text: both the repo id and the library's words came over the network.
            self.show_repo(f"Listing {self.listing_repo}… {waiting}")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state is not WorkerState.ERROR or worker.group not in WORKER_TITLES:
            return
        from tui.app import error_text  # tui.app imports every screen, and so this module

        if worker is self._search_worker:
            self.searching = False
            self.show_status("✗ " + error_text(worker.error).replace("\n", "  "))
            self.refresh_bindings()
        elif worker is self._files_worker:
            self.show_repo(Content.styled("✗ " + error_text(worker.error), "$text-error"))
        else:
            return  # a newer search or listing replaced it: its failure no longer matters
        self.llm_app.report_worker_error(worker, title=WORKER_TITLES[worker.group])

    # --- downloads ------------------------------------------------------------------------

    def action_download_quant(self) -> None:
        listing, entry = self.listing, self.quants.selected
        if listing is None or entry is None:
            return
        if self.is_gated(listing) and not self.settings.hub_token:
            text = gated_text(
                self.hub().repo_url(listing.repo_id),
                has_token=False,
                withheld=self.settings.hub_token_withheld,
            )
            self.notify(text, title="Gated model", severity="warning", timeout=15, markup=False)
            return
        if not entry.complete:
            self.notify(
                f"{entry.name} is an incomplete split set on the Hub ({len(entry.files)} of "
                f"{entry.shards} parts): pick another quant.",
                title="Incomplete model",
                severity="warning",
                markup=False,
            )
            return
        folder = entry.name if entry.is_split else ""
        place = ""
        if self.settings.engine_remote:  # the file goes to the engine's host, not here
            from stack.engine.endpoint import resolve_endpoint
            from stack.engine.helper import models_place

            place = models_place(self.settings, resolve_endpoint())
        question = download_question(
            listing, entry, self.settings.models_dir, folder, self.fits.get(entry_key(entry)), place
        )
        request = DownloadRequest.for_entry(listing, entry, folder)

        async def confirmed(yes: bool | None) -> None:
            if yes:
                await self.downloads.start(self.settings, request, mmproj=entry.mmproj)
                self.refresh_bindings()

        self.app.push_screen(ConfirmScreen("Download", question, "Download"), confirmed)

    async def action_pause_download(self) -> None:
        row = self.downloads.selected
        if row is not None and row.done:
            self.notify(f"{row.relative} is downloaded already.", markup=False)
        elif row is not None:
            await self.downloads.resume_row(self.settings, row)

    def action_cancel_download(self) -> None:
        row = self.downloads.selected
        if row is None or not self.downloads.cancel_row(row):
            self.notify("The selected download is not running.", markup=False)

    async def action_serve_download(self) -> None:
        row = self.downloads.selected
        if row is None or not row.done:
            self.notify("Select a finished download first (Tab moves to the list).")
        elif row.mmproj:
            self.notify("A vision projector is loaded beside a model, not served on its own.")
        else:
            # Back on Models, which serves it the one way every pick does (a swap when the
            # stack runs), and shows the new file in its table.
            from tui.screens.models import ModelsScreen

            await self.app.pop_screen()
            if not isinstance(self.app.screen, ModelsScreen):
                await self.app.switch_mode("models")
            screen = self.app.screen
            if isinstance(screen, ModelsScreen):
                screen.serve_path(row.relative, "chat")

    def on_download_panel_finished(self, message: DownloadPanel.Finished) -> None:
        self.refresh_bindings()  # s serves what just finished

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.is_mounted:
            return True
        typing = isinstance(self.focused, Input)
        if action == "leave_input":
            return typing
        if action == "back":
            return not typing
        if action == "more_results":
            return self.pager is not None and self.pager.has_more and not self.searching
        if action in ("pause_download", "cancel_download"):
            return bool(self.downloads.rows)
        if action == "serve_download":
            return any(row.done and not row.mmproj for row in self.downloads.rows)
        return True
