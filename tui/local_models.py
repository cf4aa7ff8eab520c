"""A quick listing of the GGUF files in MODELS_DIR (file names and sizes, no parsing).

Pure and Textual-free: the Models screen calls it from a thread worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalModel:
    """One GGUF file, named relative to MODELS_DIR (the form CHAT_MODEL takes)."""

    relative: str
    size: int  # bytes


def scan_models(models_dir: Path) -> list[LocalModel]:
    """Every ``*.gguf`` file under ``models_dir``, sorted by name; [] if there is no folder."""
    if not models_dir.is_dir():
        return []
    found: list[LocalModel] = []
    for root, dirs, files in os.walk(models_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.lower().endswith(".gguf") or name.startswith("."):
                continue
            path = Path(root, name)
            try:
                size = path.stat().st_size
            except OSError:
                continue  # removed while we looked, or a dangling link
            found.append(LocalModel(path.relative_to(models_dir).as_posix(), size))
    return sorted(found, key=lambda model: model.relative.lower())


def format_size(size: int) -> str:
    """Sizes as people compare model files: GiB above 1 GiB, else MiB."""
    if size >= 2**30:
        return f"{size / 2**30:.1f} GiB"
    if size >= 2**20:
        return f"{size / 2**20:.0f} MiB"
    if size >= 2**10:
        return f"{size / 2**10:.0f} KiB"
    return f"{size} B"
