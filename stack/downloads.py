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
import hashlib
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote

from stack.download_jobs import (
    BURST,
    Clock,
    DownloadError,
    DownloadJob,
    DownloadProgress,
    DownloadRequest,
    JobState,
    JobStopped,
    ProgressCallback,
    RateLimiter,
    RetryLater,
    RetryPolicy,
)
from stack.download_parts import (
    CORRUPT_SUFFIX,
    SIDECAR_SUFFIX,
    STALE_SUFFIX,
    FileState,
    FreeSpace,
    MiB,
    PartBusy,
    PartLock,
    PartWriter,
    busy_error,
    disk_free,
    file_size,
    format_size,
    fsync_dir,
    hash_file,
    identity,
    parse_content_range,
    parse_int,
    parse_retry_after,
    part_path,
    read_json,
    safe_relative,
    same_content,
    unlink_if_present,
    write_error,
    write_sidecar,
)
from stack.hub import (
    DEFAULT_ENDPOINT,
    HubError,
    RemoteFile,
    http_error,
    network_error,
    token_for,
)

if TYPE_CHECKING:
    import httpx

    from stack.settings import Settings

log = logging.getLogger(__name__)

DISK_MARGIN = 512 * MiB
PROGRESS_INTERVAL = 0.1  # at most 10 progress events per second per job
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


