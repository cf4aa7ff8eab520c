"""Download requests and the jobs that carry them out, as seen from any thread.

A `DownloadJob` holds one request's state, byte count and speed, and reports
`DownloadProgress` snapshots; the `stack.hub.downloads.Downloader` that owns it does the transfer
on a worker thread through the job's worker-side methods.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from stack.errors import LlmTuiError
from stack.hub.files import GgufEntry, RemoteFile, RepoFiles

log = logging.getLogger(__name__)

SPEED_WINDOW = 5.0  # seconds of history behind the speed shown
BURST = 0.25  # seconds of bandwidth an idle rate limiter lets through at once

Clock = Callable[[], float]  # seconds, monotonic: time.monotonic, or a test's own


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


class RateLimiter:
    """One bandwidth budget shared by every job: each read books its slot in time."""

    def __init__(self, bytes_per_second: int, clock: Clock = time.monotonic) -> None:
        self.rate = float(bytes_per_second)
        self._clock = clock
        self._next = clock()
        self._lock = threading.Lock()

    def delay(self, n: int) -> float:
        """Seconds to wait after reading ``n`` bytes (<= 0: go on at once)."""
        with self._lock:
            now = self._clock()
            start = max(self._next, now - BURST)  # an idle spell earns at most BURST
            self._next = start + n / self.rate
            return self._next - now


class JobStopped(Exception):
    """Pause or cancel was asked: unwind, keeping every byte written."""


class RetryLater(Exception):
    """A transient failure: the transfer may try again after a delay."""

    def __init__(self, error: LlmTuiError, retry_after: float | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry_after = retry_after


class JobRunner(Protocol):
    """What a job needs from the downloader that owns it."""

    models_dir: Path

    def relative(self, path: Path) -> str: ...

    def submit(self, job: DownloadJob) -> None: ...

    def run_job(self, job: DownloadJob) -> None: ...


class DownloadJob:
    """One queued request. Control it from any thread.

    Progress callbacks run on the worker thread, or on the thread that called `pause`,
    `resume` or `cancel` for the events those cause: a UI must hand them to its own loop.
    Exactly one event has ``final`` set, and nothing follows it. The methods on the worker's
    side (`run`, `set_state`, `sleep`, ...) belong to the downloader that runs the job.
    """

    def __init__(
        self,
        downloader: JobRunner,
        job_id: int,
        request: DownloadRequest,
        targets: tuple[Path, ...],
        on_progress: ProgressCallback | None,
        interval: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.id = job_id
        self.request = request
        self.targets = targets
        self.total = request.total_size
        self._downloader = downloader
        self._on_progress = on_progress
        self._interval = interval
        self._clock = clock  # paces progress events and the speed shown
        self._cond = threading.Condition()
        self._done = threading.Event()
        self._state = JobState.QUEUED
        self._error: LlmTuiError | None = None
        self._pause = False
        self._cancel = False
        self.stop_requested = False  # _pause or _cancel, read without the lock on the hot path
        self._running = False
        self.in_queue = False  # set by the downloader when it queues the job
        self.bytes_done = 0  # advanced by the worker as bytes arrive
        self.current_file: str | None = None
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
            self._pause = self.stop_requested = True
            changed = not self._running
            if changed:
                self._state = JobState.PAUSED
            self._cond.notify_all()
        if changed:
            self.emit(force=True)

    def resume(self) -> None:
        with self._cond:
            if self._state.finished or self._cancel or not self._pause:
                return
            self._pause = self.stop_requested = False
            changed = not self._running
            if changed:
                self._state = JobState.QUEUED
            requeue = changed and not self.in_queue
        if changed:
            self.emit(force=True)
        if requeue:
            self._downloader.submit(self)

    def cancel(self) -> None:
        """Stop for good. The ``.part`` files and their sidecars stay for a later request."""
        with self._cond:
            if self._state.finished or self._cancel:
                return
            self._cancel = self.stop_requested = True
            finished_now = not self._running
            if finished_now:
                self._state = JobState.CANCELLED
                self._done.set()
            self._cond.notify_all()
        if finished_now:
            self.emit(force=True)

    def wait(self, timeout: float | None = None) -> DownloadProgress:
        """Block until the job is done, failed or cancelled (or ``timeout`` passes)."""
        self._done.wait(timeout)
        return self.progress

    @property
    def progress(self) -> DownloadProgress:
        state = self._state
        done = self.bytes_done
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
            current_file=self.current_file,
            error=self._error,
            final=state.finished,
        )

    # -- the worker's side: called by the downloader that runs the job ---------------------

    def set_state(self, state: JobState) -> None:
        self._state = state
        self.emit(force=True)

    def set_bytes(self, n: int) -> None:
        """Jump the byte count (resumed parts, restarts) without a fake burst of speed."""
        self.bytes_done = n
        with self._stats_lock:
            self._samples.clear()

    def sleep(self, seconds: float) -> None:
        """Wait, but wake at once for pause or cancel."""
        with self._cond:
            if self._cond.wait_for(lambda: self.stop_requested, timeout=max(seconds, 0.0)):
                raise JobStopped

    def check_stop(self) -> None:
        if self.stop_requested:
            raise JobStopped

    def _speed(self, done: int) -> float:
        """Bytes per second over the last `SPEED_WINDOW` seconds (a moving average)."""
        now = self._clock()
        with self._stats_lock:
            samples = self._samples
            if not samples or samples[-1][1] != done or now - samples[-1][0] >= 0.05:
                samples.append((now, done))
            while len(samples) > 2 and now - samples[0][0] > SPEED_WINDOW:
                samples.popleft()
            first_t, first_done = samples[0]
        elapsed = now - first_t
        return max(done - first_done, 0) / elapsed if elapsed >= 0.2 else 0.0

    def emit(self, *, force: bool = False, now: float | None = None) -> None:
        """Report progress: at most once per interval, unless ``force``.

        ``now`` is the caller's own clock reading, so that its schedule and this check agree
        (two readings, or ``a - b < c`` against ``a < b + c``, can skip a due event).
        """
        with self._emit_lock:
            if now is None:
                now = self._clock()
            if self._final_sent or (not force and now < self._last_emit + self._interval):
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

    def run(self) -> None:
        """Carry the job out on the calling worker thread, once it leaves the queue."""
        with self._cond:
            self.in_queue = False
            if self.stop_requested or self._state.finished:
                return  # paused or cancelled while it waited in the queue
            self._running = True
            self._state = JobState.RUNNING
        self.emit(force=True)
        outcome, error = JobState.DONE, None
        try:
            self._downloader.run_job(self)
        except JobStopped:
            outcome = JobState.PAUSED
        except LlmTuiError as exc:
            outcome, error = JobState.FAILED, exc
        except OSError as exc:  # the downloader words its own; this is the last resort
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
        self.emit(force=True)
        if requeue:
            self._downloader.submit(self)
