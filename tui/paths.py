"""Paths as a person reads them: relative to where llm-tui was started when inside it."""

from __future__ import annotations

from pathlib import Path


def display_path(path: Path, cwd: Path | None = None) -> str:
    """``./models`` under the current folder, ``~/…`` under the home folder, else absolute."""
    base = (cwd or Path.cwd()).absolute()
    try:
        relative = path.absolute().relative_to(base)
    except ValueError:
        pass
    else:
        return "." if relative == Path() else f"./{relative.as_posix()}"
    try:
        return f"~/{path.absolute().relative_to(Path.home()).as_posix()}"
    except (ValueError, RuntimeError):
        return str(path)