# --- the downloader ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Fetched:
    """A verified part waiting for its rename, and the file state that was verified."""

    remote: RemoteFile
    target: Path
    state: FileState


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
        self._limiter = RateLimiter(bandwidth_limit, clock) if bandwidth_limit else None
        self._transport = transport
        self._queue: queue.Queue[DownloadJob | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._jobs: list[DownloadJob] = []
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        # part -> (its state on disk, sha256 state of all of it) when a job left it
        self._hashes: dict[Path, tuple[FileState, Any]] = {}
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
                self.clock,
            )
            self._next_id += 1
            self._jobs.append(job)
        self.submit(job)
        return job

    def jobs(self) -> list[DownloadJob]:
        with self._lock:
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

    def submit(self, job: DownloadJob) -> None:
        """Queue ``job`` (new, or resumed by its own `resume`); start a worker if one is due."""
        with self._lock:
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

    def run_job(self, job: DownloadJob) -> None:
        """Fetch and verify every file of ``job``, then move them into place (a worker's call).

        The parts' locks are taken first, before anything is read or written, and held until
        the renames are done.
        """
        locks = self._lock_parts(job)
        try:
            self._run_locked(job)
        except OSError as exc:
            raise self._write_error(job, exc) from exc
        finally:
            for lock in locks:
                lock.release()

    def _lock_parts(self, job: DownloadJob) -> list[PartLock]:
        """Lock the part of every file not yet in place, or raise, holding nothing."""
        locks: list[PartLock] = []
        try:
            for target in job.targets:
                if target.exists():
                    continue  # only checked, never written; a rename is atomic
                target.parent.mkdir(parents=True, exist_ok=True)
                locks.append(PartLock.acquire(target))
        except PartBusy as busy:
            for lock in locks:
                lock.release()
            raise busy_error(self.relative(target), busy.pid) from None
        except OSError as exc:
            for lock in locks:
                lock.release()
            job.current_file = self.relative(target)
            raise self._write_error(job, exc) from exc
        return locks

    def _write_error(self, job: DownloadJob, exc: OSError) -> DownloadError:
        name = job.current_file or job.name
        target = self.models_dir / name
        size = next(
            (r.size for r, t in zip(job.request.files, job.targets, strict=True) if t == target),
            job.total,
        )
        return write_error(exc, name, target.parent, file_size(part_path(target)), size)

    def _run_locked(self, job: DownloadJob) -> None:
        pairs = list(zip(job.request.files, job.targets, strict=True))
        present = 0
        needed = 0
        for remote, target in pairs:
            if target.exists():
                present += remote.size
                continue
            have = min(file_size(part_path(target)), remote.size)
            present += have
            needed += remote.size - have
        free = self.free_space(self.models_dir)
        if needed and free < needed + DISK_MARGIN:
            raise DownloadError(
                f"not enough free disk space for {job.name}: {format_size(needed)} to download "
                f"+ {format_size(DISK_MARGIN)} margin, {format_size(free)} free in "
                f"{self.models_dir}",
                fix="free some space, or set MODELS_DIR to a bigger disk",
            )
        job.set_bytes(present)
        fetched: list[_Fetched] = []
        for remote, target in pairs:
            job.current_file = self.relative(target)
            if target.exists():
                self._check_existing(job, remote, target)
            else:
                fetched.append(_Fetched(remote, target, self._fetch(job, remote, target)))
        # Only parts still as they were verified go into place; one changed since (another
        # program wrote to it) is verified again from disk first.
        for item in fetched:
            job.current_file = self.relative(item.target)
            part = part_path(item.target)
            try:
                state = identity(os.stat(part))
            except FileNotFoundError:
                raise DownloadError(
                    f"{self.relative(part)} was removed before it could be moved into place",
                    fix="retry the download",
                ) from None
            if state != item.state:
                self._verify_on_disk(job, item.remote, item.target)
        # Every part is verified: move them into place, shard 1 (what llama.cpp opens) last.
        # Only this job's own parts move: a stray part beside a file in place stays put.
        for item in reversed(fetched):
            part = part_path(item.target)
            os.replace(part, item.target)
            unlink_if_present(self._sidecar(item.target))
            with self._lock:
                self._hashes.pop(part, None)
        for folder in {t.parent for t in job.targets}:
            fsync_dir(folder)

    def _verify_on_disk(self, job: DownloadJob, remote: RemoteFile, target: Path) -> None:
        """Hash ``target``'s part from disk; a wrong size or sha256 makes it ``.corrupt``."""
        part = part_path(target)
        size = file_size(part)
        digest = None
        if size == remote.size and remote.sha256 is not None:
            job.set_state(JobState.VERIFYING)
            digest = hash_file(part, size, job.check_stop).hexdigest()
            job.set_state(JobState.RUNNING)
        if size != remote.size:
            self._reject(
                target,
                f"{self.relative(target)} is {size} bytes on disk, the listing said "
                f"{remote.size}: something else wrote to it during the download",
            )
        if digest is not None and digest != remote.sha256:
            self._reject(
                target,
                f"the download was corrupted: {self.relative(target)} has sha256 {digest}, "
                f"expected {remote.sha256}",
            )

    def _reject(self, target: Path, problem: str) -> NoReturn:
        """Keep a bad part as ``<target>.corrupt`` for the user, and fail the job."""
        part = part_path(target)
        corrupt = target.with_name(target.name + CORRUPT_SUFFIX)
        os.replace(part, corrupt)
        unlink_if_present(self._sidecar(target))
        with self._lock:
            self._hashes.pop(part, None)
        raise DownloadError(
            f"{problem}; the bad copy is kept as {self.relative(corrupt)}",
            fix=f"delete {corrupt} and retry",
        )

    def _check_existing(self, job: DownloadJob, remote: RemoteFile, target: Path) -> None:
        """A file already in place is kept if it is the same file; never overwritten."""
        size = file_size(target)
        same = size == remote.size
        if same and remote.sha256:
            job.set_state(JobState.VERIFYING)
            same = hash_file(target, size, job.check_stop).hexdigest() == remote.sha256
            job.set_state(JobState.RUNNING)
        if not same:
            raise DownloadError(
                f"{self.relative(target)} already exists and differs from the file on the Hub",
                fix="move it away or delete it, then retry",
            )

    def _fetch(self, job: DownloadJob, remote: RemoteFile, target: Path) -> FileState:
        """Bring ``<target>.part`` to the full, verified file (or raise); its state on disk."""
        request = job.request
        part, sidecar = part_path(target), self._sidecar(target)
        meta = self._sidecar_data(request, remote, target)
        if part.exists() or sidecar.exists():
            old = read_json(sidecar)
            if part.exists() and (
                old is None or not same_content(old, meta) or file_size(part) > remote.size
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
        write_sidecar(sidecar, meta)
        with open(part, "ab", buffering=0) as handle:
            hasher = self._resume_hash(job, part, os.fstat(handle.fileno()))
            writer = PartWriter(handle, hasher, handle.tell())
            try:
                self._transfer(job, remote, writer, sidecar, meta)
                writer.finish()
            except BaseException:
                if writer.offset == 0:  # nothing arrived: leave no empty part behind
                    unlink_if_present(part)
                    unlink_if_present(sidecar)
                raise
            finally:
                with contextlib.suppress(OSError), self._lock:
                    state = identity(os.fstat(handle.fileno()))
                    self._hashes[part] = (state, writer.hasher.copy())
            # What is on disk, not what was streamed: with O_APPEND, any write by someone
            # else (or a lost one of ours) leaves the file at another size.
            on_disk = os.fstat(handle.fileno())
        if on_disk.st_size != remote.size:
            self._reject(
                target,
                f"{self.relative(target)} is {on_disk.st_size} bytes on disk after the "
                f"download, the listing said {remote.size}: something else wrote to it",
            )
        digest = writer.hasher.hexdigest()
        if remote.sha256 is not None and digest != remote.sha256:
            self._reject(
                target,
                f"the download was corrupted: {self.relative(target)} has sha256 {digest}, "
                f"expected {remote.sha256}",
            )
        return identity(on_disk)

    def _resume_hash(self, job: DownloadJob, part: Path, on_disk: os.stat_result) -> Any:
        """The sha256 state of the whole part: remembered, or re-read from disk.

        The remembered one counts only if the part is exactly as this process left it:
        another process may have written to it, or replaced it, in between.
        """
        with self._lock:
            cached = self._hashes.get(part)
        if cached is not None and cached[0] == identity(on_disk):
            return cached[1].copy()
        if on_disk.st_size == 0:
            return hashlib.sha256()
        job.set_state(JobState.VERIFYING)
        hasher = hash_file(part, on_disk.st_size, job.check_stop)
        job.set_state(JobState.RUNNING)
        return hasher

    def _transfer(
        self,
        job: DownloadJob,
        remote: RemoteFile,
        writer: PartWriter,
        sidecar: Path,
        meta: dict[str, Any],
    ) -> None:
        tries = 0
        while writer.offset < remote.size:
            job.check_stop()
            before = writer.offset
            try:
                self._stream_once(job, remote, writer, sidecar, meta)
                if writer.offset < remote.size:
                    raise RetryLater(
                        network_error(self.endpoint, ConnectionError("body ended early"))
                    )
            except RetryLater as retry:
                tries = 1 if writer.offset > before else tries + 1
                if tries >= self.retry.tries:
                    raise retry.error from retry
                delay = self.retry.delay(tries)
                if retry.retry_after is not None:
                    delay = min(max(retry.retry_after, delay), self.retry.max_retry_after)
                log.info("retrying %s in %.1f s: %s", remote.path, delay, retry.error)
                job.sleep(delay)

    def _stream_once(
        self,
        job: DownloadJob,
        remote: RemoteFile,
        writer: PartWriter,
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
                self._copy_body(job, remote, response.iter_raw(), writer)
        except httpx.TransportError as exc:
            raise RetryLater(network_error(self.endpoint, exc)) from exc

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
            write_sidecar(sidecar, meta)

    def _copy_body(
        self, job: DownloadJob, remote: RemoteFile, body: Iterator[bytes], writer: PartWriter
    ) -> None:
        """Write and hash each piece as it arrives: every byte received is kept, even on a drop.

        Nothing past the listed size is written: a server that keeps sending (a broken
        mirror, an endless chunked body) fails the job once the file is complete, after at
        most one more piece in memory, instead of filling the disk before the sha256 check.

        httpx reads the socket 64 KiB at a time. Re-chunking into bigger pieces (httpx's
        ``chunk_size`` or a buffer of ours) measured slower: every fresh multi-MiB buffer is
        page-faulted in, and big writes hit dirty-page throttling harder. So the loop stays
        flat, and progress, pause and the bandwidth limit cost a clock read per piece.
        """
        limiter, interval, clock = self._limiter, self.progress_interval, self.clock
        write = writer.write
        left = remote.size - writer.offset
        next_tick = clock() + interval
        for chunk in body:
            if len(chunk) > left:
                if left > 0:
                    write(chunk[:left])
                    job.bytes_done += left
                raise self._overrun(remote)
            write(chunk)
            left -= len(chunk)
            job.bytes_done += len(chunk)
            if job.stop_requested:
                raise JobStopped
            if limiter is not None:
                job.sleep(limiter.delay(len(chunk)))
            now = clock()
            if now >= next_tick:
                job.emit(now=now)
                next_tick = now + interval

    def _overrun(self, remote: RemoteFile) -> DownloadError:
        return DownloadError(
            f"{self.endpoint} sent more than the {remote.size} bytes listed for {remote.path}; "
            "the listed bytes are kept, the rest was not written",
            fix="retry (the kept bytes are checked against the sha256); if it happens again, "
            "the server or a proxy on the way is broken: check HF_ENDPOINT",
        )

    def _check_response(
        self, job: DownloadJob, remote: RemoteFile, response: httpx.Response, writer: PartWriter
    ) -> None:
        status = response.status_code
        if status in RETRY_STATUSES:
            raise RetryLater(
                http_error(
                    status,
                    response.headers.get("X-Error-Code"),
                    endpoint=self.endpoint,
                    has_token=bool(self.token),
                    token_withheld=self.token_withheld,
                    repo_id=job.request.repo_id,
                    retry_after=response.headers.get("Retry-After"),
                ),
                parse_retry_after(response.headers.get("Retry-After")),
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
                token_withheld=self.token_withheld,
                repo_id=job.request.repo_id,
                filename=remote.path,
                revision=job.request.revision,
            )
        if status == 206:
            start, total = parse_content_range(response.headers.get("Content-Range"))
            if start != writer.offset:  # a confused server: start this file cleanly over
                job.set_bytes(job.bytes_done - writer.offset)
                writer.restart()
                raise RetryLater(HubError(f"the server resumed {remote.path} at offset {start}"))
        elif status == 200:
            total = parse_int(response.headers.get("Content-Length"))
            if writer.offset:  # the server ignored our Range: start this file cleanly over
                job.set_bytes(job.bytes_done - writer.offset)
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
