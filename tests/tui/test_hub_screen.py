"""The Hugging Face screen against a fake Hub on loopback: search, quants, download, serve."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, ListView, Static

from stack.hub.client import Hub, hub_from_settings
from stack.hub.downloads import Downloader, JobState
from stack.hub.files import RepoFiles
from stack.settings import Settings, load_settings, set_setting
from tests.support.fakehub import FakeHub
from tests.support.gguf_factory import write_split_set, write_tiny_model
from tests.tui.conftest import FROZEN_CHECKS, write_env
from tests.tui.fakes import FakeEngine, fake_services, frozen_gpu, running_stack
from tests.tui.helpers import DEADLINE_S, SIZE, go_to, notes, settle, text, until
from tui.__main__ import LlmTuiApp, make_app
from tui.hub_log import HUB_LOGGER, HubLogRoute
from tui.screens.hub import HUB_SCREEN, HubScreen
from tui.screens.models import ModelTable
from tui.widgets.download_list import DownloaderFactory, DownloadPanel, DownloadRow
from tui.widgets.hub_tables import QuantsTable, ResultsTable

pytestmark = pytest.mark.anyio

REPO = "acme/Tiny-Chat-GGUF"
FILE = "Tiny-Chat-Q8_0.gguf"
TOKEN = "hf_0123456789abcdefghijklmnopqrstuvwxyz"
ODD = "odd-[b]name-F16.gguf"  # markup in a file name must show as written


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        yield hub


@pytest.fixture
def tiny(tmp_path: Path) -> bytes:
    return write_tiny_model(tmp_path / "source" / "tiny.gguf", name="tiny", seed=3).read_bytes()


@pytest.fixture
def settings(home: Path, fake_hub: FakeHub) -> Settings:
    # The fake Hub is plain http on loopback: HF_TOKEN goes there only when trusted.
    write_env(home, HF_ENDPOINT=fake_hub.url, HF_TRUST_ENDPOINT="true")
    return load_settings(home / ".env", create=True)


@pytest.fixture
def models(home: Path) -> Path:
    return home / "models"


def hub_screen(app: LlmTuiApp) -> HubScreen:
    assert isinstance(app.screen, HubScreen)
    return app.screen


def focused(app: LlmTuiApp) -> Widget | None:
    return app.focused


def panel(app: LlmTuiApp) -> DownloadPanel:
    return hub_screen(app).query_one(DownloadPanel)


def cells(table: Any, key: str) -> list[str]:
    return [str(cell) for cell in table.get_row(key)]


def stalling_downloader(settings: Settings) -> Downloader:
    """A real downloader held to 1 byte/s: after its first piece a download waits (until
    paused or cancelled, which wake it at once), however fast the machine is."""
    return Downloader.from_settings(settings, bandwidth_limit=1)


def bytes_arrived(row: DownloadRow) -> bool:
    return row.job is not None and row.job.bytes_done > 0


async def open_screen(
    app: LlmTuiApp,
    pilot: Pilot[int],
    *,
    make_downloader: DownloaderFactory | None = None,
) -> HubScreen:
    if make_downloader is not None:  # before `h`: the screen is built once per app
        app.install_screen(HubScreen(make_downloader=make_downloader), HUB_SCREEN)
    await settle(app)
    await go_to(app, pilot, "models")
    await pilot.press("h")
    await settle(app)
    return hub_screen(app)


async def search(app: LlmTuiApp, pilot: Pilot[int], words: str) -> None:
    query = hub_screen(app).query_one("#hub-query", Input)
    if app.focused is not query:
        await pilot.press("slash")  # typed into the field, a / is just a character
        await settle(app)
    assert app.focused is query
    await pilot.press("ctrl+u", *words)
    await pilot.press("enter")
    await settle(app)


async def open_repo(app: LlmTuiApp, pilot: Pilot[int], repo_id: str) -> QuantsTable:
    results = hub_screen(app).query_one(ResultsTable)
    results.focus()
    results.move_cursor(row=results.get_row_index(repo_id))
    await settle(app)
    await pilot.press("enter")
    await settle(app)
    return hub_screen(app).query_one(QuantsTable)


async def download(app: LlmTuiApp, pilot: Pilot[int], quants: QuantsTable, key: str) -> str:
    """Enter on ``key``, answer the question with y; the question's text."""
    quants.focus()
    quants.move_cursor(row=quants.get_row_index(key))
    await settle(app)
    await pilot.press("enter")
    await settle(app)
    question = text(app.screen.query_one("#confirm-question", Static))
    await pilot.press("y")
    await settle(app)
    return question


