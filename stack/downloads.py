"""Resumable, verified downloads of GGUF files into MODELS_DIR.

`huggingface_hub` deletes a failed download's temporary file, so it cannot resume across runs;
this module writes its own HTTP Range downloads instead:

* Each file goes to ``<target>.part`` beside a JSON sidecar ``<target>.part.json`` (repo,
  path, commit, size, sha256, url, etag). A later run, a retry, or a new `Downloader` finds
  the pair and continues with ``Range: bytes=N-``; bytes already on disk are re-hashed
  locally, never fetched again. A part whose sidecar is missing or describes other content
  (a new commit changed the file) is moved aside to ``<target>.part.stale`` (replacing any
  older one) and the download starts over: nothing we wrote is deleted silently.
* sha256 is computed while writing. A mismatch renames the part to ``<target>.corrupt`` and
  fails the job: the evidence stays for the user to inspect or delete.
* Finished parts are renamed into place only when every file of the request is verified,
  shard 1 of a split set last, so a model never appears half-present.
* Targets are flat: ``MODELS_DIR/<folder>/<file name>``. The repo's own subfolders (often
  ``Q4_K_M/``) are dropped, which keeps a split set's shards side by side. Repo paths that
  are absolute, contain ``..`` or backslashes, or would land outside MODELS_DIR are refused
  before anything is written.

Jobs run on worker threads (at most ``concurrency`` at once) and report `DownloadProgress`
snapshots through a callback, at most every ``progress_interval`` seconds plus a final one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from stack.atomic import write_atomic
from stack.errors import LlmTuiError
from stack.hub import (
    DEFAULT_ENDPOINT,
    GgufEntry,
    HubError,
    RemoteFile,
    RepoFiles,
    http_error,
    network_error,
)

if TYPE_CHECKING:
    import httpx

    from stack.settings import Settings

log = logging.getLogger(__name__)

MiB = 1024 * 1024
GiB = 1024 * MiB
DISK_MARGIN = 512 * MiB
HASH_CHUNK = 8 * MiB  # bytes per read when re-hashing a part from disk
WRITEBACK_STEP = 32 * MiB  # start flushing a part to disk every this many bytes
PROGRESS_INTERVAL = 0.1  # at most 10 progress events per second per job
SPEED_WINDOW = 5.0  # seconds of history behind the speed shown
PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".part.json"
STALE_SUFFIX = ".part.stale"
CORRUPT_SUFFIX = ".corrupt"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class DownloadError(LlmTuiError):
    """A download cannot start or finish; the message says what to do."""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff; the count restarts whenever bytes arrived."""

    tries: int = 6
    first_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # longest Retry-After we honour

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** max(attempt - 1, 0)))


@dataclass(frozen=True)
class DownloadRequest:
    """Files of one repo to fetch together (one model: a file, or every shard of a set)."""

    repo_id: str
    files: tuple[RemoteFile, ...]
    revision: str  # the commit sha from the listing: what a resume must find again
    folder: str = ""  # relative to MODELS_DIR; "" is MODELS_DIR itself

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(self.files))

    @classmethod
    def for_entry(cls, listing: RepoFiles, entry: GgufEntry, folder: str = "") -> DownloadRequest:
        return cls(listing.repo_id, entry.files, listing.commit, folder)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class DownloadProgress:
    """A snapshot of one job, safe to hand to another thread."""

    job_id: int
    repo_id: str
    name: str  # the first target file, relative to MODELS_DIR
    state: JobState
    bytes_done: int
    total: int
    speed: float = 0.0  # bytes/s over the last few seconds
    eta: float | None = None  # seconds
    current_file: str | None = None
    error: LlmTuiError | None = None
    final: bool = False  # the job's last event

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.total if self.total else 1.0


ProgressCallback = Callable[[DownloadProgress], None]
FreeSpace = Callable[[Path], int]


