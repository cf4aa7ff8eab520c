"""`stack.downloads` against the fake Hub: resume, verify, refuse, control, report."""

from __future__ import annotations

import hashlib
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from stack.downloads import (
    Downloader,
    DownloadError,
    DownloadProgress,
    DownloadRequest,
    JobState,
    RetryPolicy,
)
from stack.hub import Hub, HubError, RemoteFile
from stack.settings import load_settings
from tests.support.fakehub import CHUNK_SIZE, FakeHub, make_payload
from tests.support.gguf_factory import write_split_set

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


class _Events:
    """Collects progress events and lets a test wait for one without sleeping."""

    def __init__(self) -> None:
        self.items: list[tuple[float, DownloadProgress]] = []
        self._cond = threading.Condition()

    def __call__(self, progress: DownloadProgress) -> None:
        with self._cond:
            self.items.append((time.monotonic(), progress))
            self._cond.notify_all()

    def wait_for(self, test: Callable[[DownloadProgress], bool]) -> DownloadProgress:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(test(p) for _, p in self.items), timeout=TIMEOUT)
            assert ok, f"no such event in {[p.state for _, p in self.items]}"
            return next(p for _, p in self.items if test(p))


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
from stack.downloads import Downloader, DownloadRequest
from stack.hub import RemoteFile
models, endpoint, repo, name, size, sha256, commit = sys.argv[1:]
request = DownloadRequest(repo, (RemoteFile(name, int(size), sha256),), commit)
Downloader(Path(models), endpoint=endpoint).enqueue(request).wait()
"""


def test_a_killed_process_leaves_a_part_the_next_run_resumes(
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
) -> None:
    fake.faults.delay_per_chunk = 0.02
    request = _request(fake, REPO, NAME)
    (remote,) = request.files
    args = [models, fake.url, REPO, NAME, remote.size, remote.sha256, request.revision]
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, *map(str, args)],
        cwd=Path(__file__).resolve().parents[2],
    )
    part = models / f"{NAME}.part"
    deadline = time.monotonic() + TIMEOUT
    while (not part.exists() or part.stat().st_size < 5 * CHUNK_SIZE) and child.poll() is None:
        assert time.monotonic() < deadline, "the child never wrote 5 chunks"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(TIMEOUT)
    kept = part.stat().st_size
    assert 0 < kept < len(DATA)

    fake.reset_faults()
    done = make().enqueue(request).wait(TIMEOUT)

    assert done.state is JobState.DONE, done.error
    assert _gets(fake)[-1] == f"bytes={kept}-"
    assert (models / NAME).read_bytes() == DATA


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
    seen: list[str | None] = []

    def ignore_range(req: httpx.Request) -> httpx.Response:
        seen.append(req.headers.get("Range"))
        headers = {"Content-Length": str(len(DATA))}
        return httpx.Response(200, stream=httpx.ByteStream(DATA), headers=headers)

    done = make(transport=httpx.MockTransport(ignore_range)).enqueue(request).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    assert seen == ["bytes=100000-"]
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
    fake: FakeHub, models: Path, make: Callable[..., Downloader]
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
    started = time.monotonic()
    done = make().enqueue(request).wait(TIMEOUT)
    assert done.state is JobState.DONE, done.error
    assert time.monotonic() - started >= 0.9  # Retry-After beat the 10 ms backoff


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
    fake.faults.delay_per_chunk = 0.01
    events = _Events()
    downloader = make(on_progress=events)
    job = downloader.enqueue(_request(fake, REPO, NAME))

    events.wait_for(lambda p: p.bytes_done > 0)
    job.pause()
    paused = events.wait_for(lambda p: p.state is JobState.PAUSED)
    part = models / f"{NAME}.part"
    assert part.stat().st_size == paused.bytes_done > 0
    assert not job.wait(0.05).final

    job.resume()
    events.wait_for(lambda p: p.state is JobState.RUNNING and p.bytes_done > paused.bytes_done)
    job.cancel()
    cancelled = job.wait(TIMEOUT)
    assert cancelled.state is JobState.CANCELLED and cancelled.final
    assert _gets(fake)[:2] == [None, f"bytes={paused.bytes_done}-"]
    assert part.stat().st_size == cancelled.bytes_done  # cancel keeps every byte
    assert (models / f"{NAME}.part.json").exists()
    finals = [p for _, p in events.items if p.final]
    assert len(finals) == 1 and events.items[-1][1] is finals[0]

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
    fake.faults.delay_per_chunk = 0.01
    events = _Events()
    downloader = make(concurrency=1, on_progress=events)
    first = downloader.enqueue(_request(fake, REPO, NAME))
    second = downloader.enqueue(_request(fake, "acme/other-GGUF"))
    events.wait_for(lambda p: p.job_id == first.id and p.bytes_done > 0)
    assert second.state is JobState.QUEUED
    second.pause()
    assert second.state is JobState.PAUSED
    first.cancel()
    assert first.wait(TIMEOUT).state is JobState.CANCELLED
    assert second.state is JobState.PAUSED  # a paused job is skipped, not started
    fake.reset_faults()
    second.resume()
    assert second.wait(TIMEOUT).state is JobState.DONE
    again = downloader.enqueue(_request(fake, REPO, NAME))
    with pytest.raises(DownloadError, match="already being downloaded"):
        downloader.enqueue(_request(fake, REPO, NAME))
    again.cancel()


def test_progress_is_throttled_to_ten_per_second(
    fake: FakeHub, make: Callable[..., Downloader]
) -> None:
    fake.faults.delay_per_chunk = 0.012  # ~0.5 s for the 41 chunks
    events = _Events()
    started = time.monotonic()
    done = make(on_progress=events).enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)
    elapsed = time.monotonic() - started
    assert done.state is JobState.DONE
    stamps = [t for t, _ in events.items]
    running = [p for _, p in events.items if p.state is JobState.RUNNING]
    assert len(events.items) <= elapsed * 10 + 2  # + the first and the final event
    assert len(running) >= 3
    gaps = [b - a for a, b in itertools.pairwise(stamps[:-1])]  # all but the final event
    assert all(gap >= 0.099 for gap in gaps), gaps
    assert any(p.speed > 0 and p.eta is not None for p in running[1:])
    bytes_seen = [p.bytes_done for p in running]
    assert bytes_seen == sorted(bytes_seen)
    last = events.items[-1][1]
    assert (last.state, last.final, last.bytes_done) == (JobState.DONE, True, len(DATA))


def test_bandwidth_limit_slows_the_transfer(fake: FakeHub, make: Callable[..., Downloader]) -> None:
    started = time.monotonic()
    done = make(bandwidth_limit=4_000_000).enqueue(_request(fake, REPO, NAME)).wait(TIMEOUT)
    assert done.state is JobState.DONE
    assert time.monotonic() - started >= len(DATA) / 4_000_000 - 0.3


def test_downloader_from_settings(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("MODELS_DIR=./gguf\nHF_TOKEN=hf_abc\nHF_ENDPOINT=http://mirror.local/\n")
    with Downloader.from_settings(load_settings(env), concurrency=2) as downloader:
        assert downloader.models_dir == tmp_path / "gguf"
        assert (downloader.endpoint, downloader.token) == ("http://mirror.local", "hf_abc")
        assert downloader.file_url("a/b", "c" * 40, "Q4/x y.gguf") == (
            f"http://mirror.local/a/b/resolve/{'c' * 40}/Q4/x%20y.gguf"
        )