def only_row(app: LlmTuiApp) -> DownloadRow:
    rows = panel(app).rows
    assert len(rows) == 1
    return rows[0]


async def test_search_list_download_and_serve(
    app: LlmTuiApp, fake_hub: FakeHub, tiny: bytes, models: Path, home: Path
) -> None:
    fake_hub.add_repo(REPO, {FILE: tiny, ODD: tiny, "README.md": b"# tiny"}, downloads=1234)
    fake_hub.add_repo("acme/Other-GGUF", {"Other-Q4_K_M.gguf": tiny}, downloads=5)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(app, pilot)
        await search(app, pilot, "tiny")
        results = screen.query_one(ResultsTable)
        assert list(results.repos) == [REPO]
        assert cells(results, REPO)[:3] == [REPO, "1.2k", "0"]
        assert focused(app) is results
        status = text(screen.query_one("#hub-status", Static))
        assert status == (
            "1 repo matching “tiny” · sorted by downloads · Enter lists a repo's quants"
        )

        quants = await open_repo(app, pilot, REPO)
        assert focused(app) is quants
        row = cells(quants, FILE)
        assert row[:3] == ["Q8_0", "270 KiB", "1"]
        assert row[3].startswith("? ~")  # no GPU: what it needs, not a verdict
        assert cells(quants, ODD)[-1] == ODD
        repo_text = text(screen.query_one("#hub-repo", Static))
        assert repo_text.startswith(f"{REPO} @ ")
        assert "2 GGUF models" in repo_text and "fit: ? (it needs an NVIDIA GPU)" in repo_text

        question = await download(app, pilot, quants, FILE)
        assert "Tiny-Chat-Q8_0.gguf (Q8_0, 270 KiB) from acme/Tiny-Chat-GGUF" in question
        assert "into ./models?" in question
        row_widget = only_row(app)
        await until(lambda: row_widget.done, "the download finished")
        await settle(app)
        assert (models / FILE).read_bytes() == tiny
        assert not (models / f"{FILE}.part").exists()
        assert notes(app)[-1][0] == "Download finished"
        assert "Press s to serve it" in notes(app)[-1][1]

        await pilot.press("s")
        await settle(app)
        assert app.settings.chat_model == FILE
        assert load_settings(home / ".env").chat_model == FILE
        assert notes(app)[-1][0] == "Chat model set"
        # Served from the Models screen, which shows the new file as the chat model.
        assert app.current_mode == "models" and not isinstance(app.screen, HubScreen)
        table = app.screen.query_one(ModelTable)
        assert str(table.get_row(FILE)[0]) == "● chat"


async def test_serving_a_download_while_the_stack_runs_swaps_the_container(
    app: LlmTuiApp, engine: FakeEngine, fake_hub: FakeHub, tiny: bytes, home: Path
) -> None:
    engine.statuses = running_stack()
    fake_hub.add_repo(REPO, {FILE: tiny})
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot)
        await search(app, pilot, "tiny")
        quants = await open_repo(app, pilot, REPO)
        await download(app, pilot, quants, FILE)
        row = only_row(app)
        await until(lambda: row.done, "the download finished")
        await settle(app)
        await pilot.press("s")
        await settle(app)
        assert ("swap", FILE, "chat") in engine.calls  # the running container, not only .env
        assert notes(app)[-1][0] == "Model swapped"
        assert load_settings(home / ".env").chat_model == FILE


async def test_fit_is_measured_against_the_gpu(
    settings: Settings, fake_hub: FakeHub, tiny: bytes
) -> None:
    fake_hub.add_repo(REPO, {FILE: tiny})
    app = make_app(settings, fake_services(FROZEN_CHECKS, gpus=frozen_gpu))
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot)
        await search(app, pilot, "tiny")
        quants = await open_repo(app, pilot, REPO)
        assert cells(quants, FILE)[3] == "✓ fits"
        repo_text = text(hub_screen(app).query_one("#hub-repo", Static))
        assert "fit vs 1.70 GiB free on RTX 4050 Laptop GPU" in repo_text
        question = await download(app, pilot, quants, FILE)
        assert "On this GPU it would fit." in question
        await until(lambda: only_row(app).done, "the download finished")


