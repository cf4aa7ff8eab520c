"""`stack.hub.downloads` against the fake Hub: resume, verify, refuse, control, report."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stack.hub.client import Hub
from stack.hub.downloads import (
    Downloader,
    DownloadError,
    DownloadProgress,
    DownloadRequest,
    JobState,
    RateLimiter,
    RetryPolicy,
)
from stack.hub.errors import HubError
from stack.hub.files import RemoteFile
from stack.hub.parts import file_size, format_size
from stack.models.library import scan_library
from stack.settings import load_settings
from tests.support.fakehub import CHUNK_SIZE, FakeHub, make_payload
from tests.support.gguf_factory import write_split_set
from tests.support.tiers import unavailable

pytestmark = pytest.mark.integration

REPO = "acme/model-GGUF"
NAME = "model-Q4_K_M.gguf"
DATA = make_payload(40 * CHUNK_SIZE + 321, seed=7)  # ~2.6 MB
FAST = RetryPolicy(tries=6, first_delay=0.01, max_delay=0.05)
TIMEOUT = 20.0


@pytest.fixture
def fake() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        hub.add_repo(REPO, {NAME: DATA, "README.md": b"# model\n"})
        yield hub


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "models"
    path.mkdir()
    return path


@pytest.fixture
def make(fake: FakeHub, models: Path) -> Iterator[Callable[..., Downloader]]:
    made: list[Downloader] = []

    def build(**options: object) -> Downloader:
        options.setdefault("endpoint", fake.url)
        options.setdefault("retry", FAST)
        downloader = Downloader(models, **options)  # type: ignore[arg-type]
        made.append(downloader)
        return downloader

    yield build
    for downloader in made:
        downloader.close()


def _request(fake: FakeHub, repo: str = REPO, *names: str, folder: str = "") -> DownloadRequest:
    listing = Hub(endpoint=fake.url).list_gguf_files(repo)
    files = [f for e in listing.entries for f in e.files if not names or f.path in names]
    return DownloadRequest(repo, tuple(files), listing.commit, folder)


def _gets(fake: FakeHub, name: str = NAME) -> list[str | None]:
    return [r.range for r in fake.requests if r.method == "GET" and r.path.endswith("/" + name)]


def _listing(models: Path) -> list[str]:
    return sorted(p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file())


def _wait_for(test: Callable[[], bool], what: str) -> None:
    """Poll a state that another thread or process changes; the deadline only reports a hang."""
    deadline = time.monotonic() + TIMEOUT
    while not test():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


class _Events:
    """Collects progress events and lets a test wait for one without sleeping."""

    def __init__(self) -> None:
        self.items: list[DownloadProgress] = []
        self._cond = threading.Condition()

    def __call__(self, progress: DownloadProgress) -> None:
        with self._cond:
            self.items.append(progress)
            self._cond.notify_all()

    def wait_for(self, test: Callable[[DownloadProgress], bool]) -> DownloadProgress:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(test(p) for p in self.items), timeout=TIMEOUT)
            assert ok, f"no such event in {[p.state for p in self.items]}"
            return next(p for p in self.items if test(p))


# -- resume -----------------------------------------------------------------------------------


def test_restart_resumes_from_the_part_and_never_refetches_a_byte(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    cut = 10 * CHUNK_SIZE + 777
    fake.faults.drop_after_bytes = cut
    fake.faults.drop_times = 1
    request = _request(fake, REPO, NAME)

    # First run: the connection drops and this process gives up at once (a crash, Ctrl+C).
    first = make(retry=RetryPolicy(tries=1)).enqueue(request).wait(TIMEOUT)
    assert first.state is JobState.FAILED
    assert first.error is not None and first.error.message.startswith(f"cannot reach {fake.url}")
    part = models / f"{NAME}.part"
    assert part.stat().st_size == cut
    sidecar = json.loads((models / f"{NAME}.part.json").read_text())
    assert sidecar["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert sidecar["commit"] == fake.repo(REPO).sha and sidecar["size"] == len(DATA)
    assert sidecar["etag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert not (models / NAME).exists()

    # A new program start: another Downloader finds the part and asks for the rest only.
    second = make()
    assert second.unfinished() == [request]
    done = second.enqueue(request).wait(TIMEOUT)

    assert done.state is JobState.DONE, done.error
    assert _gets(fake) == [None, f"bytes={cut}-"]
    assert [r.status for r in fake.requests if r.method == "GET"][-1] == 206
    assert fake.bytes_served(REPO, NAME) == len(DATA)
    assert (models / NAME).read_bytes() == DATA
    assert _listing(models) == [NAME]  # no part, no sidecar left behind
    assert second.unfinished() == []


KILLED_CHILD = """
import sys
from pathlib import Path
from stack.hub.downloads import Downloader, DownloadRequest
from stack.hub.files import RemoteFile
models, endpoint, repo, name, size, sha256, commit = sys.argv[1:]
request = DownloadRequest(repo, (RemoteFile(name, int(size), sha256),), commit)
Downloader(Path(models), endpoint=endpoint).enqueue(request).wait()
"""


def test_a_killed_process_leaves_a_part_the_next_run_resumes(
    fake: FakeHub, models: Path, make: Callable[..., Downloader], tmp_path: Path
) -> None:
    held = 5 * CHUNK_SIZE + 11
    fake.faults.hold_after_bytes = held  # the child cannot get further than this
    request = _request(fake, REPO, NAME)
    (remote,) = request.files
    args = [models, fake.url, REPO, NAME, remote.size, remote.sha256, request.revision]
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, *map(str, args)],
        cwd=Path(__file__).resolve().parents[2],
    )
    part = models / f"{NAME}.part"
    try:
        fake.wait_held()
        _wait_for(lambda: file_size(part) == held, "the child wrote what the server sent")
    finally:
        child.kill()
        child.wait(TIMEOUT)
    assert part.stat().st_size == held

    # The crash leaves the lock's file, unlocked: it hides no download and blocks none.
    assert (models / f"{NAME}.part.lock").exists()
    assert scan_library(models, cache_path=tmp_path / "library.json") == []
    resumed = make()
    assert resumed.unfinished() == [request]
    fake.reset_faults()
    done = resumed.enqueue(request).wait(TIMEOUT)

    assert done.state is JobState.DONE, done.error
    assert _gets(fake)[-1] == f"bytes={held}-"
    assert (models / NAME).read_bytes() == DATA
    assert _listing(models) == [NAME]


def test_dropped_connection_retries_in_process_from_the_current_size(
    fake: FakeHub, make: Callable[..., Downloader], models: Path
) -> None:
    fake.faults.drop_after_bytes = 5 * CHUNK_SIZE
    fake.faults.drop_times = 3
    done = make().enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    assert _gets(fake) == [None] + [f"bytes={n * 5 * CHUNK_SIZE}-" for n in (1, 2, 3)]
    assert fake.bytes_served(REPO, NAME) == len(DATA)
    assert (models / NAME).read_bytes() == DATA


def test_resume_through_an_lfs_redirect(models: Path, make: Callable[..., Downloader]) -> None:
    with FakeHub(lfs_redirect=True) as cdn:
        cdn.add_repo(REPO, {NAME: DATA})
        cdn.faults.drop_after_bytes = 123_457
        cdn.faults.drop_times = 1
        done = make(endpoint=cdn.url).enqueue(_request(cdn, REPO, NAME)).wait(TIMEOUT)
        assert done.state is JobState.DONE, done.error
        cdn_gets = [r for r in cdn.requests if r.path.startswith("/_cdn/")]
        assert [r.range for r in cdn_gets] == [None, "bytes=123457-"]
        assert cdn.bytes_served(REPO, NAME) == len(DATA)
    assert (models / NAME).read_bytes() == DATA


def test_a_server_that_ignores_range_restarts_the_file_cleanly(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    fake.faults.drop_after_bytes = 100_000
    request = _request(fake, REPO, NAME)
    make(retry=RetryPolicy(tries=1)).enqueue(request).wait(TIMEOUT)
    assert (models / f"{NAME}.part").stat().st_size == 100_000

    fake.reset_faults()
    fake.faults.ignore_range = True
    done = make().enqueue(request).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    gets = [r for r in fake.requests if r.method == "GET" and r.path.endswith(NAME)]
    assert [(r.range, r.status) for r in gets] == [(None, 200), ("bytes=100000-", 200)]
    assert (models / NAME).read_bytes() == DATA


def test_a_part_from_another_commit_is_set_aside_and_the_download_starts_over(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    fake.faults.drop_after_bytes = 50_000
    make(retry=RetryPolicy(tries=1)).enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)
    fake.reset_faults()
    new = make_payload(len(DATA) + 10, seed=8)
    fake.set_files(REPO, {NAME: new})
    fake.clear_requests()

    done = make().enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)

    assert done.state is JobState.DONE, done.error
    assert _gets(fake) == [None]
    assert (models / NAME).read_bytes() == new
    assert (models / f"{NAME}.part.stale").stat().st_size == 50_000
    assert _listing(models) == [NAME, f"{NAME}.part.stale"]


# -- verification -----------------------------------------------------------------------------


def test_corrupted_download_is_kept_as_corrupt_and_fails_clearly(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    fake.faults.corrupt_byte_at = 1_000_000
    done = make().enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)
    assert done.state is JobState.FAILED
    assert isinstance(done.error, DownloadError)
    expected = hashlib.sha256(DATA).hexdigest()
    assert done.error.message.startswith(f"the download was corrupted: {NAME} has sha256 ")
    assert f"expected {expected}" in done.error.message
    assert done.error.fix == f"delete {models / (NAME + '.corrupt')} and retry"
    assert _listing(models) == [f"{NAME}.corrupt"]
    assert (models / f"{NAME}.corrupt").stat().st_size == len(DATA)


def test_split_set_appears_only_once_every_shard_is_verified(
    fake: FakeHub, models: Path, make: Callable[..., Downloader], tmp_path: Path
) -> None:
    shards = [p.read_bytes() for p in write_split_set(tmp_path, "big-Q8_0", shards=3)]
    shards[2] += make_payload(len(shards[0]) + len(shards[1]), seed=3)  # the last is biggest
    names = [f"big-Q8_0-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    fake.add_repo("acme/big-GGUF", {f"Q8_0/{n}": s for n, s in zip(names, shards, strict=True)})
    # One flipped byte past the end of shards 1 and 2: only shard 3 arrives corrupted.
    fake.faults.corrupt_byte_at = max(len(shards[0]), len(shards[1])) + 10
    request = _request(fake, "acme/big-GGUF", folder="big")
    seen_final: list[list[str]] = []

    def watch(progress: DownloadProgress) -> None:
        if not progress.final:
            seen_final.append([n for n in names if (models / "big" / n).exists()])

    failed = make(on_progress=watch).enqueue(request).wait(TIMEOUT)
    assert failed.state is JobState.FAILED
    assert "corrupted" in str(failed.error)
    assert _listing(models) == [
        f"big/{names[0]}.part",
        f"big/{names[0]}.part.json",
        f"big/{names[1]}.part",
        f"big/{names[1]}.part.json",
        f"big/{names[2]}.corrupt",
    ]

    fake.reset_faults()
    (models / "big" / f"{names[2]}.corrupt").unlink()
    done = make(on_progress=watch).enqueue(request).wait(TIMEOUT)

    assert done.state is JobState.DONE, done.error
    assert seen_final and all(present == [] for present in seen_final)
    assert _listing(models) == [f"big/{n}" for n in names]  # side by side, flattened
    assert [(models / "big" / n).read_bytes() for n in names] == shards
    for name, shard in zip(names[:2], shards[:2], strict=True):
        assert fake.bytes_served("acme/big-GGUF", f"Q8_0/{name}") == len(shard)  # once


def test_a_file_already_in_place_is_checked_not_fetched(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    (models / NAME).write_bytes(DATA)
    done = make().enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)
    assert done.state is JobState.DONE
    assert _gets(fake) == []
    (models / NAME).write_bytes(b"something else")
    clash = make().enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)
    assert clash.state is JobState.FAILED
    assert "already exists and differs" in str(clash.error)
    assert (models / NAME).read_bytes() == b"something else"


def test_a_stray_part_beside_a_file_in_place_never_replaces_it(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    (models / NAME).write_bytes(DATA)
    (models / f"{NAME}.part").write_bytes(DATA[:1000])  # left by some older attempt
    done = make().enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    assert (models / NAME).read_bytes() == DATA
    assert (models / f"{NAME}.part").stat().st_size == 1000


def test_bytes_someone_else_adds_to_the_part_fail_the_check_of_the_file(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    held = 5 * CHUNK_SIZE
    fake.faults.hold_after_bytes = held
    job = make().enqueue(_request(fake, REPO, NAME))
    fake.wait_held()
    _wait_for(lambda: job.bytes_done == held, "the first bytes were written")
    with open(models / f"{NAME}.part", "ab") as other:  # a writer that takes no lock
        other.write(b"junk")
    fake.release()

    done = job.wait(TIMEOUT)

    # The stream alone hashes right; the file on disk is what must match.
    assert done.state is JobState.FAILED
    assert isinstance(done.error, DownloadError)
    assert done.error.message == (
        f"{NAME} is {len(DATA) + 4} bytes on disk after the download, the listing said "
        f"{len(DATA)}: something else wrote to it; the bad copy is kept as {NAME}.corrupt"
    )
    assert _listing(models) == [f"{NAME}.corrupt"]


def test_a_verified_part_changed_before_its_rename_is_hashed_again(
    fake: FakeHub, models: Path, make: Callable[..., Downloader], tmp_path: Path
) -> None:
    shards = [p.read_bytes() for p in write_split_set(tmp_path, "big-Q8_0", shards=2)]
    shards[1] += make_payload(4 * CHUNK_SIZE, seed=5)
    names = [f"big-Q8_0-0000{i}-of-00002.gguf" for i in (1, 2)]
    fake.add_repo("acme/big-GGUF", dict(zip(names, shards, strict=True)))
    fake.faults.hold_after_bytes = len(shards[0]) + CHUNK_SIZE  # only shard 2 is that long
    job = make().enqueue(_request(fake, "acme/big-GGUF", folder="big"))
    fake.wait_held()  # shard 1 is verified and waits for the rename at the end
    first = models / "big" / f"{names[0]}.part"
    swapped = first.with_name("swapped")
    swapped.write_bytes(bytes(len(shards[0])))  # same size, other bytes, a new file
    os.replace(swapped, first)
    fake.release()

    done = job.wait(TIMEOUT)

    assert done.state is JobState.FAILED
    assert isinstance(done.error, DownloadError)
    assert done.error.message.startswith(f"the download was corrupted: big/{names[0]} has sha256")
    assert done.error.message.endswith(f"the bad copy is kept as big/{names[0]}.corrupt")
    assert _listing(models) == [
        f"big/{names[0]}.corrupt",
        f"big/{names[1]}.part",
        f"big/{names[1]}.part.json",
    ]


def test_a_part_replaced_between_runs_is_hashed_from_disk_not_from_memory(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    cut = 10 * CHUNK_SIZE
    fake.faults.drop_after_bytes = cut
    fake.faults.drop_times = 1
    fake.faults.corrupt_byte_at = 1000  # this process's copy gets one bad byte
    request = _request(fake, REPO, NAME)
    downloader = make(retry=RetryPolicy(tries=1))
    assert downloader.enqueue(request).wait(TIMEOUT).state is JobState.FAILED
    part = models / f"{NAME}.part"
    assert part.stat().st_size == cut and part.read_bytes() != DATA[:cut]
    # Another program puts a good copy of the same length in its place.
    fresh = models / "fresh"
    fresh.write_bytes(DATA[:cut])
    os.replace(fresh, part)
    fake.reset_faults()

    done = downloader.enqueue(request).wait(TIMEOUT)

    assert done.state is JobState.DONE, done.error
    assert _gets(fake)[-1] == f"bytes={cut}-"
    assert (models / NAME).read_bytes() == DATA


@pytest.mark.parametrize("extra", [1, -1], ids=["one-byte-more", "endless"])
def test_a_body_longer_than_listed_is_cut_at_the_listed_size(
    fake: FakeHub, models: Path, make: Callable[..., Downloader], extra: int
) -> None:
    fake.faults.overrun_bytes = extra
    request = _request(fake, REPO, NAME)
    failed = make().enqueue(request).wait(TIMEOUT)

    assert failed.state is JobState.FAILED
    assert isinstance(failed.error, DownloadError)
    assert failed.error.message == (
        f"{fake.url} sent more than the {len(DATA)} bytes listed for {NAME}; "
        "the listed bytes are kept, the rest was not written"
    )
    assert "HF_ENDPOINT" in (failed.error.fix or "")
    part = models / f"{NAME}.part"
    assert part.read_bytes() == DATA  # not a byte more on disk
    assert _listing(models) == [f"{NAME}.part", f"{NAME}.part.json"]

    # The retry finds the part complete, checks its sha256, and fetches nothing.
    fake.reset_faults()
    fake.clear_requests()
    done = make().enqueue(request).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    assert _gets(fake) == []
    assert (models / NAME).read_bytes() == DATA


# -- one writer per part ---------------------------------------------------------------------


def test_two_downloaders_never_write_one_part(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    held = 3 * CHUNK_SIZE
    fake.faults.hold_after_bytes = held
    request = _request(fake, REPO, NAME)
    first = make().enqueue(request)
    fake.wait_held()  # the first job holds the part's lock from before its first request
    part, sidecar = models / f"{NAME}.part", models / f"{NAME}.part.json"
    _wait_for(lambda: first.bytes_done == held, "the first bytes were written")
    before = (part.read_bytes(), sidecar.read_bytes())

    second = make().enqueue(request).wait(TIMEOUT)

    assert second.state is JobState.FAILED
    assert isinstance(second.error, DownloadError)
    assert second.error.message == f"{NAME} is already being downloaded by this llm-tui"
    assert second.error.fix == "wait for that download or cancel it"
    assert (part.read_bytes(), sidecar.read_bytes()) == before
    assert len(_gets(fake)) == 1
    fake.release()
    assert first.wait(TIMEOUT).state is JobState.DONE
    assert (models / NAME).read_bytes() == DATA
    assert _listing(models) == [NAME]  # the lock's file went with the lock


# -- the disk ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem (tmpfs) to fill up or make read-only; mounting needs root."""
    mount = tmp_path / "small"
    mount.mkdir()
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "llm-tui-test", str(mount)],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        unavailable("a 1 MiB tmpfs", "no mount command")
    if result.returncode != 0:
        unavailable("a 1 MiB tmpfs", result.stderr.strip() or "mount failed")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _remount(mount: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mount)], check=True)


