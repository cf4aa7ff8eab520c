"""One snapshot per screen at a fixed size, with frozen checks and a fixed master key.

Regenerate after an intended change with `pytest tests/tui/test_snapshots.py
--snapshot-update`, and look at the SVGs before accepting them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from stack.settings import load_settings
from tests.tui.conftest import frozen_checks, write_env, write_gguf
from tui.__main__ import Services, make_app
from tui.screens.settings import SettingsTable

pytestmark = pytest.mark.tui

SIZE = (100, 32)
SnapCompare = Callable[..., bool]


def keys(*presses: str) -> Callable[[Pilot[int]], Awaitable[None]]:
    """Press keys, letting every worker finish and its messages land after each."""

    async def run(pilot: Pilot[int]) -> None:
        await settle(pilot)
        for key in presses:
            await pilot.press(key)
            await settle(pilot)

    return run


async def settle(pilot: Pilot[int]) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def snapshot_app(home: Path, **values: str) -> object:
    write_env(home, **values)
    return make_app(load_settings(home / ".env"), Services(run_checks=frozen_checks))


def check(snap_compare: SnapCompare, app: object, presses: Iterable[str] = ()) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=keys(*presses))


def test_dashboard(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home))


def test_dashboard_keys_panel(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), ["question_mark"])


def test_models_empty(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), ["2"])


def test_models_listed(snap_compare: SnapCompare, home: Path) -> None:
    write_gguf(home / "models" / "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf", 3 * 2**20)
    write_gguf(home / "models" / "llama" / "Llama-3.2-3B-Instruct-Q8_0.gguf", 5 * 2**20)
    write_gguf(home / "models" / "tiny.gguf", 2048)
    app = snapshot_app(home, CHAT_MODEL="Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf")
    check(snap_compare, app, ["2"])


def test_logs(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), ["3"])


def test_chat(snap_compare: SnapCompare, home: Path) -> None:
    # Esc leaves the input: no blinking cursor in the picture.
    check(snap_compare, snapshot_app(home), ["4", "escape"])


def test_settings(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), ["5"])


def test_settings_with_problems(snap_compare: SnapCompare, home: Path) -> None:
    write_env(home)
    env = home / ".env"
    env.write_text(env.read_text() + "PARALLEL=lots\nMY_OWN_SETTING=kept\n")
    app = make_app(load_settings(env), Services(run_checks=frozen_checks))
    check(snap_compare, app, ["5"])


def test_settings_edit_error(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home)

    async def run(pilot: Pilot[int]) -> None:
        await keys("5")(pilot)
        table = pilot.app.screen.query_one(SettingsTable)
        table.move_cursor(row=table.get_row_index("CTX_SIZE"))
        await pilot.press("enter")
        await settle(pilot)
        field = pilot.app.screen.query_one("#edit-value", Input)
        field.value = "abc"
        await pilot.press("enter")
        await settle(pilot)
        pilot.app.screen.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_connect(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), ["6"])


def test_connect_claude_code_revealed(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home)

    async def run(pilot: Pilot[int]) -> None:
        await keys("6", "s")(pilot)
        pilot.app.screen.query_one("TabbedContent").active = "tab-claude_code"
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run)