def disk_free(path: Path) -> int:
    """Free bytes on the filesystem that holds ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free


# --- jobs -------------------------------------------------------------------------------


class _Stopped(Exception):
    """Pause or cancel was asked: unwind, keeping every byte written."""


class _Retry(Exception):
    def __init__(self, error: LlmTuiError, retry_after: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


class DownloadJob:
    """One queued request. Control it from any thread.

    Progress callbacks run on the worker thread, or on the thread that called `pause`,
    `resume` or `cancel` for the events those cause: a UI must hand them to its own loop.
    Exactly one event has ``final`` set, and nothing follows it.
    """

    def __init__(
        self,
        downloader: Downloader,
        job_id: int,
        request: DownloadRequest,
        targets: tuple[Path, ...],
        on_progress: ProgressCallback | None,
        interval: float,
    ) -> None:
        self.id = job_id
        self.request = request
        self.targets = targets
        self.total = request.total_size
        self._downloader = downloader
        self._on_progress = on_progress
        self._interval = interval
        self._cond = threading.Condition()
        self._done = threading.Event()
        self._state = JobState.QUEUED
        self._error: LlmTuiError | None = None
        self._pause = False
        self._cancel = False
        self._stop = False  # _pause or _cancel, read without the lock on the hot path
        self._running = False
        self._in_queue = False
        self._bytes = 0
        self._current: str | None = None
        self._samples: deque[tuple[float, int]] = deque()
        self._stats_lock = threading.Lock()
        self._emit_lock = threading.RLock()  # a callback may pause or cancel its own job
        self._last_emit = 0.0
        self._final_sent = False

    # -- control -------------------------------------------------------------------------

    @property
    def state(self) -> JobState:
        return self._state

    @property
    def error(self) -> LlmTuiError | None:
        return self._error

    @property
    def name(self) -> str:
        return self._downloader.relative(self.targets[0])

    def pause(self) -> None:
        """Stop transferring and free the worker; `resume()` continues where it stopped."""
        with self._cond:
            if self._state.finished or self._cancel or self._pause:
                return
            self._pause = self._stop = True
            changed = not self._running
            if changed:
                self._state = JobState.PAUSED
            self._cond.notify_all()
        if changed:
            self._emit(force=True)

    def resume(self) -> None:
        with self._cond:
            if self._state.finished or self._cancel or not self._pause:
                return
            self._pause = self._stop = False
            changed = not self._running
            if changed:
                self._state = JobState.QUEUED
            requeue = changed and not self._in_queue
        if changed:
            self._emit(force=True)
        if requeue:
            self._downloader._submit(self)

    def cancel(self) -> None:
        """Stop for good. The ``.part`` files and their sidecars stay for a later request."""
        with self._cond:
            if self._state.finished or self._cancel:
                return
            self._cancel = self._stop = True
            finished_now = not self._running
            if finished_now:
                self._state = JobState.CANCELLED
                self._done.set()
            self._cond.notify_all()
        if finished_now:
            self._emit(force=True)

    def wait(self, timeout: float | None = None) -> DownloadProgress:
        """Block until the job is done, failed or cancelled (or ``timeout`` passes)."""
        self._done.wait(timeout)
        return self.progress

    @property
    def progress(self) -> DownloadProgress:
        state = self._state
        done = self._bytes
        speed = self._speed(done) if state is JobState.RUNNING else 0.0
        remaining = max(self.total - done, 0)
        return DownloadProgress(
            job_id=self.id,
            repo_id=self.request.repo_id,
            name=self.name,
            state=state,
            bytes_done=done,
            total=self.total,
            speed=speed,
            eta=remaining / speed if speed > 0 else (0.0 if not remaining else None),
            current_file=self._current,
            error=self._error,
            final=state.finished,
        )

    # -- used by the worker --------------------------------------------------------------

    def _set_state(self, state: JobState) -> None:
        self._state = state
        self._emit(force=True)

    def _set_bytes(self, n: int) -> None:
        """Jump the byte count (resumed parts, restarts) without a fake burst of speed."""
        self._bytes = n
        with self._stats_lock:
            self._samples.clear()

    def _sleep(self, seconds: float) -> None:
        """Wait, but wake at once for pause or cancel."""
        with self._cond:
            if self._cond.wait_for(lambda: self._stop, timeout=max(seconds, 0.0)):
                raise _Stopped

    def _check_stop(self) -> None:
        if self._stop:
            raise _Stopped

    def _speed(self, done: int) -> float:
        """Bytes per second over the last `SPEED_WINDOW` seconds (a moving average)."""
        now = time.monotonic()
        with self._stats_lock:
            samples = self._samples
            if not samples or samples[-1][1] != done or now - samples[-1][0] >= 0.05:
                samples.append((now, done))
            while len(samples) > 2 and now - samples[0][0] > SPEED_WINDOW:
                samples.popleft()
            first_t, first_done = samples[0]
        elapsed = now - first_t
        return max(done - first_done, 0) / elapsed if elapsed >= 0.2 else 0.0

    def _emit(self, *, force: bool = False) -> None:
        with self._emit_lock:
            now = time.monotonic()
            if self._final_sent or (not force and now - self._last_emit < self._interval):
                return
            self._last_emit = now
            snapshot = self.progress
            self._final_sent = snapshot.final
            if self._on_progress is None:
                return
            try:
                self._on_progress(snapshot)
            except Exception:  # a broken listener must not break the download
                log.exception("download progress callback failed")

    def _run(self) -> None:
        with self._cond:
            self._in_queue = False
            if self._stop or self._state.finished:
                return  # paused or cancelled while it waited in the queue
            self._running = True
            self._state = JobState.RUNNING
        self._emit(force=True)
        outcome, error = JobState.DONE, None
        try:
            self._downloader._run_job(self)
        except _Stopped:
            outcome = JobState.PAUSED
        except LlmTuiError as exc:
            outcome, error = JobState.FAILED, exc
        except OSError as exc:
            outcome = JobState.FAILED
            error = DownloadError(
                f"cannot write {self.name}: {exc.strerror or exc}",
                fix=f"check free space and permissions of {self._downloader.models_dir}",
            )
        except Exception as exc:  # a bug or an OS error we did not foresee: say so plainly
            log.exception("download %s failed", self.name)
            outcome = JobState.FAILED
            error = DownloadError(f"download of {self.name} failed: {exc}", fix="retry")
        requeue = False
        with self._cond:
            self._running = False
            if self._cancel and outcome is not JobState.DONE:
                outcome = JobState.CANCELLED
            elif outcome is JobState.PAUSED and not self._pause:
                outcome, requeue = JobState.QUEUED, True  # resumed while it was stopping
            self._error = error if outcome is JobState.FAILED else None
            self._state = outcome
            if outcome.finished:
                self._done.set()
        self._emit(force=True)
        if requeue:
            self._downloader._submit(self)


# --- the downloader ---------------------------------------------------------------------


class _RateLimiter:
    """One bandwidth budget shared by every job: each read books its slot in time."""

    def __init__(self, bytes_per_second: int) -> None:
        self.rate = float(bytes_per_second)
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def delay(self, n: int) -> float:
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now - 0.25)  # at most a quarter second of burst
            self._next = start + n / self.rate
            return self._next - now


class Downloader:
    """Queue and run downloads into ``models_dir``."""

    def __init__(
        self,
        models_dir: Path,
        *,
        endpoint: str = "",
        token: str = "",
        concurrency: int = 1,
        bandwidth_limit: int | None = None,
        state_dir: Path | None = None,
        on_progress: ProgressCallback | None = None,
        free_space: FreeSpace = disk_free,
        retry: RetryPolicy | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Downloads into ``models_dir`` from ``endpoint`` (default https://huggingface.co).

        ``token`` is sent as ``Authorization: Bearer`` (empty: none). ``bandwidth_limit`` is
        in bytes per second, shared by all jobs. ``state_dir`` holds the sidecars (default:
        beside each ``.part``). ``free_space`` reports free bytes for a folder (tests inject
        a small disk); ``transport`` replaces httpx's network transport (tests).
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.models_dir = Path(models_dir).absolute()
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self.token = token
        self.concurrency = concurrency
        self.state_dir = Path(state_dir).absolute() if state_dir is not None else None
        self.on_progress = on_progress
        self.free_space = free_space
        self.retry = retry or RetryPolicy()
        self.progress_interval = progress_interval
        self._limiter = _RateLimiter(bandwidth_limit) if bandwidth_limit else None
        self._transport = transport
        self._queue: queue.Queue[DownloadJob | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._jobs: list[DownloadJob] = []
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._hashes: dict[Path, tuple[int, Any]] = {}  # part -> (offset, sha256 state)
        self._next_id = 1
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Downloader:
        return cls(
            settings.models_dir, endpoint=settings.hf_endpoint, token=settings.hf_token, **options
        )

    # -- public --------------------------------------------------------------------------

    def enqueue(
        self, request: DownloadRequest, on_progress: ProgressCallback | None = None
    ) -> DownloadJob:
        """Validate the request and queue it. Unsafe names raise here, before any write."""
        if not request.files:
            raise DownloadError("nothing to download: the request names no file")
        targets = self.targets_for(request)
        with self._lock:
            if self._closed:
                raise DownloadError("the downloader is closed")
            busy = {t for j in self._jobs if not j.state.finished for t in j.targets}
            clash = [t for t in targets if t in busy]
            if clash:
                raise DownloadError(
                    f"{self.relative(clash[0])} is already being downloaded",
                    fix="wait for that download or cancel it",
                )
            job = DownloadJob(
                self,
                self._next_id,
                request,
                targets,
                on_progress or self.on_progress,
                self.progress_interval,
            )
            self._next_id += 1
            self._jobs.append(job)
        self._submit(job)
        return job

    def jobs(self) -> list[DownloadJob]:
        with self._lock:
            return list(self._jobs)

    def targets_for(self, request: DownloadRequest) -> tuple[Path, ...]:
        """Where each file of ``request`` lands; raises `DownloadError` for unsafe names."""
        folder = _safe_relative(request.folder, what="target folder", allow_empty=True)
        root = self.models_dir.resolve()
        targets: list[Path] = []
        for remote in request.files:
            name = _safe_relative(remote.path, what="file name").name
            target = self.models_dir.joinpath(*folder.parts, name)
            resolved = target.resolve()
            if not resolved.is_relative_to(root) or resolved == root:
                raise DownloadError(
                    f"refusing to write {remote.path!r}: it would land outside MODELS_DIR",
                    fix="this repo's file names are unsafe; pick another repo",
                )
            if target in targets:
                raise DownloadError(
                    f"two files of the request are both named {name!r}",
                    fix="download them separately into different folders",
                )
            targets.append(target)
        return tuple(targets)

    def relative(self, path: Path) -> str:
        with contextlib.suppress(ValueError):
            return path.relative_to(self.models_dir).as_posix()
        return str(path)

    def unfinished(self) -> list[DownloadRequest]:
        """Requests left half-done by an earlier run, read back from their sidecars."""
        root = self.state_dir or self.models_dir
        found: dict[tuple[str, str, str, tuple[str, ...]], DownloadRequest] = {}
        for sidecar in sorted(root.rglob(f"*{SIDECAR_SUFFIX}")):
            meta = _read_json(sidecar)
            if meta is None or not isinstance(meta.get("group"), list):
                continue
            try:
                files = tuple(
                    RemoteFile(str(g["path"]), int(g["size"]), g.get("sha256"))
                    for g in meta["group"]
                )
                key = (
                    str(meta["repo"]),
                    str(meta["revision"]),
                    str(meta.get("folder", "")),
                    tuple(f.path for f in files),
                )
            except (KeyError, TypeError, ValueError):
                continue
            found.setdefault(key, DownloadRequest(key[0], files, key[1], key[2]))
        return list(found.values())

    def close(self, *, cancel: bool = True, timeout: float = 10.0) -> None:
        """Stop the workers (cancelling running jobs: their parts stay) and the client."""
        with self._lock:
            self._closed = True
            jobs, workers = list(self._jobs), list(self._workers)
        if cancel:
            for job in jobs:
                job.cancel()
        for _ in workers:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for worker in workers:
            worker.join(max(deadline - time.monotonic(), 0.0))
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workers -------------------------------------------------------------------------

    def _submit(self, job: DownloadJob) -> None:
        with self._lock:
            job._in_queue = True
            self._queue.put(job)
            if len(self._workers) < self.concurrency:
                worker = threading.Thread(
                    target=self._work, name=f"download-{len(self._workers) + 1}", daemon=True
                )
                self._workers.append(worker)
                worker.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            job._run()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                import httpx

                headers = {"User-Agent": "llm-tui", "Accept-Encoding": "identity"}
                if self.token:
                    headers["Authorization"] = f"Bearer {self.token}"
                self._client = httpx.Client(
                    headers=headers,
                    follow_redirects=True,  # httpx drops Authorization on a cross-host hop
                    timeout=httpx.Timeout(30.0, read=60.0),
                    limits=httpx.Limits(max_connections=self.concurrency * 2),
                    transport=self._transport,
                )
            return self._client

    # -- one job -------------------------------------------------------------------------

    def _run_job(self, job: DownloadJob) -> None:
        pairs = list(zip(job.request.files, job.targets, strict=True))
        present = 0
        needed = 0
        for remote, target in pairs:
            if target.exists():
                present += remote.size
                continue
            have = min(_size(_part(target)), remote.size)
            present += have
            needed += remote.size - have
        free = self.free_space(self.models_dir)
        if needed and free < needed + DISK_MARGIN:
            raise DownloadError(
                f"not enough free disk space for {job.name}: {_gib(needed)} to download "
                f"+ {_gib(DISK_MARGIN)} margin, {_gib(free)} free in {self.models_dir}",
                fix="free some space, or set MODELS_DIR to a bigger disk",
            )
        job._set_bytes(present)
        for remote, target in pairs:
            job._current = self.relative(target)
            if target.exists():
                self._check_existing(job, remote, target)
            else:
                self._fetch(job, remote, target)
        # Every part is verified: move them into place, shard 1 (what llama.cpp opens) last.
        for target in reversed(job.targets):
            part = _part(target)
            if part.exists():
                os.replace(part, target)
                _unlink(self._sidecar(target))
                with self._lock:
                    self._hashes.pop(part, None)
        for folder in {t.parent for t in job.targets}:
            _fsync_dir(folder)

    def _check_existing(self, job: DownloadJob, remote: RemoteFile, target: Path) -> None:
        """A file already in place is kept if it is the same file; never overwritten."""
        size = _size(target)
        same = size == remote.size
        if same and remote.sha256:
            job._set_state(JobState.VERIFYING)
            same = _hash_file(target, size, job).hexdigest() == remote.sha256
            job._set_state(JobState.RUNNING)
        if not same:
            raise DownloadError(
                f"{self.relative(target)} already exists and differs from the file on the Hub",
                fix="move it away or delete it, then retry",
            )

    def _fetch(self, job: DownloadJob, remote: RemoteFile, target: Path) -> None:
        """Bring ``<target>.part`` to the full, verified file (or raise)."""
        request = job.request
        part, sidecar = _part(target), self._sidecar(target)
        meta = self._sidecar_data(request, remote, target)
        if part.exists() or sidecar.exists():
            old = _read_json(sidecar)
            if part.exists() and (
                old is None or not _same_content(old, meta) or _size(part) > remote.size
            ):
                stale = target.with_name(target.name + STALE_SUFFIX)
                log.warning("%s does not match its download; kept as %s", part, stale)
                os.replace(part, stale)
            elif old is not None and old.get("commit"):
                # Resume from the very commit the part came from (the endpoint may be new).
                meta["commit"] = old["commit"]
                meta["url"] = self.file_url(request.repo_id, old["commit"], remote.path)
                meta["etag"] = old.get("etag")
        target.parent.mkdir(parents=True, exist_ok=True)
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(sidecar, json.dumps(meta, indent=2) + "\n", mode=0o644)
        with open(part, "ab", buffering=0) as handle:
            offset = handle.tell()
            hasher = self._resume_hash(job, part, offset)
            writer = _PartWriter(handle, hasher, offset)
            try:
                self._transfer(job, remote, writer, sidecar, meta)
                writer.finish()
            except BaseException:
                if writer.offset == 0:  # nothing arrived: leave no empty part behind
                    _unlink(part)
                    _unlink(sidecar)
                raise
            finally:
                with self._lock:
                    self._hashes[part] = (writer.offset, writer.hasher.copy())
        digest = writer.hasher.hexdigest()
        if remote.sha256 is not None and digest != remote.sha256:
            corrupt = target.with_name(target.name + CORRUPT_SUFFIX)
            os.replace(part, corrupt)
            _unlink(sidecar)
            with self._lock:
                self._hashes.pop(part, None)
            raise DownloadError(
                f"the download was corrupted: {self.relative(target)} has sha256 {digest}, "
                f"expected {remote.sha256}; the bad copy is kept as {self.relative(corrupt)}",
                fix=f"delete {corrupt} and retry",
            )

    def _resume_hash(self, job: DownloadJob, part: Path, offset: int) -> Any:
        """The sha256 state of the first ``offset`` bytes: remembered, or re-read from disk."""
        with self._lock:
            cached = self._hashes.get(part)
        if cached is not None and cached[0] == offset:
            return cached[1].copy()
        if offset == 0:
            return hashlib.sha256()
        job._set_state(JobState.VERIFYING)
        hasher = _hash_file(part, offset, job)
        job._set_state(JobState.RUNNING)
        return hasher

    def _transfer(
        self,
        job: DownloadJob,
        remote: RemoteFile,
        writer: _PartWriter,
        sidecar: Path,
        meta: dict[str, Any],
    ) -> None:
        tries = 0
        while writer.offset < remote.size:
            job._check_stop()
            before = writer.offset
            try:
                self._stream_once(job, remote, writer, sidecar, meta)
                if writer.offset < remote.size:
                    raise _Retry(network_error(self.endpoint, ConnectionError("body ended early")))
            except _Retry as retry:
                tries = 1 if writer.offset > before else tries + 1
                if tries >= self.retry.tries:
                    raise retry.error from retry
                delay = self.retry.delay(tries)
                if retry.retry_after is not None:
                    delay = min(max(retry.retry_after, delay), self.retry.max_retry_after)
                log.info("retrying %s in %.1f s: %s", remote.path, delay, retry.error)
                job._sleep(delay)

    def _stream_once(
        self,
        job: DownloadJob,
        remote: RemoteFile,
        writer: _PartWriter,
        sidecar: Path,
        meta: dict[str, Any],
    ) -> None:
        import httpx

        url = str(meta["url"])  # pinned to the commit once the first answer named it
        headers = {"Range": f"bytes={writer.offset}-"} if writer.offset else {}
        try:
            with self._http().stream("GET", url, headers=headers) as response:
                self._check_response(job, remote, response, writer)
                self._note_origin(job, remote, response, sidecar, meta)
                self._copy_body(job, response.iter_raw(), writer)
        except httpx.TransportError as exc:
            raise _Retry(network_error(self.endpoint, exc)) from exc

    def _note_origin(
        self,
        job: DownloadJob,
        remote: RemoteFile,
        response: httpx.Response,
        sidecar: Path,
        meta: dict[str, Any],
    ) -> None:
        """Record the commit and etag served, so a later resume asks for the same bytes."""
        commit = next(
            (
                r.headers.get("X-Repo-Commit")
                for r in [*response.history, response]
                if r.headers.get("X-Repo-Commit")
            ),
            None,
        )
        etag = response.headers.get("X-Linked-Etag") or response.headers.get("ETag")
        changed = False
        if commit and _SHA_RE.match(commit) and meta.get("commit") != commit:
            meta["commit"] = commit
            meta["url"] = self.file_url(job.request.repo_id, commit, remote.path)
            changed = True
        if etag and meta.get("etag") != etag:
            meta["etag"] = etag
            changed = True
        if changed:
            write_atomic(sidecar, json.dumps(meta, indent=2) + "\n", mode=0o644)

    def _copy_body(self, job: DownloadJob, body: Iterator[bytes], writer: _PartWriter) -> None:
        """Write and hash each piece as it arrives: every byte received is kept, even on a drop.

        httpx reads the socket 64 KiB at a time. Re-chunking into bigger pieces (httpx's
        ``chunk_size`` or a buffer of ours) measured slower: every fresh multi-MiB buffer is
        page-faulted in, and big writes hit dirty-page throttling harder. So the loop stays
        flat, and progress, pause and the bandwidth limit cost a clock read per piece.
        """
        limiter, interval = self._limiter, self.progress_interval
        write = writer.write
        next_tick = time.monotonic() + interval
        for chunk in body:
            write(chunk)
            job._bytes += len(chunk)
            if job._stop:
                raise _Stopped
            if limiter is not None:
                job._sleep(limiter.delay(len(chunk)))
            now = time.monotonic()
            if now >= next_tick:
                job._emit()
                next_tick = now + interval

    def _check_response(
        self, job: DownloadJob, remote: RemoteFile, response: httpx.Response, writer: _PartWriter
    ) -> None:
        status = response.status_code
        if status in RETRY_STATUSES:
            raise _Retry(
                http_error(
                    status,
                    response.headers.get("X-Error-Code"),
                    endpoint=self.endpoint,
                    has_token=bool(self.token),
                    repo_id=job.request.repo_id,
                    retry_after=response.headers.get("Retry-After"),
                ),
                _retry_after(response.headers.get("Retry-After")),
            )
        if status == 416:
            raise DownloadError(
                f"{remote.path} on the Hub is shorter than the listing said ({remote.size} bytes)",
                fix="the repo changed: refresh its file list and download again",
            )
        if status >= 400:
            raise http_error(
                status,
                response.headers.get("X-Error-Code"),
                endpoint=self.endpoint,
                has_token=bool(self.token),
                repo_id=job.request.repo_id,
                filename=remote.path,
                revision=job.request.revision,
            )
        if status == 206:
            start, total = _content_range(response.headers.get("Content-Range"))
            if start != writer.offset:  # a confused server: start this file cleanly over
                job._set_bytes(job._bytes - writer.offset)
                writer.restart()
                raise _Retry(HubError(f"the server resumed {remote.path} at offset {start}"))
        elif status == 200:
            total = _int(response.headers.get("Content-Length"))
            if writer.offset:  # the server ignored our Range: start this file cleanly over
                job._set_bytes(job._bytes - writer.offset)
                writer.restart()
        else:
            raise HubError(f"unexpected answer {status} for {remote.path}", fix="retry later")
        if total is not None and total != remote.size:
            raise DownloadError(
                f"{remote.path} on the Hub is {total} bytes, the listing said {remote.size}",
                fix="the repo changed: refresh its file list and download again",
            )

    def _sidecar(self, target: Path) -> Path:
        if self.state_dir is None:
            return target.with_name(target.name + SIDECAR_SUFFIX)
        return self.state_dir / (self.relative(target) + SIDECAR_SUFFIX)

    def _sidecar_data(
        self, request: DownloadRequest, remote: RemoteFile, target: Path
    ) -> dict[str, Any]:
        revision = request.revision
        return {
            "url": self.file_url(request.repo_id, revision, remote.path),
            "repo": request.repo_id,
            "revision": revision,
            "commit": revision if _SHA_RE.match(revision) else None,
            "path": remote.path,
            "size": remote.size,
            "sha256": remote.sha256,
            "etag": None,
            "target": self.relative(target),
            "folder": request.folder,
            "group": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in request.files],
        }

    def file_url(self, repo_id: str, revision: str, path: str) -> str:
        return f"{self.endpoint}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(path)}"


# --- parts, hashes and names -------------------------------------------------------------


class _PartWriter:
    """Appends to an open ``.part``, hashes what it writes, and keeps writeback going.

    The part is fsynced before its rename into place. Left alone, the kernel would still
    hold most of a fast download in dirty pages at that point and the fsync would stall for
    seconds; starting writeback every `WRITEBACK_STEP` spreads that work over the transfer
    (and keeps the pages cached for the model load that usually follows).
    """

    def __init__(self, handle: Any, hasher: Any, offset: int) -> None:
        self.handle = handle
        self.hasher = hasher
        self.offset = offset
        self._written_back = offset

    def write(self, chunk: bytes) -> None:
        written = self.handle.write(chunk)
        if written != len(chunk):  # a short write: rare, but legal for raw files
            view = memoryview(chunk)[written:]
            while view:
                view = view[self.handle.write(view) :]
        self.hasher.update(chunk)
        self.offset += len(chunk)
        if self.offset - self._written_back >= WRITEBACK_STEP:
            _start_writeback(self.handle.fileno(), self._written_back, self.offset)
            self._written_back = self.offset

    def finish(self) -> None:
        """Make the part durable, so the rename never exposes a hollow file after a crash."""
        os.fsync(self.handle.fileno())

    def restart(self) -> None:
        self.handle.truncate(0)  # opened for append: the next write lands at 0
        self.hasher = hashlib.sha256()
        self.offset = self._written_back = 0


_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range: Any = None  # resolved on first use; False where the call does not exist


def _start_writeback(fd: int, start: int, end: int) -> None:
    """Ask Linux to start writing ``[start, end)`` to disk now, without waiting for it."""
    global _sync_file_range
    if _sync_file_range is None:
        try:
            import ctypes

            function = ctypes.CDLL(None, use_errno=True).sync_file_range
            function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
            _sync_file_range = function
        except (AttributeError, OSError):
            _sync_file_range = False
    if _sync_file_range:
        _sync_file_range(fd, start, end - start, _SYNC_FILE_RANGE_WRITE)


def _hash_file(path: Path, length: int, job: DownloadJob) -> Any:
    hasher = hashlib.sha256()
    remaining = length
    with open(path, "rb", buffering=0) as handle:
        while remaining > 0:
            job._check_stop()
            chunk = handle.read(min(HASH_CHUNK, remaining))
            if not chunk:
                break
            hasher.update(chunk)
            remaining -= len(chunk)
    return hasher


def _same_content(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether an existing part was written for the same bytes as this request."""
    keys = ("repo", "path", "size", "sha256")
    if any(old.get(k) != new.get(k) for k in keys):
        return False
    # Without a sha256 (small git files) only the commit pins the content.
    return new["sha256"] is not None or old.get("revision") == new["revision"]