def _on(disk: Path, fake: FakeHub, **options: object) -> Downloader:
    # The free-space check before a download would refuse this tiny disk; the point here is
    # the write failing on a real filesystem, so that check is told there is room.
    return Downloader(disk, endpoint=fake.url, free_space=lambda _: 1 << 40, **options)  # type: ignore[arg-type]


def test_a_full_disk_fails_in_one_line_keeps_the_part_and_the_retry_resumes(
    fake: FakeHub, small_disk: Path
) -> None:
    request = _request(fake, REPO, NAME)
    with _on(small_disk, fake, retry=FAST) as downloader:
        full = downloader.enqueue(request).wait(TIMEOUT)

    assert full.state is JobState.FAILED
    assert isinstance(full.error, DownloadError)
    part = small_disk / f"{NAME}.part"
    kept = part.stat().st_size
    assert 0 < kept < len(DATA)
    assert full.error.message == (
        f"the disk is full: {NAME} stopped in {small_disk} ({format_size(kept)} of "
        f"{format_size(len(DATA))} kept, the retry resumes from there)"
    )
    assert full.error.fix == (
        "free some space on that disk, or set MODELS_DIR to a bigger one, then retry"
    )
    assert part.read_bytes() == DATA[:kept]  # exactly what was hashed, no torn piece
    assert (small_disk / f"{NAME}.part.json").exists()

    _remount(small_disk, "size=4m")
    with _on(small_disk, fake) as downloader:
        done = downloader.enqueue(request).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    assert _gets(fake)[-1] == f"bytes={kept}-"
    assert (small_disk / NAME).read_bytes() == DATA
    assert _listing(small_disk) == [NAME]