async def test_a_gated_repo_explains_hf_token_until_one_is_set(
    app: LlmTuiApp, fake_hub: FakeHub, tiny: bytes, models: Path
) -> None:
    fake_hub.add_repo("acme/Locked-GGUF", {"Locked-Q8_0.gguf": tiny}, gated=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(app, pilot)
        await search(app, pilot, "locked")
        assert cells(screen.query_one(ResultsTable), "acme/Locked-GGUF")[-1] == "gated"
        quants = await open_repo(app, pilot, "acme/Locked-GGUF")
        repo_text = text(screen.query_one("#hub-repo", Static))
        assert f"accept its license at {fake_hub.url}/acme/Locked-GGUF" in repo_text
        assert "set HF_TOKEN" in repo_text
        assert cells(quants, "Locked-Q8_0.gguf")[3] == "?"  # its header needs the token too
        quants.focus()
        await settle(app)
        await pilot.press("enter")
        await settle(app)
        assert isinstance(app.screen, HubScreen)  # no question: it could only fail
        title, message = notes(app)[-1]
        assert title == "Gated model" and "HF_TOKEN" in message
        assert panel(app).rows == []
        assert list(models.iterdir()) == []

        fake_hub.allowed_tokens.add(TOKEN)  # the license is accepted, a token is set
        app.update_settings(set_setting(app.settings, "HF_TOKEN", TOKEN))
        await settle(app)
        repo_text = text(screen.query_one("#hub-repo", Static))
        assert "HF_TOKEN must belong to an account that accepted the license" in repo_text
        assert cells(quants, "Locked-Q8_0.gguf")[3].startswith("? ~")  # the header was read
        await download(app, pilot, quants, "Locked-Q8_0.gguf")
        await until(lambda: only_row(app).done, "the gated download finished")
        assert (models / "Locked-Q8_0.gguf").read_bytes() == tiny


async def test_a_token_withheld_from_an_untrusted_mirror_is_said_not_asked_for(
    app: LlmTuiApp, fake_hub: FakeHub, tiny: bytes, models: Path
) -> None:
    fake_hub.add_repo("acme/Locked-GGUF", {"Locked-Q8_0.gguf": tiny}, gated=True)
    fake_hub.allowed_tokens.add(TOKEN)
    settings = set_setting(app.settings, "HF_TOKEN", TOKEN)
    app.settings = set_setting(settings, "HF_TRUST_ENDPOINT", "false")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(app, pilot)
        await search(app, pilot, "locked")
        quants = await open_repo(app, pilot, "acme/Locked-GGUF")
        repo_text = text(screen.query_one("#hub-repo", Static))
        assert f"HF_TOKEN is not sent to {fake_hub.url}" in repo_text
        assert "HF_TRUST_ENDPOINT=true" in repo_text
        assert "set HF_TOKEN in Settings" not in repo_text
        quants.focus()
        await settle(app)
        await pilot.press("enter")
        await settle(app)
        title, message = notes(app)[-1]
        assert title == "Gated model" and "HF_TRUST_ENDPOINT" in message
        assert all("authorization" not in r.headers for r in fake_hub.requests)
        assert list(models.iterdir()) == []


async def test_no_match_and_a_vanished_repo_read_cleanly(
    app: LlmTuiApp, fake_hub: FakeHub, tiny: bytes
) -> None:
    fake_hub.add_repo(REPO, {FILE: tiny})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(app, pilot)
        await search(app, pilot, "nothing")
        status = text(screen.query_one("#hub-status", Static))
        assert (
            status == f"No GGUF repos on {fake_hub.url} match “nothing”: try fewer or other words."
        )

        await search(app, pilot, "tiny")
        fake_hub.remove_repo(REPO)
        await open_repo(app, pilot, REPO)
        repo_text = text(screen.query_one("#hub-repo", Static))
        assert repo_text.startswith(f"✗ repository {REPO} was not found on {fake_hub.url}")
        assert "Fix: check the name" in repo_text
        title, message = notes(app)[-1]
        assert title == "Could not list the files" and "Fix:" in message


async def test_cancel_keeps_the_part_and_the_next_run_resumes_it(
    settings: Settings, fake_hub: FakeHub, tiny: bytes, models: Path
) -> None:
    fake_hub.add_repo(REPO, {FILE: tiny})
    app = make_app(settings, fake_services(FROZEN_CHECKS))
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, make_downloader=stalling_downloader)
        await search(app, pilot, "tiny")
        quants = await open_repo(app, pilot, REPO)
        await download(app, pilot, quants, FILE)
        row = only_row(app)
        await until(lambda: bytes_arrived(row), "bytes arrived (then the download waits)")
        await pilot.press("x")
        await until(lambda: row.state is JobState.CANCELLED, "the download stopped")
        await settle(app)
        assert (models / f"{FILE}.part").stat().st_size > 0
        assert not (models / FILE).exists()
        title, message = notes(app)[-1]
        assert title == "Download cancelled" and ".part file" in message
        assert "part kept" in text(row.query_one(".download-state", Static))
    part_size = (models / f"{FILE}.part").stat().st_size

    again = make_app(settings, fake_services(FROZEN_CHECKS))
    async with again.run_test(size=SIZE) as pilot:
        await open_screen(again, pilot)
        row = only_row(again)
        assert row.note == "interrupted · p resumes" and row.present == part_size
        fake_hub.clear_requests()
        await pilot.press("escape")  # out of the search field: single keys act again
        await settle(again)
        assert again.focused is panel(again).query_one(ListView)
        await pilot.press("p")
        await settle(again)
        await until(lambda: row.done, "the resumed download finished")
        assert (models / FILE).read_bytes() == tiny
        gets = [r for r in fake_hub.requests if r.method == "GET" and r.file]
        assert [r.range for r in gets] == [f"bytes={part_size}-"]


