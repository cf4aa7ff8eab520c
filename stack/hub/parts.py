"""The bytes on disk behind a download: ``.part`` files, their sidecars, hashes and names.

Also the small parsers for the HTTP headers a ranged download reads. Nothing here knows
about jobs; `stack.hub.downloads` puts the pieces together. A part's hash is worked out
beside its writes, on a thread of its own (`stack.hub.hashing`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from stack.atomic import write_atomic
from stack.hub.hashing import BackgroundHash
from stack.hub.jobs import DownloadError

MiB = 1024 * 1024
GiB = 1024 * MiB
HASH_CHUNK = 8 * MiB  # bytes per read when re-hashing a part from disk
WRITEBACK_STEP = 32 * MiB  # start flushing a part to disk every this many bytes
PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".part.json"
LOCK_SUFFIX = ".part.lock"
STALE_SUFFIX = ".part.stale"
CORRUPT_SUFFIX = ".corrupt"

FreeSpace = Callable[[Path], int]


def disk_free(path: Path) -> int:
    """Free bytes on the filesystem that holds ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free


# --- writing and hashing a part ------------------------------------------------------------


class PartWriter:
    """Appends to an open ``.part``, hashes what it writes, and keeps writeback going.

    The part is fsynced before its rename into place. Left alone, the kernel would still
    hold most of a fast download in dirty pages at that point and the fsync would stall for
    seconds; starting writeback every `WRITEBACK_STEP` spreads that work over the transfer
    (and keeps the pages cached for the model load that usually follows).
    """

    def __init__(self, handle: Any, hasher: Any, offset: int) -> None:
        self.handle = handle
        self._hash = BackgroundHash(hasher)
        self.offset = offset
        self._written_back = offset

    @property
    def hasher(self) -> Any:
        """The sha256 of the part so far (waits for the hash to catch up with the writes)."""
        return self._hash.result()

    def write(self, chunk: bytes) -> None:
        written = self.handle.write(chunk)
        if written != len(chunk):  # a short write: a disk filling up, or legal for raw files
            try:
                view = memoryview(chunk)[written:]
                while view:
                    view = view[self.handle.write(view) :]
            except OSError:
                # Keep the part equal to what was hashed, so a resume needs no re-read.
                with contextlib.suppress(OSError):
                    self.handle.truncate(self.offset)
                raise
        self._hash.update(chunk)
        self.offset += len(chunk)
        if self.offset - self._written_back >= WRITEBACK_STEP:
            _start_writeback(self.handle.fileno(), self._written_back, self.offset)
            self._written_back = self.offset

    def finish(self) -> None:
        """Make the part durable, so the rename never exposes a hollow file after a crash."""
        os.fsync(self.handle.fileno())

    def restart(self) -> None:
        self._hash.result()  # its thread ends before the hash starts over
        self.handle.truncate(0)  # opened for append: the next write lands at 0
        self._hash = BackgroundHash(hashlib.sha256())
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


def hash_file(path: Path, length: int, check_stop: Callable[[], None]) -> Any:
    """The sha256 state of the first ``length`` bytes of ``path``.

    ``check_stop`` runs before each read and may raise to abandon the work.
    """
    hasher = hashlib.sha256()
    remaining = length
    with open(path, "rb", buffering=0) as handle:
        while remaining > 0:
            check_stop()
            chunk = handle.read(min(HASH_CHUNK, remaining))
            if not chunk:
                break
            hasher.update(chunk)
            remaining -= len(chunk)
    return hasher


FileState = tuple[int, int, int, int]  # device, inode, size, mtime in ns


def identity(info: os.stat_result) -> FileState:
    """A file's state: a rewrite changes its mtime, a new file at the path its inode."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


# --- one writer per part, across processes ---------------------------------------------


class PartBusy(Exception):
    """Another open file holds the part's lock; ``pid`` is its process when it said so."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(f"locked by pid {pid}")
        self.pid = pid