def _safe_relative(raw: str, *, what: str, allow_empty: bool = False) -> PurePosixPath:
    if raw == "" and allow_empty:
        return PurePosixPath()
    problem = None
    if not raw or "\x00" in raw:
        problem = "it is empty or has a NUL byte"
    elif "\\" in raw:
        problem = "it contains a backslash"
    elif raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        problem = "it is an absolute path"
    elif any(part in ("", ".", "..") for part in raw.split("/")):
        problem = "it contains '..', '.' or an empty folder name"
    if problem is not None:
        raise DownloadError(
            f"refusing to download {raw!r} as a {what}: {problem}",
            fix="nothing was written; pick another file or repo",
        )
    return PurePosixPath(raw)


def _part(target: Path) -> Path:
    return target.with_name(target.name + PART_SUFFIX)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of ``bytes first-last/total``."""
    match = re.match(r"^\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*$", value or "")
    if match is None:
        return None, None
    return int(match[1]), None if match[2] == "*" else int(match[2])


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(float(value), 0.0)
    from email.utils import parsedate_to_datetime

    with contextlib.suppress(TypeError, ValueError):
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    return None


def _gib(n: int) -> str:
    return f"{n / GiB:.2f} GiB" if n >= GiB else f"{n / MiB:.0f} MiB"


def downloader_from_settings(settings: Settings, **options: Any) -> Downloader:
    return Downloader.from_settings(settings, **options)


__all__ = [
    "DownloadError",
    "DownloadJob",
    "DownloadProgress",
    "DownloadRequest",
    "Downloader",
    "JobState",
    "RetryPolicy",
    "disk_free",
    "downloader_from_settings",
]
