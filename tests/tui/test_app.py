"""Pilot tests: the app's state after real key presses, workers awaited, never slept on."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import DataTable, HelpPanel, Input, Static

from stack.doctor import Check, Status
from stack.settings import Settings, load_settings
from tests.support.gguf_factory import write_tiny_model
from tests.tui.conftest import FROZEN_CHECKS
from tests.tui.fakes import FakeEngine, fake_services
from tests.tui.helpers import DEADLINE_S, SIZE, go_to, notes, screen_text, settle, text, until
from tui.__main__ import LlmTuiApp, make_app
from tui.commands import COMMANDS, MODES, CommandTableProvider
from tui.screens.chat import ChatScreen
from tui.screens.connect import ConnectScreen
from tui.screens.dashboard import DashboardScreen
from tui.screens.edit_setting import EditSettingScreen
from tui.screens.models import ModelsScreen, ModelTable
from tui.screens.settings import SettingsScreen, SettingsTable
from tui.widgets.checklist import Checklist, CheckRow

pytestmark = [pytest.mark.tui, pytest.mark.anyio]


async def select_row(app: LlmTuiApp, table: DataTable[object], key: str) -> None:
    assert table.has_focus  # Enter must reach it without the mouse
    row = table.get_row_index(key)
    table.move_cursor(row=row)
    await settle(app)


async def test_starts_on_the_dashboard(app: LlmTuiApp) -> None:
    async with app.run_test(size=SIZE):
        await settle(app)
        assert app.current_mode == "dashboard"
        assert isinstance(app.screen, DashboardScreen)
        assert app.title == "llm-tui"


async def test_number_keys_switch_modes(app: LlmTuiApp) -> None:
    expected = {
        "dashboard": DashboardScreen,
        "models": ModelsScreen,
        "settings": SettingsScreen,
        "connect": ConnectScreen,
        "chat": ChatScreen,
    }
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        for mode in ("models", "logs", "settings", "connect", "dashboard", "chat"):
            await go_to(app, pilot, mode)
            if mode in expected:
                assert isinstance(app.screen, expected[mode])
        # The chat input has focus: digits are typed, Esc gives the keys back.
        assert isinstance(app.focused, Input)
        await pilot.press("2")
        await settle(app)
        assert app.current_mode == "chat"
        assert app.screen.query_one("#chat-input", Input).value == "2"
        await pilot.press("escape")
        await settle(app)
        assert app.focused is None
        await go_to(app, pilot, "models")


async def test_question_mark_toggles_the_keys_panel(app: LlmTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        assert not app.screen.query(HelpPanel)
        await pilot.press("question_mark")
        await settle(app)
        assert app.screen.query(HelpPanel)
        await pilot.press("question_mark")
        await settle(app)
        assert not app.screen.query(HelpPanel)


def test_every_binding_has_an_id_and_a_tooltip() -> None:
    ids = [command.id for command in COMMANDS]
    assert len(ids) == len(set(ids))
    for command in COMMANDS:
        binding = command.binding()
        assert binding.id and binding.tooltip and binding.description
        # Priority keys beat a focused field's typing: only quit, and the Logs keys that open
        # a field (they refuse while one is focused, so there they are text).
        assert binding.priority == (
            command.key == "ctrl+q" or command.id in ("logs.search", "logs.filter")
        )


async def test_palette_lists_go_to_commands(app: LlmTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        provider = CommandTableProvider(app.screen)
        titles = [hit.text async for hit in provider.discover()]
        assert [f"Go to {mode.title}" for mode in MODES] == titles[: len(MODES)]
        assert "Re-run the getting-started checks" in titles  # this screen's own command
        assert "Copy the gateway key" not in titles  # another screen's

        await pilot.press("ctrl+p")
        await pilot.press(*"go to connect")
        options = app.screen.query_one(CommandList)

        def found() -> bool:
            index = options.highlighted
            return index is not None and "Go to Connect" in str(
                options.get_option_at_index(index).prompt
            )

        # The palette searches in the background: Enter picks what is highlighted then.
        await until(found, "the palette highlights Go to Connect")
        await settle(app)
        assert found()
        await pilot.press("enter")
        await settle(app)
        assert app.current_mode == "connect"


async def test_keymap_remaps_a_binding_by_id(app: LlmTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        app.set_keymap({"go.models": "m"})
        await pilot.press("m")
        await settle(app)
        assert app.current_mode == "models"


async def test_checklist_shows_the_fix_of_a_failing_check(app: LlmTuiApp) -> None:
    docker = next(check for check in FROZEN_CHECKS if check.name == "docker")
    async with app.run_test(size=SIZE):
        await settle(app)
        checklist = app.screen.query_one(Checklist)
        assert checklist.checks == FROZEN_CHECKS
        assert "3 of 6 ready" in str(checklist.border_title)
        rows = {row.check_name: row for row in checklist.query(CheckRow)}
        assert rows["docker"].has_class("-fail")
        fixes = [text(static) for static in rows["docker"].query(".check-fix").results(Static)]
        assert fixes == [f"→ {docker.fix}"]
        assert not rows["settings"].query(".check-fix")
        summary = text(app.screen.query_one("#stack-summary", Static))
        assert "http://localhost:8000/v1" in summary
        assert "none — press 2 to pick one" in summary


async def test_dashboard_says_checking_until_the_checks_return(settings: Settings) -> None:
    release = threading.Event()
    calls: list[Settings] = []

    def held_checks(received: Settings) -> list[Check]:
        calls.append(received)
        release.wait(timeout=10)
        return [Check("settings", Status.OK, "fine")]

    app = make_app(settings, replace(fake_services(FROZEN_CHECKS), run_checks=held_checks))
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: bool(calls), "the checks run (and wait)")
        await until(lambda: "checking…" in screen_text(app), "the rows say checking")
        checklist = app.screen.query_one(Checklist)
        assert checklist.checks is None
        assert "checking…" in screen_text(app)
        assert "checking…" in str(checklist.border_title)
        release.set()
        await settle(app)
        assert checklist.checks == (Check("settings", Status.OK, "fine"),)
        await pilot.press("r")
        await settle(app)
        assert len(calls) == 2


async def test_a_failing_check_run_is_a_notification_not_a_crash(settings: Settings) -> None:
    def broken(received: Settings) -> list[Check]:
        raise RuntimeError("engine exploded")

    app = make_app(settings, replace(fake_services(FROZEN_CHECKS), run_checks=broken))
    async with app.run_test(size=SIZE):
        await settle(app)
        assert app.is_running
        notes = list(app._notifications)
        assert any("engine exploded" in note.message for note in notes)
        assert "the checks failed" in screen_text(app)


async def test_models_lists_files_and_enter_sets_chat_model(home: Path, app: LlmTuiApp) -> None:
    write_tiny_model(home / "models" / "b-model-Q4_K_M.gguf", name="b-model")
    write_tiny_model(home / "models" / "family" / "a-model-Q8_0.gguf", name="a-model", seed=2)
    (home / "models" / "notes.txt").write_text("not a model")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "models")
        table = app.screen.query_one(ModelTable)
        files = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert files == ["b-model-Q4_K_M.gguf", "family/a-model-Q8_0.gguf"]
        _, _, quant, params, size, context, fit = map(str, table.get_row_at(0))
        assert (quant, params.strip(), context.strip(), fit) == ("F16", "132K", "2k", "?")
        assert size.strip().endswith("KiB")

        await select_row(app, table, "family/a-model-Q8_0.gguf")
        await pilot.press("enter")
        await settle(app)

        on_disk = load_settings(home / ".env")
        assert on_disk.chat_model == "family/a-model-Q8_0.gguf"
        assert "CHAT_MODEL=family/a-model-Q8_0.gguf\n" in (home / ".env").read_text()
        assert app.settings.chat_model == "family/a-model-Q8_0.gguf"
        assert str(table.get_row("family/a-model-Q8_0.gguf")[0]) == "● chat"
        assert any(note.title == "Chat model set" for note in app._notifications)


async def test_models_empty_state_says_how_to_get_one(app: LlmTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "models")
        assert app.screen.has_class("-empty")
        empty = text(app.screen.query_one("#models-empty", Static))
        assert "Copy a .gguf file into MODELS_DIR (./models)" in empty
        await pilot.press("enter")  # nothing to pick: no write, no crash
        await settle(app)
        assert app.settings.chat_model == ""


async def edit_setting(app: LlmTuiApp, pilot: Pilot[int], key: str, value: str) -> None:
    table = app.screen.query_one(SettingsTable)
    await select_row(app, table, key)
    await pilot.press("enter")
    await settle(app)
    assert isinstance(app.screen, EditSettingScreen)
    field = app.screen.query_one("#edit-value", Input)
    field.value = value
    field.focus()
    await settle(app)
    await pilot.press("enter")  # a valid value: the change is shown first
    await settle(app)
    if isinstance(app.screen, EditSettingScreen) and app.screen.reviewing:
        await pilot.press("enter")  # and written
        await settle(app)


async def test_settings_edit_rejects_invalid_and_writes_valid(home: Path, app: LlmTuiApp) -> None:
    env = home / ".env"
    before = env.read_bytes()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "settings")

        await edit_setting(app, pilot, "CTX_SIZE", "abc")
        dialog = app.screen
        assert isinstance(dialog, EditSettingScreen)
        error = dialog.query_one("#edit-error", Static)
        assert error.has_class("-visible")
        assert "must be a whole number" in text(error)
        assert env.read_bytes() == before

        await pilot.press("escape")
        await settle(app)
        assert isinstance(app.screen, SettingsScreen)
        assert env.read_bytes() == before

        await edit_setting(app, pilot, "CTX_SIZE", "4096")
        assert isinstance(app.screen, SettingsScreen)
        assert "CTX_SIZE=4096\n" in env.read_text()
        assert load_settings(env).ctx_size == 4096
        assert app.settings.ctx_size == 4096
        table = app.screen.query_one(SettingsTable)
        assert str(table.get_row("CTX_SIZE")[1]) == "4096"


async def test_settings_masks_secrets_until_s(app: LlmTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "settings")
        table = app.screen.query_one(SettingsTable)
        key = app.settings.litellm_master_key
        assert key not in str(table.get_row("LITELLM_MASTER_KEY")[1])
        await pilot.press("s")
        await settle(app)
        assert str(table.get_row("LITELLM_MASTER_KEY")[1]) == key


async def test_settings_shows_problems_and_unknown_keys(home: Path) -> None:
    env = home / ".env"
    env.write_text(env.read_text() + "PARALLEL=lots\nMY_OWN_TOKEN=hunter2hunter2\n")
    settings = load_settings(env)
    app = make_app(settings, fake_services(FROZEN_CHECKS))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "settings")
        problems = app.screen.query_one("#settings-problems", Static)
        assert problems.display
        assert "PARALLEL" in text(problems) and "whole number" in text(problems)
        table = app.screen.query_one(SettingsTable)
        assert str(table.get_row("MY_OWN_TOKEN")[1]) != "hunter2hunter2"  # looks secret
        assert "kept as is" in str(table.get_row("MY_OWN_TOKEN")[2])


async def test_connect_shows_url_masked_key_and_snippets(app: LlmTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "connect")
        key = app.settings.litellm_master_key
        summary = text(app.screen.query_one("#connect-summary", Static))
        assert "http://localhost:8000/v1" in summary
        assert key not in screen_text(app)
        claude = text(app.screen.query_one("#snippet-claude-code", Static))
        assert "export ANTHROPIC_BASE_URL=http://localhost:8000\n" in claude
        await pilot.press("s")
        await settle(app)
        assert key in text(app.screen.query_one("#snippet-curl", Static))
        await pilot.press("c")
        await settle(app)
        assert app.clipboard == key


async def test_connect_shows_the_placeholder_key_plainly_when_there_is_no_key(
    settings: Settings,
) -> None:
    """Without LITELLM_MASTER_KEY the gateway takes any key: the one to paste, `no-key`, is
    no secret, so it shows as it is instead of as dots."""
    app = make_app(replace(settings, litellm_master_key=""), fake_services(FROZEN_CHECKS))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "connect")
        summary = text(app.screen.query_one("#connect-summary", Static))
        assert "API key       no-key  (LITELLM_MASTER_KEY is empty: any key works" in summary
        assert "•" not in summary


async def test_q_quits_cleanly(app: LlmTuiApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("q")
        await settle(app)
    assert not app.is_running
    assert app.return_code in (None, 0)


def test_app_import_leaves_heavy_modules_unloaded() -> None:
    heavy = ["docker", "huggingface_hub", "httpx", "pynvml"]
    code = (
        "import sys, tui.__main__, tui.app\n"
        f"loaded = [m for m in {heavy!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


async def test_a_settings_write_closes_the_old_engine(settings: Settings) -> None:
    built: list[FakeEngine] = []

    def make_engine(received: Settings) -> FakeEngine:
        built.append(FakeEngine().factory(received))
        return built[-1]

    app = make_app(settings, replace(fake_services(FROZEN_CHECKS), make_engine=make_engine))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        first = app.engine
        await go_to(app, pilot, "settings")
        await edit_setting(app, pilot, "CTX_SIZE", "4096")
        assert app.settings.ctx_size == 4096
        second = app.engine
        assert second is not first and second.settings is app.settings
        await until(first.closed.is_set, "the old engine's Docker client closed")
        assert not second.closed.is_set()
    assert second.closed.wait(timeout=DEADLINE_S)  # and the last one at exit
    assert all(engine.closed.is_set() for engine in built)


async def test_an_env_edited_outside_the_app_is_noticed_and_redrawn(
    home: Path, app: LlmTuiApp
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await go_to(app, pilot, "settings")
        # Another process writes .env, as `llm-tui config set CTX_SIZE 1024` does.
        cli = [sys.executable, "-m", "cli", "--env-file", str(home / ".env")]
        done = subprocess.run(
            [*cli, "config", "set", "CTX_SIZE", "1024"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        await until(lambda: app.settings.ctx_size == 1024, "the app reloaded .env")
        await settle(app)
        table = app.screen.query_one(SettingsTable)
        assert str(table.get_row("CTX_SIZE")[1]) == "1024"
        title, message = notes(app)[-1]
        assert title == "Settings reloaded" and "(CTX_SIZE)" in message


async def test_the_apps_own_writes_are_not_announced_as_outside_edits(app: LlmTuiApp) -> None:
    from stack.settings import set_setting

    async with app.run_test(size=SIZE):
        await settle(app)
        app.update_settings(set_setting(app.settings, "CTX_SIZE", "2048"))
        before = app._env_seen
        app._check_env()  # the watcher's next tick sees the file as the app left it
        await settle(app)
        assert app._env_seen == before
        assert not any(title == "Settings reloaded" for title, _ in notes(app))


async def test_collections_come_back_once_the_first_screen_is_up(home: Path) -> None:
    """`llm-tui` starts with the garbage collector off (cli.main: its scans were 30-60 ms
    of the first frame); the app turns it back on when ready, with start-up's objects
    frozen, or memory would grow without bound."""
    import gc

    gc.disable()
    try:
        app = make_app(load_settings(home / ".env"), fake_services(FROZEN_CHECKS))
        async with app.run_test(size=SIZE):
            await settle(app)
            assert gc.isenabled()
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()


async def test_a_mode_is_resumed_once_each_time_it_shows(
    app: LlmTuiApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Textual resumes a mode's new screen twice when it first shows; the second resume
    (every widget restyled, each handler run again) is dropped, no other one."""
    from tui.screens.base import ModeScreen
    from tui.screens.dialogs import ConfirmScreen

    resumed: list[str] = []
    handler = ModeScreen.on_screen_resume

    def counted(screen: ModeScreen) -> None:
        resumed.append(screen.MODE)
        handler(screen)

    monkeypatch.setattr(ModeScreen, "on_screen_resume", counted)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        assert resumed == ["dashboard"]
        await go_to(app, pilot, "models")
        assert resumed == ["dashboard", "models"]
        app.push_screen(ConfirmScreen("Sure?", "A question", "Yes"))
        await settle(app)
        await pilot.press("escape")  # the dialog goes: the screen under it resumes
        await settle(app)
        assert not isinstance(app.screen, ConfirmScreen)
        assert resumed == ["dashboard", "models", "models"]
        await go_to(app, pilot, "dashboard")
        await go_to(app, pilot, "models")
        assert resumed == ["dashboard", "models", "models", "dashboard", "models"]