class PartLock:
    """The right to write ``<target>.part``, held by one open file on the whole machine.

    An exclusive ``flock`` on ``<target>.part.lock``: the kernel drops it when its holder
    exits, however it exits, so a crash leaves nothing locked. It sits in its own file, not
    on the part, because the part is created, set aside as stale or corrupt, and renamed into
    place while the lock must cover all of that. The holder deletes the file before letting
    go, so a finished download leaves nothing behind; a taker that locked a file which was
    deleted meanwhile tries again (otherwise two holders could each lock a different file).
    The holder's pid is written inside, so the other side can say who it is.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, target: Path) -> PartLock:
        """Lock ``target``'s part without waiting; raises `PartBusy` when someone holds it."""
        path = target.with_name(target.name + LOCK_SUFFIX)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise PartBusy(pid) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            held = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (
                held.st_dev,
                held.st_ino,
            ):
                break
            os.close(fd)  # the last holder deleted it after we opened it: take the new one
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the lock holds without the pid; the other side just cannot name us
        return cls(path, fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):  # gone or read-only now: the lock still ends
                os.unlink(self.path)
        finally:
            os.close(fd)


def busy_error(name: str, pid: int | None) -> DownloadError:
    """``name``'s part is locked by ``pid`` (None: a holder that has not said who it is)."""
    if pid == os.getpid():
        return DownloadError(
            f"{name} is already being downloaded by this llm-tui",
            fix="wait for that download or cancel it",
        )
    who = "another llm-tui" + (f" (pid {pid})" if pid else "")
    stop = f"stop it (kill {pid})" if pid else "stop it"
    return DownloadError(
        f"{name} is being downloaded by {who}",
        fix=f"wait for it to finish, or {stop}, then retry",
    )


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        return int(text) if text else None
    return None


# --- what a failed write means ----------------------------------------------------------


def write_error(exc: OSError, name: str, folder: Path, kept: int, size: int) -> DownloadError:
    """A one-line error for an OS failure while writing ``name`` into ``folder``.

    ``kept`` bytes of ``size`` are on disk in the part, which stays for the retry.
    """
    code = exc.errno
    left = f"{format_size(kept)} of {format_size(size)} kept, the retry resumes from there"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return DownloadError(
            f"the disk is full: {name} stopped in {folder} ({left})",
            fix="free some space on that disk, or set MODELS_DIR to a bigger one, then retry",
        )
    if code == errno.EROFS:
        return DownloadError(
            f"cannot write {name}: {folder} is on a read-only filesystem",
            fix="mount it read-write, or set MODELS_DIR to a writable folder, then retry",
        )
    if code in (errno.EACCES, errno.EPERM):
        return DownloadError(
            f"cannot write {name}: permission denied in {folder}",
            fix=f"make {folder} writable for this user, or set MODELS_DIR to another folder",
        )
    return DownloadError(
        f"cannot write {name} in {folder}: {exc.strerror or exc} ({left})",
        fix=f"check the disk that holds {folder}, then retry",
    )


# --- sidecars ------------------------------------------------------------------------------


def same_content(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether an existing part was written for the same bytes as this request."""
    keys = ("repo", "path", "size", "sha256")
    if any(old.get(k) != new.get(k) for k in keys):
        return False
    # Without a sha256 (small git files) only the commit pins the content.
    return new["sha256"] is not None or old.get("revision") == new["revision"]


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object read from ``path``; None when it is missing, unreadable or not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_sidecar(path: Path, meta: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(meta, indent=2) + "\n", mode=0o644)


# --- names and files -----------------------------------------------------------------------


def safe_relative(raw: str, *, what: str, allow_empty: bool = False) -> PurePosixPath:
    """``raw`` as a relative path; raises `DownloadError` for names that could escape."""
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


def part_path(target: Path) -> Path:
    return target.with_name(target.name + PART_SUFFIX)


def file_size(path: Path) -> int:
    """Size of ``path`` in bytes; 0 when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def unlink_if_present(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def fsync_dir(path: Path) -> None:
    """Make renames in ``path`` durable, where the filesystem allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def format_size(n: int) -> str:
    return f"{n / GiB:.2f} GiB" if n >= GiB else f"{n / MiB:.0f} MiB"


# --- response headers ----------------------------------------------------------------------


def parse_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of ``bytes first-last/total``."""
    match = re.match(r"^\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*$", value or "")
    if match is None:
        return None, None
    return int(match[1]), None if match[2] == "*" else int(match[2])


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(float(value), 0.0)
    from email.utils import parsedate_to_datetime

    with contextlib.suppress(TypeError, ValueError):
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    return None