async def test_hub_warnings_reach_the_screen_not_the_terminal(
    app: LlmTuiApp, fake_hub: FakeHub, tiny: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    fake_hub.add_repo(REPO, {FILE: tiny})
    fake_hub.faults.fail_status, fake_hub.faults.fail_times = 503, 1
    seen: list[Message] = []
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        screen = await open_screen(app, pilot)
        await search(app, pilot, "tiny")
        assert list(screen.query_one(ResultsTable).repos) == [REPO]
        logger = logging.getLogger(HUB_LOGGER)
        assert [type(h) for h in logger.handlers] == [HubLogRoute] and not logger.propagate
    assert not any(isinstance(h, HubLogRoute) for h in logger.handlers)  # given back at exit
    notices = [m.text for m in seen if isinstance(m, HubScreen.HubNotice)]
    assert any("Retrying in" in notice for notice in notices)
    assert "Retrying" not in capfd.readouterr().err


async def test_more_pages_and_another_sort_order(app: LlmTuiApp, fake_hub: FakeHub) -> None:
    for n in range(31):  # one more than a page
        fake_hub.add_repo(f"acme/m{n:02d}-GGUF", {"m-Q4_0.gguf": b"GGUF"}, downloads=n, likes=-n)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(app, pilot)
        await search(app, pilot, "")
        results = screen.query_one(ResultsTable)
        assert results.row_count == 30 and next(iter(results.repos)) == "acme/m30-GGUF"
        assert "n (or scrolling down) loads more" in text(screen.query_one("#hub-status", Static))
        await pilot.press("n")
        await settle(app)
        assert results.row_count == 31
        assert "loads more" not in text(screen.query_one("#hub-status", Static))
        assert screen.check_action("more_results", ()) is False

        await pilot.press("o")
        await settle(app)
        assert screen.sort == "likes"
        assert text(screen.query_one("#hub-sort", Static)) == "sort: likes (o)"
        assert next(iter(results.repos)) == "acme/m00-GGUF"
        assert results.row_count == 30


async def test_quitting_pauses_a_download_and_keeps_its_part(
    settings: Settings, fake_hub: FakeHub, tiny: bytes, models: Path
) -> None:
    fake_hub.add_repo(REPO, {FILE: tiny})
    app = make_app(settings, fake_services(FROZEN_CHECKS))
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot, make_downloader=stalling_downloader)
        await search(app, pilot, "tiny")
        quants = await open_repo(app, pilot, REPO)
        await download(app, pilot, quants, FILE)
        row = only_row(app)
        await until(lambda: bytes_arrived(row), "bytes arrived (then the download waits)")
        job = row.job
        assert job is not None and job.state is JobState.RUNNING
    # Quitting pauses the job and closes the downloader on a thread of its own, which joins
    # the download threads: once it has ended, the job has stopped.
    for closer in [t for t in threading.enumerate() if t.name == "close-downloads"]:
        closer.join(timeout=DEADLINE_S)
        assert not closer.is_alive()
    assert job.state is JobState.PAUSED
    assert (models / f"{FILE}.part").exists() and not (models / FILE).exists()