def test_a_read_only_folder_fails_in_one_line_and_keeps_the_part(
    fake: FakeHub, small_disk: Path
) -> None:
    fake.faults.drop_after_bytes = 100_000
    fake.faults.drop_times = 1
    request = _request(fake, REPO, NAME)
    with _on(small_disk, fake, retry=RetryPolicy(tries=1)) as downloader:
        assert downloader.enqueue(request).wait(TIMEOUT).state is JobState.FAILED
    before = _listing(small_disk)
    assert before == [f"{NAME}.part", f"{NAME}.part.json"]

    _remount(small_disk, "ro")
    with _on(small_disk, fake) as downloader:
        refused = downloader.enqueue(request).wait(TIMEOUT)
    assert refused.state is JobState.FAILED
    assert isinstance(refused.error, DownloadError)
    assert refused.error.message == (
        f"cannot write {NAME}: {small_disk} is on a read-only filesystem"
    )
    assert refused.error.fix == (
        "mount it read-write, or set MODELS_DIR to a writable folder, then retry"
    )
    assert _listing(small_disk) == before
    assert (small_disk / f"{NAME}.part").stat().st_size == 100_000

    _remount(small_disk, "rw,size=4m")
    with _on(small_disk, fake) as downloader:
        done = downloader.enqueue(request).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    assert _gets(fake)[-1] == "bytes=100000-"
    assert (small_disk / NAME).read_bytes() == DATA


