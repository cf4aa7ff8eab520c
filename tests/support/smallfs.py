"""A real, tiny file system (tmpfs) to provoke ENOSPC: no fake `open`, the kernel says no."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.support.tiers import unavailable


@contextlib.contextmanager
def small_filesystem(where: Path, size: str = "64k") -> Iterator[Path]:
    """Mount a ``size`` tmpfs at ``where`` (created) for the block; needs root."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        unavailable("a small tmpfs", "mounting one needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        unavailable("a small tmpfs", mounted.stderr.strip() or "mount failed")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(folder: Path, *, leave: int = 0) -> None:
    """Write a filler file until the file system has at most ``leave`` bytes free."""
    filler = folder / ".filler"
    with filler.open("ab", buffering=0) as handle:
        while True:
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            if free <= leave:
                return
            try:
                handle.write(b"\0" * max(1, min(free - leave, 1 << 16)))
            except OSError:
                return