async def test_a_split_set_lands_in_its_own_folder(
    app: LlmTuiApp, fake_hub: FakeHub, tmp_path: Path, models: Path
) -> None:
    shards = write_split_set(tmp_path / "source", "Big-Q8_0", shards=2, seed=4)
    fake_hub.add_repo("acme/Big-GGUF", {f"Q8_0/{p.name}": p.read_bytes() for p in shards})
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(app, pilot)
        await search(app, pilot, "big")
        quants = await open_repo(app, pilot, "acme/Big-GGUF")
        key = f"Q8_0/{shards[0].name}"
        assert cells(quants, key)[2] == "2" and cells(quants, key)[-1] == "Big-Q8_0"
        question = await download(app, pilot, quants, key)
        assert "in 2 parts) from acme/Big-GGUF into ./models/Big-Q8_0?" in question
        row = only_row(app)
        await until(lambda: row.done, "both parts arrived")
        for shard in shards:
            assert (models / "Big-Q8_0" / shard.name).read_bytes() == shard.read_bytes()
        await pilot.press("s")
        await settle(app)
        assert app.settings.chat_model == f"Big-Q8_0/{shards[0].name}"


EVIL = "acme[/]Evil-[@click=app.quit]GGUF"  # markup in a repo id a Hub (or mirror) returns
EVIL_WARNING = "Retrying in 1s [/] [@click=app.quit]now[/]"


class HeldListing(Hub):
    """The real client, but a listing waits until the test lets it go (it is "in flight")."""

    def __init__(self, settings: Settings) -> None:
        real = hub_from_settings(settings)
        super().__init__(real.endpoint, real.token, token_withheld=real.token_withheld)
        self.listing = threading.Event()
        self.release = threading.Event()

    def list_gguf_files(self, repo_id: str, revision: str = "main") -> RepoFiles:
        self.listing.set()
        self.release.wait(timeout=DEADLINE_S)
        return super().list_gguf_files(repo_id, revision)


async def test_markup_from_the_hub_shows_as_written_and_runs_nothing(
    app: LlmTuiApp, fake_hub: FakeHub, tiny: bytes
) -> None:
    fake_hub.add_repo(EVIL, {FILE: tiny})
    hubs: list[HeldListing] = []

    def held_hub(settings: Settings) -> HeldListing:
        hubs.append(HeldListing(settings))
        return hubs[-1]

    app.install_screen(HubScreen(make_hub=held_hub), HUB_SCREEN)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(app, pilot)
        await search(app, pilot, "evil")
        results = screen.query_one(ResultsTable)
        assert cells(results, EVIL)[0] == EVIL

        results.move_cursor(row=results.get_row_index(EVIL))
        await settle(app)
        await pilot.press("enter")
        await until(hubs[-1].listing.is_set, "the listing is in flight")
        # What huggingface_hub logs while a request waits reaches the repo line.
        logging.getLogger(HUB_LOGGER).warning(EVIL_WARNING)
        repo_line = screen.query_one("#hub-repo", Static)
        await until(lambda: EVIL_WARNING in text(repo_line), "the warning is shown")
        assert text(repo_line) == f"Listing {EVIL}… the Hub does not answer yet: {EVIL_WARNING}"
        assert all("@click" not in str(span.style) for span in repo_line.visual.spans)

        hubs[-1].release.set()  # the library refuses such a name: the error names it as is
        await settle(app)
        assert EVIL in text(repo_line) and text(repo_line).startswith("✗ ")
        assert app.is_running and isinstance(app.screen, HubScreen)


async def test_an_error_and_its_fix_show_whole_at_80_columns(
    app: LlmTuiApp, fake_hub: FakeHub
) -> None:
    from textual.geometry import Region

    fake_hub.faults.fail_status = 403
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(app, pilot)
        await search(app, pilot, "tiny")
        status = screen.query_one("#hub-status", Static)
        assert "Fix: set HF_TOKEN" in text(status)
        # The status line wraps (it was one row, which cut the fix off at the edge).
        drawn = status.render_lines(Region(0, 0, status.size.width, status.size.height))
        shown = " ".join(" ".join(strip.text.split()) for strip in drawn)
        assert "Fix: set HF_TOKEN to a token that can read it" in shown, shown
