"""One download job on disk: lock its parts, fetch, verify what is on disk, move into place.

Each part is locked across processes for the whole job; a part is verified by its size and
sha256 as written to disk (not only as streamed), a bad one is kept as `.corrupt`, and
only this job's own verified parts are renamed into place, shard 1 of a split set last.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from stack.hub.files import RemoteFile
from stack.hub.jobs import DownloadError, DownloadJob, JobState
from stack.hub.parts import (
    CORRUPT_SUFFIX,
    STALE_SUFFIX,
    FileState,
    MiB,
    PartBusy,
    PartLock,
    PartWriter,
    busy_error,
    file_size,
    format_size,
    fsync_dir,
    hash_file,
    identity,
    part_path,
    read_json,
    same_content,
    unlink_if_present,
    write_error,
    write_sidecar,
)
from stack.hub.transfer import FileTransfer

if TYPE_CHECKING:
    from stack.hub.downloads import Downloader

log = logging.getLogger("stack.hub.downloads")

DISK_MARGIN = 512 * MiB  # kept free beyond what a download needs


@dataclass(frozen=True)
class _Fetched:
    """A verified part waiting for its rename, and the file state that was verified."""

    remote: RemoteFile
    target: Path
    state: FileState


class JobFetch:
    """Runs one job for its downloader (which holds the queue, the client and the limits)."""

    def __init__(self, downloader: Downloader) -> None:
        self.d = downloader

    def run(self, job: DownloadJob) -> None:
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
            raise busy_error(self.d.relative(target), busy.pid) from None
        except OSError as exc:
            for lock in locks:
                lock.release()
            job.current_file = self.d.relative(target)
            raise self._write_error(job, exc) from exc
        return locks

    def _write_error(self, job: DownloadJob, exc: OSError) -> DownloadError:
        name = job.current_file or job.name
        target = self.d.models_dir / name
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
        free = self.d.free_space(self.d.models_dir)
        if needed and free < needed + DISK_MARGIN:
            raise DownloadError(
                f"not enough free disk space for {job.name}: {format_size(needed)} to download "
                f"+ {format_size(DISK_MARGIN)} margin, {format_size(free)} free in "
                f"{self.d.models_dir}",
                fix="free some space, or set MODELS_DIR to a bigger disk",
            )
        job.set_bytes(present)
        fetched: list[_Fetched] = []
        for remote, target in pairs:
            job.current_file = self.d.relative(target)
            if target.exists():
                self._check_existing(job, remote, target)
            else:
                fetched.append(_Fetched(remote, target, self._fetch(job, remote, target)))
        # Only parts still as they were verified go into place; one changed since (another
        # program wrote to it) is verified again from disk first.
        for item in fetched:
            job.current_file = self.d.relative(item.target)
            part = part_path(item.target)
            try:
                state = identity(os.stat(part))
            except FileNotFoundError:
                raise DownloadError(
                    f"{self.d.relative(part)} was removed before it could be moved into place",
                    fix="retry the download",
                ) from None
            if state != item.state:
                self._verify_on_disk(job, item.remote, item.target)
        # Every part is verified: move them into place, shard 1 (what llama.cpp opens) last.
        # Only this job's own parts move: a stray part beside a file in place stays put.
        for item in reversed(fetched):
            part = part_path(item.target)
            os.replace(part, item.target)
            unlink_if_present(self.d.sidecar_path(item.target))
            with self.d.lock:
                self.d.hashes.pop(part, None)
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
                f"{self.d.relative(target)} is {size} bytes on disk, the listing said "
                f"{remote.size}: something else wrote to it during the download",
            )
        if digest is not None and digest != remote.sha256:
            self._reject(
                target,
                f"the download was corrupted: {self.d.relative(target)} has sha256 {digest}, "
                f"expected {remote.sha256}",
            )

    def _reject(self, target: Path, problem: str) -> NoReturn:
        """Keep a bad part as ``<target>.corrupt`` for the user, and fail the job."""
        part = part_path(target)
        corrupt = target.with_name(target.name + CORRUPT_SUFFIX)
        os.replace(part, corrupt)
        unlink_if_present(self.d.sidecar_path(target))
        with self.d.lock:
            self.d.hashes.pop(part, None)
        raise DownloadError(
            f"{problem}; the bad copy is kept as {self.d.relative(corrupt)}",
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
                f"{self.d.relative(target)} already exists and differs from the file on the Hub",
                fix="move it away or delete it, then retry",
            )

    def _fetch(self, job: DownloadJob, remote: RemoteFile, target: Path) -> FileState:
        """Bring ``<target>.part`` to the full, verified file (or raise); its state on disk."""
        request = job.request
        part, sidecar = part_path(target), self.d.sidecar_path(target)
        meta = self.d.sidecar_data(request, remote, target)
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
                meta["url"] = self.d.file_url(request.repo_id, old["commit"], remote.path)
                meta["etag"] = old.get("etag")
        target.parent.mkdir(parents=True, exist_ok=True)
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        write_sidecar(sidecar, meta)
        with open(part, "ab", buffering=0) as handle:
            hasher = self._resume_hash(job, part, os.fstat(handle.fileno()))
            writer = PartWriter(handle, hasher, handle.tell())
            try:
                FileTransfer(self.d).run(job, remote, writer, sidecar, meta)
                writer.finish()
            except BaseException:
                if writer.offset == 0:  # nothing arrived: leave no empty part behind
                    unlink_if_present(part)
                    unlink_if_present(sidecar)
                raise
            finally:
                with contextlib.suppress(OSError), self.d.lock:
                    state = identity(os.fstat(handle.fileno()))
                    self.d.hashes[part] = (state, writer.hasher.copy())
            # What is on disk, not what was streamed: with O_APPEND, any write by someone
            # else (or a lost one of ours) leaves the file at another size.
            on_disk = os.fstat(handle.fileno())
        if on_disk.st_size != remote.size:
            self._reject(
                target,
                f"{self.d.relative(target)} is {on_disk.st_size} bytes on disk after the "
                f"download, the listing said {remote.size}: something else wrote to it",
            )
        digest = writer.hasher.hexdigest()
        if remote.sha256 is not None and digest != remote.sha256:
            self._reject(
                target,
                f"the download was corrupted: {self.d.relative(target)} has sha256 {digest}, "
                f"expected {remote.sha256}",
            )
        return identity(on_disk)

    def _resume_hash(self, job: DownloadJob, part: Path, on_disk: os.stat_result) -> Any:
        """The sha256 state of the whole part: remembered, or re-read from disk.

        The remembered one counts only if the part is exactly as this process left it:
        another process may have written to it, or replaced it, in between.
        """
        with self.d.lock:
            cached = self.d.hashes.get(part)
        if cached is not None and cached[0] == identity(on_disk):
            return cached[1].copy()
        if on_disk.st_size == 0:
            return hashlib.sha256()
        job.set_state(JobState.VERIFYING)
        hasher = hash_file(part, on_disk.st_size, job.check_stop)
        job.set_state(JobState.RUNNING)
        return hasher
