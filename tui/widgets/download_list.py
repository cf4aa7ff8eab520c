"""The downloads panel: one row per GGUF download, with a progress bar, speed, ETA and state.

The panel owns the `stack.hub.downloads.Downloader` (one per MODELS_DIR/endpoint/token; an older
one keeps running the jobs it already has). Progress arrives on the downloader's threads at
up to 10 Hz per job; it goes through a `Mailbox`, so a burst costs one message, and the
handler keeps only each row's newest snapshot. Enqueueing and scanning for interrupted
downloads touch the disk, so they run in thread workers; pause, resume and cancel only flip
a job's flags and run on the app loop.

Rows outlive their jobs: a cancelled or failed row keeps its request, so ``p`` starts it
again and the downloader resumes from the ``.part`` file left on disk.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import ListItem, ListView, ProgressBar, Static
from textual.worker import Worker, WorkerState

from stack.errors import LlmTuiError
from stack.hub.downloads import (
    Downloader,
    DownloadError,
    DownloadJob,
    DownloadProgress,
    DownloadRequest,
    JobState,
)
from stack.settings import Settings
from stack.units import format_size
from tui.formatting import format_duration
from tui.mailbox import Mailbox

if TYPE_CHECKING:
    from tui.app import LlmTuiApp

WORKER_TITLES = {
    "hub-download": "Download not started",
    "hub-interrupted": "Could not look for interrupted downloads",
}

DownloaderFactory = Callable[[Settings], Downloader]
# What makes two requests the same download, whatever commit they were listed at.
RequestKey = tuple[str, str, tuple[str, ...]]


def keep_progress(
    items: list[tuple[int, DownloadProgress]],
) -> list[tuple[int, DownloadProgress]]:
    """The newest snapshot of each row, and every final one (each is reported)."""
    last = {key: index for index, (key, _) in enumerate(items)}
    return [item for index, item in enumerate(items) if item[1].final or last[item[0]] == index]


def request_key(request: DownloadRequest) -> RequestKey:
    return (request.repo_id, request.folder, tuple(f.path for f in request.files))


def target_name(request: DownloadRequest) -> str:
    """Shard 1 (what llama.cpp opens) relative to MODELS_DIR: where the downloader puts it."""
    name = request.files[0].path.rsplit("/", 1)[-1]
    return f"{request.folder}/{name}" if request.folder else name


def make_downloader(settings: Settings) -> Downloader:
    """MODELS_DIR here, or the models on a remote engine's host (run there)."""
    from stack.hub.remote_downloads import downloader_for

    return downloader_for(settings)


def _downloader_key(settings: Settings) -> tuple[Path, str, str]:
    place = f"remote:{settings.remote_models_dir}" if settings.engine_remote else ""
    return (settings.models_dir / place, settings.hf_endpoint, settings.hub_token)


@dataclass(frozen=True)
class Interrupted:
    """A download an earlier run left half-done (found from its sidecar)."""

    request: DownloadRequest
    present: int  # bytes already on disk


def find_interrupted(downloader: Downloader) -> list[Interrupted]:
    """Interrupted downloads and how far each got (reads the disk, here or on the host)."""
    return [Interrupted(request, present) for request, present in downloader.interrupted()]


def place_of(downloader: Downloader) -> str:
    """Where its downloads land, for the messages: MODELS_DIR, or the remote host's models."""
    return str(getattr(downloader, "where", "MODELS_DIR"))


