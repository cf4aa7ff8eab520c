"""Atomic file replacement and an advisory lock, shared by every writer in `stack`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

NEW_FILE_MODE = 0o600


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock for writing ``path``.

    The lock is taken on the file's folder: writes replace the file itself (a lock on its
    old inode would not stop the next writer), and a folder lock leaves no stray file.
    """
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def write_atomic(
    path: Path, text: str, *, mode: int = NEW_FILE_MODE, private: bool = False
) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new file, never half.

    An existing file keeps its permission bits; a new one gets ``mode``. ``private`` (the
    text holds a secret) drops the group and other bits whatever the file had.
    """
    with contextlib.suppress(FileNotFoundError):
        mode = path.stat().st_mode & 0o777
    if private:
        mode &= 0o700
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