# -- refusals ---------------------------------------------------------------------------------


def test_not_enough_disk_space_is_refused_before_any_write(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    checked: list[Path] = []

    def tiny_disk(path: Path) -> int:
        checked.append(path)
        return 300 * 1024 * 1024  # less than the file + the 512 MiB margin

    done = make(free_space=tiny_disk).enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)
    assert done.state is JobState.FAILED
    assert isinstance(done.error, DownloadError)
    assert done.error.message.startswith(f"not enough free disk space for {NAME}")
    assert "512 MiB margin, 300 MiB free" in done.error.message
    assert checked == [models]
    assert _listing(models) == []
    assert _gets(fake) == []


@pytest.mark.parametrize(
    ("path", "folder"),
    [
        ("../../x.gguf", ""),
        ("sub/../../x.gguf", ""),
        ("/etc/x.gguf", ""),
        ("C:/x.gguf", ""),
        ("dir\\x.gguf", ""),
        ("x.gguf", "../outside"),
        ("x.gguf", "/abs"),
    ],
)
def test_unsafe_names_are_refused_and_nothing_is_written(
    fake: FakeHub, models: Path, make: Callable[..., Downloader], path: str, folder: str
) -> None:
    request = DownloadRequest(REPO, (RemoteFile(path, 10, "0" * 64),), "main", folder)
    with pytest.raises(DownloadError) as refused:
        make().enqueue(request)
    assert refused.value.message.startswith("refusing to download")
    assert refused.value.fix == "nothing was written; pick another file or repo"
    assert list(models.parent.rglob("x.gguf*")) == []
    assert _listing(models) == []
    assert fake.requests == []