class DownloadRow(ListItem):
    """One download: name and repo, a progress bar, and what it is doing."""

    def __init__(self, key: int, request: DownloadRequest, *, mmproj: bool = False) -> None:
        super().__init__(classes="download-row")
        self.key = key
        self.request = request
        self.mmproj = mmproj
        self.job: DownloadJob | None = None
        self.progress: DownloadProgress | None = None
        self.starting = False
        self.note = ""  # why the row is idle: "interrupted", an enqueue error, ...
        self.present = 0  # bytes on disk before any job of this session ran

    @property
    def relative(self) -> str:
        return self.progress.name if self.progress is not None else target_name(self.request)

    @property
    def state(self) -> JobState | None:
        return self.progress.state if self.progress is not None else None

    @property
    def active(self) -> bool:
        return self.starting or (self.state is not None and not self.state.finished)

    @property
    def done(self) -> bool:
        return self.state is JobState.DONE

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(self._name_text(), classes="download-name")
            yield ProgressBar(total=self.request.total_size or 1, show_eta=False)
            yield Static("", classes="download-state", markup=False)

    def on_mount(self) -> None:
        self.redraw()

    def _name_text(self) -> Text:
        return Text.assemble((self.relative, "bold"), ("  " + self.request.repo_id, "dim"))

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        progress = self.progress
        bar = self.query_one(ProgressBar)
        total = progress.total if progress is not None else self.request.total_size
        done = progress.bytes_done if progress is not None else self.present
        bar.update(total=max(total, 1), progress=min(done, max(total, 1)))
        self.query_one(".download-name", Static).update(self._name_text())
        self.query_one(".download-state", Static).update(self.state_text())
        self.set_class(self.done, "-done")
        self.set_class(self.state is JobState.FAILED, "-failed")

    def show_interrupted(self, present: int) -> None:
        self.present = present
        self.note = "interrupted · p resumes"
        self.redraw()

    def state_text(self) -> str:
        progress = self.progress
        if self.starting and (progress is None or progress.state.finished):
            return "starting…"
        if progress is None:
            return self.note or "queued"
        sizes = f"{format_size(progress.bytes_done)}/{format_size(progress.total)}"
        state = progress.state
        if state is JobState.RUNNING:
            speed = f"{format_size(int(progress.speed))}/s" if progress.speed else "…"
            eta = f" · ETA {format_duration(progress.eta)}" if progress.eta is not None else ""
            return f"{sizes} · {speed}{eta}"
        if state is JobState.VERIFYING:
            return "verifying sha256…"
        if state is JobState.PAUSED:
            return f"paused at {sizes} · p resumes"
        if state is JobState.DONE:
            return "✓ done (vision projector)" if self.mmproj else "✓ done · s serves it"
        if state is JobState.FAILED:
            return "✗ failed · p retries"
        if state is JobState.CANCELLED:
            return "cancelled · part kept, p resumes"
        return "queued"


