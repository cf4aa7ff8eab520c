"""The Settings screen: groups, checked as you type, the diff before writing, apply, reveal.

The real `.env` writer and the real plan decide what a change affects; the engine is a
fake here (tests/engine/test_tui_stack.py applies to real containers).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from stack.settings import Settings, load_settings
from tests.tui.fakes import FakeEngine, running, running_stack
from tests.tui.helpers import SIZE, go_to, notes, settle, text, until
from tui.__main__ import LlmTuiApp
from tui.screens.edit_setting import EditSettingScreen
from tui.screens.settings import GROUP_ROW, GROUPS, SettingsScreen, SettingsTable
from tui.setting_change import preview_change

pytestmark = [pytest.mark.tui, pytest.mark.anyio]


async def open_editor(app: LlmTuiApp, pilot: object, key: str) -> EditSettingScreen:
    table = app.screen.query_one(SettingsTable)
    table.move_cursor(row=table.get_row_index(key))
    await settle(app)
    await pilot.press("enter")  # type: ignore[attr-defined]
    await settle(app)
    dialog = app.screen
    assert isinstance(dialog, EditSettingScreen)
    return dialog


async def type_value(app: LlmTuiApp, dialog: EditSettingScreen, value: str) -> None:
    field = dialog.query_one("#edit-value", Input)
    field.value = value
    await settle(app)


def check_line(dialog: EditSettingScreen) -> str:
    return text(dialog.query_one("#edit-check", Static))


def test_what_a_change_affects_comes_from_the_plan(settings: Settings) -> None:
    assert preview_change(settings, "CTX_SIZE", "4096").affected == ("inference",)
    assert preview_change(settings, "API_GATEWAY_PORT", "8010").affected == ("api-gateway",)
    assert preview_change(settings, "GPU_SAMPLE_INTERVAL", "2").affected == ()
    clash = preview_change(settings, "INFERENCE_PORT", "8000")
    assert not clash.valid and "must differ" in clash.problems[0]


async def test_keys_are_grouped(app: LlmTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "settings")
        table = app.screen.query_one(SettingsTable)
        keys = [str(row.value) for row in table.rows]
        groups = [key.removeprefix(GROUP_ROW) for key in keys if key.startswith(GROUP_ROW)]
        assert groups[: len(GROUPS)] == list(GROUPS)  # then any section of its own
        position = {key: index for index, key in enumerate(keys)}

        def within(group: str, key: str) -> bool:
            start = position[GROUP_ROW + group]
            later = [position[GROUP_ROW + g] for g in groups if position[GROUP_ROW + g] > start]
            return start < position[key] < min(later, default=len(keys))

        assert within("Models", "CHAT_MODEL") and within("Inference", "CTX_SIZE")
        assert within("Gateway", "LITELLM_MASTER_KEY") and within("Gateway", "GATEWAY_IMAGE")
        assert within("Network", "API_GATEWAY_PORT") and within("Hub", "HF_TOKEN")
        assert within("Dashboard", "LOG_BUFFER_LINES")
        table.move_cursor(row=position[GROUP_ROW + "Models"])
        await pilot.press("enter")  # a group's row: nothing to edit
        await settle(app)
        assert isinstance(app.screen, SettingsScreen)


async def test_checked_as_you_type_then_the_diff_then_written(home: Path, app: LlmTuiApp) -> None:
    env = home / ".env"
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "settings")
        dialog = await open_editor(app, pilot, "CTX_SIZE")
        await type_value(app, dialog, "abc")
        assert check_line(dialog).startswith("✗ must be a whole number")
        await type_value(app, dialog, "4096")
        assert check_line(dialog) == "✓ Applying it (a on Settings) recreates only: inference."
        before = env.read_text()
        await pilot.press("enter")
        await settle(app)
        assert dialog.reviewing and env.read_text() == before  # shown, not yet written
        review = text(dialog.query_one("#edit-review", Static))
        assert review.startswith("CTX_SIZE: 8192 → 4096\n")
        assert not dialog.query_one("#edit-check").display  # its effect is in the review
        await pilot.press("escape")  # back to editing
        await settle(app)
        assert not dialog.reviewing and isinstance(app.screen, EditSettingScreen)
        assert dialog.query_one("#edit-check").display
        await pilot.press("enter", "enter")
        await until(lambda: isinstance(app.screen, SettingsScreen), "the dialog closed")
        await settle(app)
        assert "CTX_SIZE=4096\n" in env.read_text()
        assert app.settings.ctx_size == 4096


async def test_a_secret_is_masked_until_revealed(app: LlmTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "settings")
        dialog = await open_editor(app, pilot, "LITELLM_MASTER_KEY")
        field = dialog.query_one("#edit-value", Input)
        assert field.password
        await pilot.press("ctrl+r")
        await settle(app)
        assert not field.password
        await type_value(app, dialog, "sk-new-0123456789abcdefghij")
        await pilot.press("enter")
        await settle(app)
        review = text(dialog.query_one("#edit-review", Static))
        assert "sk-new-0123456789abcdefghij" in review  # revealed: shown in full
        await pilot.press("ctrl+r", "escape")
        await settle(app)
        await pilot.press("enter")
        await settle(app)
        review = text(dialog.query_one("#edit-review", Static))
        assert "sk-new-0123456789abcdefghij" not in review and "sk-ne…" in review
        await pilot.press("escape", "escape")
        await settle(app)


async def test_a_saved_change_is_applied_to_the_running_stack(
    settings: Settings, app: LlmTuiApp, engine: FakeEngine
) -> None:
    engine.statuses = [replace(running("inference"), drift=("CTX_SIZE",)), running("api-gateway")]
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "settings")
        bar = app.screen.query_one("#settings-apply", Static)
        assert bar.display
        assert "Saved, not yet applied: inference (CTX_SIZE)" in text(bar)
        assert "recreates only inference" in text(bar)
        await pilot.press("a")
        await until(lambda: ("up",) in engine.calls, "up was asked")
        await settle(app)
        assert any(title == "Settings applied" for title, _ in notes(app))
        panel = app.screen.query_one("#settings-operation", Static)
        assert text(panel).startswith("✓ Applied:")
        assert panel.outer_size.height == 1  # one row: the table keeps the screen's rows
        engine.statuses = running_stack()


async def test_nothing_to_apply_says_why(app: LlmTuiApp, engine: FakeEngine) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "settings")
        assert not app.screen.query_one("#settings-apply").display
        await pilot.press("a")
        await settle(app)
        assert (
            "Nothing to apply",
            "The stack is not running: it starts with these settings (u on the Dashboard).",
        ) in notes(app)
        assert ("up",) not in engine.calls


def test_the_settings_fixture_is_a_real_env(home: Path) -> None:
    assert load_settings(home / ".env").ctx_size == 8192
