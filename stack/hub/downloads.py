"""Resumable, verified downloads of GGUF files into MODELS_DIR.

`huggingface_hub` deletes a failed download's temporary file, so it cannot resume across runs;
this module writes its own HTTP Range downloads instead:

* Each file goes to ``<target>.part`` beside a JSON sidecar ``<target>.part.json`` (repo,
  path, commit, size, sha256, url, etag). A later run, a retry, or a new `Downloader` finds
  the pair and continues with ``Range: bytes=N-``; bytes already on disk are re-hashed
  locally, never fetched again. A part whose sidecar is missing or describes other content
  (a new commit changed the file) is moved aside to ``<target>.part.stale`` (replacing any
  older one) and the download starts over: nothing we wrote is deleted silently.
* One writer per part on the whole machine: a job holds an exclusive ``flock`` on
  ``<target>.part.lock`` for each file it writes, from the first byte to the rename, so the
  TUI and ``llm-tui pull`` never interleave into one part. The other side fails at once,
  saying which process has it, and touches nothing. The kernel drops the lock when its
  holder dies; the holder deletes the lock file when it lets go.
* sha256 is computed while writing, and a body is never read past the listed size. What
  counts is the file, not the stream: before the rename the part must still be the file
  that was hashed, with the listed size; a part changed since is hashed again from disk.
  A mismatch renames the part to ``<target>.corrupt`` and fails the job: the evidence stays
  for the user to inspect or delete.
* Finished parts are renamed into place only when every file of the request is verified,
  shard 1 of a split set last, so a model never appears half-present. A file already in
  place is checked, never overwritten.
* A failed write (a full disk, a read-only folder) fails the job with what to do; the part
  keeps every byte written, for the retry.
* Targets are flat: ``MODELS_DIR/<folder>/<file name>``. The repo's own subfolders (often
  ``Q4_K_M/``) are dropped, which keeps a split set's shards side by side. Repo paths that
  are absolute, contain ``..`` or backslashes, or would land outside MODELS_DIR are refused
  before anything is written.

Jobs run on worker threads (at most ``concurrency`` at once) and report `DownloadProgress`
snapshots through a callback, at most every ``progress_interval`` seconds plus a final one.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from stack.hub.errors import DEFAULT_ENDPOINT, token_for
from stack.hub.fetch import JobFetch
from stack.hub.files import RemoteFile
from stack.hub.jobs import (
    BURST,
    Clock,
    DownloadError,
    DownloadJob,
    DownloadProgress,
    DownloadRequest,
    JobState,
    ProgressCallback,
    RateLimiter,
    RetryPolicy,
)
from stack.hub.parts import (
    SIDECAR_SUFFIX,
    FileState,
    FreeSpace,
    disk_free,
    file_size,
    part_path,
    read_json,
    safe_relative,
)
from stack.hub.transfer import SHA_RE

if TYPE_CHECKING:
    import httpx

    from stack.settings import Settings

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.1  # at most 10 progress events per second per job


# --- the downloader ---------------------------------------------------------------------


class Downloader:
    """Queue and run downloads into ``models_dir``."""

    def __init__(
        self,
        models_dir: Path,
        *,
        endpoint: str = "",
        token: str = "",
        token_withheld: str | None = None,
        concurrency: int = 1,
        bandwidth_limit: int | None = None,
        state_dir: Path | None = None,
        on_progress: ProgressCallback | None = None,
        free_space: FreeSpace = disk_free,
        retry: RetryPolicy | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        """Downloads into ``models_dir`` from ``endpoint`` (default https://huggingface.co).

        ``token`` is sent as ``Authorization: Bearer`` (empty: none; never over plain http to
        another machine), ``token_withheld`` says why the caller kept it back (an answer that
        a token would change then says so). ``bandwidth_limit`` is
        in bytes per second, shared by all jobs. ``state_dir`` holds the sidecars (default:
        beside each ``.part``). ``free_space`` reports free bytes for a folder (tests inject
        a small disk); ``transport`` replaces httpx's network transport (tests); ``clock``
        (seconds, monotonic) paces progress events, speeds and the bandwidth limit.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.models_dir = Path(models_dir).absolute()
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self.token, withheld_here = token_for(self.endpoint, token)
        self.token_withheld = token_withheld or withheld_here
        self.concurrency = concurrency
        self.state_dir = Path(state_dir).absolute() if state_dir is not None else None
        self.on_progress = on_progress
        self.free_space = free_space
        self.retry = retry or RetryPolicy()
        self.progress_interval = progress_interval
        self.clock = clock
        self.limiter = RateLimiter(bandwidth_limit, clock) if bandwidth_limit else None
        self._transport = transport
        self._queue: queue.Queue[DownloadJob | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._jobs: list[DownloadJob] = []
        self.lock = threading.Lock()
        self._client: httpx.Client | None = None
        # part -> (its state on disk, sha256 state of all of it) when a job left it
        self.hashes: dict[Path, tuple[FileState, Any]] = {}
        self._next_id = 1
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Downloader:
        return cls(
            settings.models_dir,
            endpoint=settings.hf_endpoint,
            token=settings.hub_token,
            token_withheld=settings.hub_token_withheld,
            **options,
        )

    # -- public --------------------------------------------------------------------------

    def enqueue(
        self, request: DownloadRequest, on_progress: ProgressCallback | None = None
    ) -> DownloadJob:
        """Validate the request and queue it. Unsafe names raise here, before any write."""
        if not request.files:
            raise DownloadError("nothing to download: the request names no file")
        targets = self.targets_for(request)
        with self.lock:
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
                self.clock,
            )
            self._next_id += 1
            self._jobs.append(job)
        self.submit(job)
        return job

    def jobs(self) -> list[DownloadJob]:
        with self.lock:
            return list(self._jobs)

    def targets_for(self, request: DownloadRequest) -> tuple[Path, ...]:
        """Where each file of ``request`` lands; raises `DownloadError` for unsafe names."""
        folder = safe_relative(request.folder, what="target folder", allow_empty=True)
        root = self.models_dir.resolve()
        targets: list[Path] = []
        for remote in request.files:
            name = safe_relative(remote.path, what="file name").name
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
            meta = read_json(sidecar)
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

    def interrupted(self) -> list[tuple[DownloadRequest, int]]:
        """Each request an earlier run left half-done, with the bytes already on disk."""
        found = []
        for request in self.unfinished():
            try:
                targets = self.targets_for(request)
            except DownloadError:
                continue  # unsafe names in a sidecar: nothing we would write to
            present = sum(
                remote.size if target.exists() else min(file_size(part_path(target)), remote.size)
                for remote, target in zip(request.files, targets, strict=True)
            )
            found.append((request, present))
        return found

    def close(self, *, cancel: bool = True, timeout: float = 10.0) -> None:
        """Stop the workers (cancelling running jobs: their parts stay) and the client."""
        with self.lock:
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

    def submit(self, job: DownloadJob) -> None:
        """Queue ``job`` (new, or resumed by its own `resume`); start a worker if one is due."""
        with self.lock:
            job.in_queue = True
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
            job.run()

    def http(self) -> httpx.Client:
        with self.lock:
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

    def run_job(self, job: DownloadJob) -> None:
        """Fetch and verify every file of ``job``, then move them into place (a worker's call)."""
        JobFetch(self).run(job)

    def sidecar_path(self, target: Path) -> Path:
        if self.state_dir is None:
            return target.with_name(target.name + SIDECAR_SUFFIX)
        return self.state_dir / (self.relative(target) + SIDECAR_SUFFIX)

    def sidecar_data(
        self, request: DownloadRequest, remote: RemoteFile, target: Path
    ) -> dict[str, Any]:
        revision = request.revision
        return {
            "url": self.file_url(request.repo_id, revision, remote.path),
            "repo": request.repo_id,
            "revision": revision,
            "commit": revision if SHA_RE.match(revision) else None,
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


def downloader_from_settings(settings: Settings, **options: Any) -> Downloader:
    return Downloader.from_settings(settings, **options)


__all__ = [
    "BURST",
    "DownloadError",
    "DownloadJob",
    "DownloadProgress",
    "DownloadRequest",
    "Downloader",
    "JobState",
    "RateLimiter",
    "RetryPolicy",
    "disk_free",
    "downloader_from_settings",
]
