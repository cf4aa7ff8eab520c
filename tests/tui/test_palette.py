"""The palette's entries made from what exists (models, services) and the keymap file."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette

from stack.settings import Settings, load_settings
from tests.support.gguf_factory import write_tiny_model
from tests.tui.conftest import FROZEN_CHECKS, write_env
from tests.tui.fakes import FakeEngine, FakeLogs, fake_services, running_stack
from tests.tui.helpers import SIZE, edge, go_to, notes, settle, until
from tui.__main__ import LlmTuiApp, make_app
from tui.commands import StackProvider
from tui.keymap import load_keymap
from tui.screens.logs import LogsScreen

pytestmark = [pytest.mark.tui, pytest.mark.anyio]


@pytest.fixture
def models(home: Path) -> Settings:
    write_tiny_model(home / "models" / "alpha.gguf", name="alpha", seed=1)
    write_tiny_model(home / "models" / "beta.gguf", name="beta", seed=2)
    write_env(home, CHAT_MODEL="alpha.gguf")
    return load_settings(home / ".env")


async def entries(app: LlmTuiApp) -> dict[str, object]:
    provider = StackProvider(app.screen)
    await provider.startup()
    return {hit.text: hit.command async for hit in provider.discover()}  # type: ignore[misc]


async def test_dynamic_entries_for_each_model_and_service(models: Settings) -> None:
    app = make_app(models, fake_services(FROZEN_CHECKS))
    async with app.run_test(size=SIZE):
        await settle(app)
        titles = list(await entries(app))
        assert "Serve beta.gguf as chat" in titles and "Serve beta.gguf as code" in titles
        assert "Serve alpha.gguf as code" in titles
        assert "Serve alpha.gguf as chat" not in titles  # it is the chat model already
        for role in ("inference", "api-gateway"):
            assert f"Restart {role}" in titles and f"Logs of {role}" in titles
        assert "Logs of all services" in titles


async def test_serving_a_model_from_the_palette_swaps_it(models: Settings) -> None:
    engine = FakeEngine(statuses=running_stack())
    app = make_app(models, fake_services(FROZEN_CHECKS, engine=engine))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("u")  # the dashboard's own operation leaves its outcome on its edge
        await settle(app)
        assert edge(app).startswith("✓ The stack was already up to date")
        run = (await entries(app))["Serve beta.gguf as chat"]
        await run()  # type: ignore[operator]
        await until(lambda: ("swap", "beta.gguf", "chat") in engine.calls, "the swap")
        await settle(app)
        assert app.current_mode == "models"
        assert app.settings.chat_model == "beta.gguf"
        await go_to(app, pilot, "dashboard")
        assert edge(app) == ""  # "already up to date" no longer says how the stack is


async def test_restart_and_logs_entries(models: Settings) -> None:
    engine = FakeEngine(statuses=running_stack())
    logs = FakeLogs(hold=False)
    app = make_app(models, fake_services(FROZEN_CHECKS, engine=engine, logs=logs))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        found = await entries(app)
        await found["Restart api-gateway"]()  # type: ignore[operator]
        await until(lambda: ("restart", "api-gateway") in engine.calls, "the restart")
        await settle(app)
        await found["Logs of all services"]()  # type: ignore[operator]
        await settle(app)
        screen = app.screen
        assert isinstance(screen, LogsScreen) and screen.role == "all"
        await go_to(app, pilot, "dashboard")


async def test_the_palette_finds_a_dynamic_entry_by_typing(models: Settings) -> None:
    app = make_app(models, fake_services(FROZEN_CHECKS))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("ctrl+p", *"logs of all")
        await until(lambda: isinstance(app.screen, CommandPalette), "the palette")
        palette = app.screen
        assert isinstance(palette, CommandPalette)

        def highlighted() -> str:
            options = palette.query_one("CommandList")
            index = options.highlighted  # type: ignore[attr-defined]
            if index is None:
                return ""
            return str(options.get_option_at_index(index).prompt)  # type: ignore[attr-defined]

        await until(lambda: "Logs of all services" in highlighted(), "the entry is found")
        await pilot.press("enter")
        await until(lambda: app.current_mode == "logs", "the Logs screen")
        await settle(app)
        assert isinstance(app.screen, LogsScreen) and app.screen.role == "all"
        await go_to(app, pilot, "dashboard")


async def test_a_keymap_file_remaps_by_id_and_says_what_it_cannot(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    (config / "llm-tui").mkdir(parents=True)
    (config / "llm-tui" / "keymap.toml").write_text(
        '# my keys\n"go.models" = "m"\n"logs.search" = "ctrl+f"\n"no.such" = "x"\n'
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    app = make_app(settings, fake_services(FROZEN_CHECKS))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        assert any("no binding has the id 'no.such'" in message for _, message in notes(app))
        await pilot.press("m")
        await settle(app)
        assert app.current_mode == "models"


def test_a_broken_keymap_file_is_one_line_and_remaps_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('"go.models" = \n')
    keymap, problems = load_keymap(path, ["go.models"])
    assert keymap == {} and len(problems) == 1 and "not valid TOML" in problems[0]
    assert load_keymap(tmp_path / "missing.toml", []) == ({}, [])
    path.write_text('"go.models" = 3\n"go.logs" = "l, ctrl+l"\n')
    keymap, problems = load_keymap(path, ["go.models", "go.logs"])
    assert keymap == {"go.logs": "l,ctrl+l"} and "must be a key" in problems[0]