def test_a_symlinked_folder_cannot_lead_outside_models_dir(
    fake: FakeHub, models: Path, make: Callable[..., Downloader], tmp_path: Path
) -> None:
    (models / "escape").symlink_to(tmp_path)
    request = DownloadRequest(REPO, (RemoteFile(NAME, 10, None),), "main", "escape")
    with pytest.raises(DownloadError, match="outside MODELS_DIR"):
        make().enqueue(request)


def test_gated_repo_without_token_fails_with_the_license_hint(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    fake.add_repo("meta/gated-GGUF", {NAME: DATA}, gated=True)
    fake.allowed_tokens.add("hf_ok")
    request = _request(fake, "meta/gated-GGUF", NAME)
    refused = make().enqueue(request).wait(TIMEOUT)
    assert refused.state is JobState.FAILED
    assert isinstance(refused.error, HubError)
    assert refused.error.message == (
        f"meta/gated-GGUF is gated: accept its license on the website "
        f"({fake.url}/meta/gated-GGUF) and set HF_TOKEN"
    )
    assert _listing(models) == []  # nothing arrived, so no empty part is left behind

    done = make(token="hf_ok").enqueue(request).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    authorization = [r.headers.get("authorization") for r in fake.requests if "/resolve/" in r.path]
    assert authorization == [None, "Bearer hf_ok"]


def test_missing_file_and_server_errors(
    fake: FakeHub, models: Path, make: Callable[..., Downloader], caplog: pytest.LogCaptureFixture
) -> None:
    commit = fake.repo(REPO).sha
    gone = DownloadRequest(REPO, (RemoteFile("gone-Q4_K_M.gguf", 5, "0" * 64),), commit)
    missing = make().enqueue(gone).wait(TIMEOUT)
    assert isinstance(missing.error, HubError)
    assert missing.error.message == f"file gone-Q4_K_M.gguf was not found in {REPO}"

    request = _request(fake, REPO, NAME)
    fake.faults.fail_status = 503
    down = make().enqueue(request).wait(TIMEOUT)
    assert isinstance(down.error, HubError)
    assert down.error.message == f"{fake.url} had a server error (503)"

    fake.reset_faults()
    fake.faults.fail_status = 503
    fake.faults.fail_times = 1
    fake.faults.retry_after = 1
    with caplog.at_level(logging.INFO, logger="stack.hub.downloads"):
        done = make().enqueue(request).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    waits = [r.args[1] for r in caplog.records if r.msg.startswith("retrying")]  # type: ignore[index]
    assert waits == [1.0]  # Retry-After beat the 10 ms backoff


def test_unreachable_endpoint_says_check_the_network(
    models: Path, make: Callable[..., Downloader]
) -> None:
    request = DownloadRequest(REPO, (RemoteFile(NAME, 5, "0" * 64),), "main")
    done = make(endpoint="http://127.0.0.1:9").enqueue(request).wait(TIMEOUT)
    assert isinstance(done.error, HubError)
    assert done.error.message.startswith("cannot reach http://127.0.0.1:9")
    assert done.error.fix == "check the network or HF_ENDPOINT"


# -- control and progress ---------------------------------------------------------------------


def test_pause_resume_and_cancel_keep_the_part(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    # Each body stops at the hold until released, so no control below can come too late.
    fake.faults.hold_after_bytes = 5 * CHUNK_SIZE
    events = _Events()
    downloader = make(on_progress=events)
    job = downloader.enqueue(_request(fake, REPO, NAME))
    fake.wait_held(1)
    _wait_for(lambda: job.bytes_done == 5 * CHUNK_SIZE, "the first bytes were written")

    job.pause()  # seen when the next piece arrives
    fake.release()
    paused = events.wait_for(lambda p: p.state is JobState.PAUSED)
    part = models / f"{NAME}.part"
    assert part.stat().st_size == paused.bytes_done > 5 * CHUNK_SIZE
    assert job.state is JobState.PAUSED and not job.progress.final

    fake.faults.hold_after_bytes = 3 * CHUNK_SIZE  # the resumed body stops again
    job.resume()
    fake.wait_held(2)
    _wait_for(lambda: job.bytes_done == paused.bytes_done + 3 * CHUNK_SIZE, "resumed bytes")
    job.cancel()
    fake.release()
    cancelled = job.wait(TIMEOUT)
    assert cancelled.state is JobState.CANCELLED and cancelled.final
    assert _gets(fake)[:2] == [None, f"bytes={paused.bytes_done}-"]
    assert part.stat().st_size == cancelled.bytes_done  # cancel keeps every byte
    assert (models / f"{NAME}.part.json").exists()
    finals = [p for p in events.items if p.final]
    assert len(finals) == 1 and events.items[-1] is finals[0]

    # Bytes the server had in flight when we hung up are fetched again; none on disk is.
    fake.reset_faults()
    done = downloader.enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    assert _gets(fake)[-1] == f"bytes={cancelled.bytes_done}-"
    assert (models / NAME).read_bytes() == DATA


def test_concurrency_cap_queues_the_rest(
    fake: FakeHub, make: Callable[..., Downloader], models: Path
) -> None:
    fake.add_repo("acme/other-GGUF", {"other-Q8_0.gguf": DATA[:100_000]})
    fake.faults.hold_after_bytes = CHUNK_SIZE
    downloader = make(concurrency=1)
    first = downloader.enqueue(_request(fake, REPO, NAME))
    second = downloader.enqueue(_request(fake, "acme/other-GGUF"))
    fake.wait_held()  # the only worker is busy with the first job
    assert second.state is JobState.QUEUED
    second.pause()
    assert second.state is JobState.PAUSED
    first.cancel()
    fake.reset_faults()
    assert first.wait(TIMEOUT).state is JobState.CANCELLED
    assert second.state is JobState.PAUSED  # a paused job is skipped, not started
    second.resume()
    assert second.wait(TIMEOUT).state is JobState.DONE
    fake.faults.hold_after_bytes = CHUNK_SIZE
    again = downloader.enqueue(_request(fake, REPO, NAME))
    with pytest.raises(DownloadError, match="already being downloaded"):
        downloader.enqueue(_request(fake, REPO, NAME))
    again.cancel()
    fake.release()
    assert again.wait(TIMEOUT).state is JobState.CANCELLED


def test_progress_is_paced_by_the_clock(fake: FakeHub, make: Callable[..., Downloader]) -> None:
    # The downloader's clock runs with the bytes: 25 ms pass with every 64 KiB received, so
    # the pacing is exact whatever the machine's load (wall-clock timing is in bench/).
    per_byte = 0.025 / CHUNK_SIZE
    downloader: Downloader | None = None

    def clock() -> float:
        assert downloader is not None
        return sum(job.bytes_done for job in downloader.jobs()) * per_byte

    events = _Events()
    downloader = make(on_progress=events, clock=clock)
    done = downloader.enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)

    assert done.state is JobState.DONE
    start, *paced, last = events.items
    assert (start.state, start.bytes_done) == (JobState.RUNNING, 0)
    assert (last.state, last.final, last.bytes_done) == (JobState.DONE, True, len(DATA))
    assert paced and all(p.state is JobState.RUNNING for p in paced)
    times = [p.bytes_done * per_byte for p in [start, *paced]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # At most one event per 0.1 s, and at most one piece (64 KiB: 25 ms) late.
    assert all(0.1 - 1e-9 <= gap <= 0.125 + 1e-9 for gap in gaps), gaps
    assert len(paced) >= int(len(DATA) * per_byte / 0.125)
    rate = 1 / per_byte
    # The speed is measured from the first paced event on, and shown once 0.2 s are seen.
    steady = [p for p in paced if (p.bytes_done - paced[0].bytes_done) * per_byte >= 0.2]
    assert steady and [p.speed for p in steady] == pytest.approx([rate] * len(steady)), steady
    assert all(p.eta == pytest.approx((len(DATA) - p.bytes_done) / rate) for p in steady)


def test_the_rate_limiter_books_reads_at_its_rate_with_a_quarter_second_burst() -> None:
    now = [50.0]
    limiter = RateLimiter(1000, clock=lambda: now[0])
    for _ in range(10):  # a reader that waits as told moves 1000 bytes a second
        now[0] += max(limiter.delay(250), 0.0)
    assert now[0] == pytest.approx(52.5)
    now[0] += 10.0  # an idle spell earns a quarter second of bytes at once, no more
    assert limiter.delay(250) == pytest.approx(0.0)
    assert limiter.delay(250) == pytest.approx(0.25)


def test_a_bandwidth_limit_holds_the_job_back_and_cancel_wakes_it(
    fake: FakeHub, make: Callable[..., Downloader], models: Path
) -> None:
    # At 1 kB/s a first full piece books over a minute (a first piece under the quarter
    # second of burst, one more): the job sleeps in the limiter while the unthrottled
    # server could have sent everything.
    job = make(bandwidth_limit=1000).enqueue(_request(fake, REPO, NAME))
    _wait_for(lambda: job.bytes_done > 0, "the first piece arrived")
    held = job.progress
    assert held.state is JobState.RUNNING and held.bytes_done <= 2 * CHUNK_SIZE
    job.cancel()
    cancelled = job.wait(TIMEOUT)
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.bytes_done <= 2 * CHUNK_SIZE
    assert (models / f"{NAME}.part").stat().st_size == cancelled.bytes_done


def test_downloader_from_settings(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "MODELS_DIR=./gguf\nHF_TOKEN=hf_abc\nHF_ENDPOINT=https://mirror.local/\n"
        "HF_TRUST_ENDPOINT=true\n"
    )
    with Downloader.from_settings(load_settings(env), concurrency=2) as downloader:
        assert downloader.models_dir == tmp_path / "gguf"
        assert (downloader.endpoint, downloader.token) == ("https://mirror.local", "hf_abc")
        assert downloader.file_url("a/b", "c" * 40, "Q4/x y.gguf") == (
            f"https://mirror.local/a/b/resolve/{'c' * 40}/Q4/x%20y.gguf"
        )


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_hf_token_reaches_a_mirror_only_when_it_is_trusted(
    fake: FakeHub, models: Path, tmp_path: Path, trusted: bool
) -> None:
    env = tmp_path / ".env"
    env.write_text(
        f"MODELS_DIR={models}\nHF_TOKEN=hf_secret\nHF_ENDPOINT={fake.url}\n"
        + ("HF_TRUST_ENDPOINT=true\n" if trusted else "")
    )
    with Downloader.from_settings(load_settings(env), retry=FAST) as downloader:
        done = downloader.enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    sent = [r.headers.get("authorization") for r in fake.requests if "/resolve/" in r.path]
    assert sent == ["Bearer hf_secret" if trusted else None]


def test_a_token_never_goes_over_plain_http_to_another_machine(tmp_path: Path) -> None:
    plain = Downloader(tmp_path, endpoint="http://mirror.example:8080", token="hf_secret")
    assert plain.token == "" and plain.token_withheld and "plain http" in plain.token_withheld
    loopback = Downloader(tmp_path, endpoint="http://127.0.0.1:9", token="hf_secret")
    assert loopback.token == "hf_secret" and loopback.token_withheld is None
    https = Downloader(tmp_path, endpoint="https://mirror.example", token="hf_secret")
    assert https.token == "hf_secret"
    for downloader in (plain, loopback, https):
        downloader.close()
