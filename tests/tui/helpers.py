"""What the Pilot tests share: settling, waiting for a condition, reading the screen."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import Static

from tui.__main__ import LlmTuiApp
from tui.commands import MODES

SIZE = (100, 32)


def text(widget: Static) -> str:
    return str(widget.visual)


def screen_text(app: LlmTuiApp) -> str:
    return "\n".join(text(static) for static in app.screen.query(Static))


async def settle(app: LlmTuiApp, pilot: Pilot[int]) -> None:
    """Let every worker finish and every message it posted be handled."""
    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def until(pilot: Pilot[int], condition: Callable[[], bool], what: str) -> None:
    """Let the app run until ``condition`` holds (a worker in another thread got there)."""
    for _ in range(500):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"never happened: {what}")


async def go_to(app: LlmTuiApp, pilot: Pilot[int], mode: str) -> None:
    key = next(m.key for m in MODES if m.name == mode)
    await pilot.press(key)
    await settle(app, pilot)
    assert app.current_mode == mode


def notes(app: LlmTuiApp) -> list[tuple[str, str]]:
    """(title, message) of every notification shown so far."""
    return [(note.title, note.message) for note in app._notifications]