class DownloadPanel(Vertical):
    """Every download of this session (and those an earlier run left unfinished)."""

    DEFAULT_CSS = """
    DownloadPanel {
        height: auto; max-height: 9; border-top: solid $panel-lighten-2;
        border-title-color: $text; border-title-style: bold;
    }
    DownloadPanel ListView { height: auto; max-height: 8; }
    DownloadPanel .download-row Horizontal { height: 1; }
    DownloadPanel .download-name {
        width: 1fr; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    DownloadPanel ProgressBar { width: auto; }
    DownloadPanel ProgressBar Bar { width: 24; }
    DownloadPanel .download-state { width: 44; padding: 0 1; color: $text-muted; }
    DownloadPanel .-done .download-state { color: $text-success; }
    DownloadPanel .-failed .download-state { color: $text-error; }
    DownloadPanel #downloads-empty { color: $text-muted; padding: 0 1; }
    """

    class Progressed(Message):
        """New progress snapshots wait in the mailbox."""

    @dataclass
    class Enqueued(Message):
        key: int
        job: DownloadJob

    @dataclass
    class StartFailed(Message):
        key: int
        error: LlmTuiError

    @dataclass
    class FoundInterrupted(Message):
        models_dir: Path
        found: list[Interrupted]

    @dataclass
    class Finished(Message):
        """A download ended (done, failed or cancelled), and the user was told how."""

        row: DownloadRow
        progress: DownloadProgress

    def __init__(
        self, *, make_downloader: DownloaderFactory = make_downloader, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.border_title = "Downloads"
        self._make_downloader = make_downloader
        self._downloaders: dict[tuple[Path, str, str], Downloader] = {}
        self._mailbox: Mailbox[tuple[int, DownloadProgress]] = Mailbox(
            self, self.Progressed, compact=keep_progress
        )
        self._keys = itertools.count(1)
        self._scanned: set[Path] = set()
        self.place = "MODELS_DIR"  # where downloads land (a remote engine's host: its models)

    def compose(self) -> ComposeResult:
        yield Static(
            "No downloads yet: Enter on a quant downloads it.", id="downloads-empty", markup=False
        )
        yield ListView(id="downloads-list")

    @property
    def rows(self) -> list[DownloadRow]:
        return list(self.query(DownloadRow))

    @property
    def selected(self) -> DownloadRow | None:
        """The highlighted row; the newest one when none is highlighted."""
        listing = self.query_one(ListView)
        child = listing.highlighted_child
        if isinstance(child, DownloadRow):
            return child
        rows = self.rows
        return rows[-1] if rows else None

    def focus_list(self) -> None:
        self.query_one(ListView).focus()

    def row_for(self, request: DownloadRequest) -> DownloadRow | None:
        key = request_key(request)
        return next((r for r in self.rows if request_key(r.request) == key), None)

    def downloader(self, settings: Settings) -> Downloader:
        """The downloader for these settings (built here: its constructor touches nothing)."""
        key = _downloader_key(settings)
        if key not in self._downloaders:
            self._downloaders[key] = self._make_downloader(settings)
        self.place = place_of(self._downloaders[key])
        return self._downloaders[key]

    # --- starting -------------------------------------------------------------------------

    async def start(
        self, settings: Settings, request: DownloadRequest, *, mmproj: bool = False
    ) -> DownloadRow | None:
        """Queue ``request`` in a new row (or its old row); None when it already runs."""
        row = self.row_for(request)
        if row is not None and row.active:
            self.query_one(ListView).index = self.rows.index(row)
            return None
        if row is None:
            row = DownloadRow(next(self._keys), request, mmproj=mmproj)
            await self._add(row)
        row.request = request  # the newest listing's commit; the part resumes if it matches
        row.starting, row.note = True, ""
        row.redraw()
        self.query_one(ListView).index = self.rows.index(row)
        self._enqueue(self.downloader(settings), row.key, request)
        return row

    async def resume_row(self, settings: Settings, row: DownloadRow) -> None:
        """p: pause a running row, resume a paused one, start an idle one again."""
        job = row.job
        if row.starting:
            return
        if job is not None and job.state is JobState.PAUSED:
            job.resume()
        elif job is not None and not job.state.finished:
            job.pause()
        elif not row.done:
            await self.start(settings, row.request, mmproj=row.mmproj)

    def cancel_row(self, row: DownloadRow) -> bool:
        """Stop ``row`` for good (its ``.part`` stays); False when it was not running."""
        if row.job is None or row.job.state.finished:
            return False
        row.job.cancel()
        return True

    async def _add(self, row: DownloadRow) -> None:
        await self.query_one(ListView).append(row)
        self.query_one("#downloads-empty").display = False

    @work(thread=True, exit_on_error=False, group="hub-download")
    def _enqueue(self, downloader: Downloader, key: int, request: DownloadRequest) -> None:
        try:
            if not hasattr(downloader, "where"):  # a remote host's folder is made over there
                downloader.models_dir.mkdir(parents=True, exist_ok=True)
            job = downloader.enqueue(request, partial(self._put, key))
        except LlmTuiError as error:
            self.post_message(self.StartFailed(key, error))
        except OSError as error:
            message = f"cannot create {downloader.models_dir}: {error.strerror or error}"
            fix = "check MODELS_DIR and its permissions"
            self.post_message(self.StartFailed(key, DownloadError(message, fix=fix)))
        else:
            self.post_message(self.Enqueued(key, job))

    def _put(self, key: int, progress: DownloadProgress) -> None:
        self._mailbox.put_one((key, progress))  # any thread

    def _row(self, key: int) -> DownloadRow | None:
        return next((row for row in self.rows if row.key == key), None)

    def on_download_panel_enqueued(self, message: Enqueued) -> None:
        row = self._row(message.key)
        if row is not None:
            row.job, row.starting = message.job, False
            if row.progress is None or row.progress.final:
                row.progress = message.job.progress
            row.redraw()

    def on_download_panel_start_failed(self, message: StartFailed) -> None:
        row = self._row(message.key)
        if row is not None:
            row.starting, row.note = False, "✗ could not start · p retries"
            row.progress = None
            row.redraw()
        from tui.app import error_text  # tui.app imports every screen, and so this module

        self.app.notify(
            error_text(message.error),
            title=WORKER_TITLES["hub-download"],
            severity="error",
            timeout=15,
            markup=False,
        )

    def on_download_panel_progressed(self, message: Progressed) -> None:
        newest: dict[int, DownloadProgress] = {}
        finals: list[tuple[int, DownloadProgress]] = []
        for key, progress in self._mailbox.take():
            newest[key] = progress
            if progress.final:
                finals.append((key, progress))
        for key, progress in newest.items():
            row = self._row(key)
            if row is None:
                continue
            row.progress = progress
            if progress.final:
                row.starting = False
            row.redraw()
        for key, progress in finals:
            row = self._row(key)
            if row is not None:
                self.report(row, progress)
                self.post_message(self.Finished(row, progress))

    def report(self, row: DownloadRow, progress: DownloadProgress) -> None:
        """Say how a download ended, and what to do next."""
        from tui.app import error_text  # tui.app imports every screen, and so this module

        if progress.state is JobState.DONE:
            serve = "" if row.mmproj else " Press s to serve it as local-chat."
            self.app.notify(
                f"{progress.name} ({format_size(progress.total)}) is in {self.place}.{serve}",
                title="Download finished",
                markup=False,
            )
        elif progress.state is JobState.CANCELLED:
            self.app.notify(
                f"{progress.name}: the {format_size(progress.bytes_done)} downloaded so far stay "
                f"in {self.place} as a .part file; p resumes from there.",
                title="Download cancelled",
                markup=False,
            )
        elif progress.error is not None:
            self.app.notify(
                error_text(progress.error),
                title="Download failed",
                severity="error",
                timeout=15,
                markup=False,
            )

    # --- downloads an earlier run left half-done ----------------------------------------------

    def find_interrupted(self, settings: Settings) -> None:
        """Look for interrupted downloads in MODELS_DIR (once per folder)."""
        if settings.models_dir in self._scanned:
            return
        self._scanned.add(settings.models_dir)
        self._scan(self.downloader(settings), settings.models_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="hub-interrupted")
    def _scan(self, downloader: Downloader, models_dir: Path) -> None:
        self.post_message(self.FoundInterrupted(models_dir, find_interrupted(downloader)))

    async def on_download_panel_found_interrupted(self, message: FoundInterrupted) -> None:
        for item in message.found:
            if self.row_for(item.request) is not None:
                continue
            mmproj = "mmproj" in target_name(item.request).lower()
            row = DownloadRow(next(self._keys), item.request, mmproj=mmproj)
            await self._add(row)
            row.show_interrupted(item.present)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker state changes don't bubble: failures the workers did not foresee go to the
        # app's one handler.
        if event.state is WorkerState.ERROR:
            title = WORKER_TITLES.get(event.worker.group)
            cast("LlmTuiApp", self.app).report_worker_error(event.worker, title=title)

    # --- the end --------------------------------------------------------------------------

    def close(self) -> None:
        """Pause every running job (their parts resume next time) and stop the downloaders.

        Closing joins the download threads, which can wait on a slow socket: it happens on a
        thread of its own so the app never waits for the network on its way out.
        """
        downloaders, self._downloaders = list(self._downloaders.values()), {}
        for downloader in downloaders:
            for job in downloader.jobs():
                job.pause()

        def close_all() -> None:
            for downloader in downloaders:
                downloader.close(cancel=False)

        if downloaders:
            threading.Thread(target=close_all, name="close-downloads", daemon=True).start()
