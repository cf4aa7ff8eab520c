"""Entry point: `make_app` builds the app for the CLI and the tests alike."""

from __future__ import annotations

import time

from stack.settings import Settings
from tui.app import LlmTuiApp
from tui.services import Services

__all__ = ["LlmTuiApp", "Services", "make_app", "run"]


def make_app(
    settings: Settings, services: Services | None = None, *, started_at: float | None = None
) -> LlmTuiApp:
    """The app wired to ``services`` (the real `stack` calls unless tests pass others)."""
    return LlmTuiApp(settings, services or Services(), started_at=started_at)


def run(settings: Settings) -> int:
    """Run the TUI until the user quits; the exit status for `llm-tui`."""
    app = make_app(settings, started_at=time.perf_counter())
    app.run()
    return app.return_code or 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    from stack.settings import load_settings

    sys.exit(run(load_settings(create=True)))
