"""The first-run guide in Pilot: the fake Hub (real client, real download), fake engine and chat.

From an empty stack home the guide opens by itself; four keys (Enter, 1, Enter, Enter) take
it from the checks to a streamed first answer, the download aside.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import OptionList

from stack.doctor import Check, Status
from stack.settings import Settings, load_settings
from tests.support.fakehub import FakeHub
from tests.support.gguf_factory import write_tiny_model
from tests.tui.conftest import write_env
from tests.tui.fakes import FakeChat, FakeEngine, fake_services
from tests.tui.helpers import SIZE, settle, until
from tui.__main__ import LlmTuiApp, make_app
from tui.app import wants_guide
from tui.screens.guide import STEPS, GuideScreen

pytestmark = pytest.mark.anyio

CATALOG = """
[[model]]
repo = "acme/Tiny-Coder-GGUF"
use = "code"
params = 0.1
quants = ["Q8_0"]
note = "a tiny coder"

[[model]]
repo = "acme/Tiny-Chat-GGUF"
use = "chat"
params = 0.1
quants = ["F16"]
note = "a tiny chat model"
"""

CHECKS = [
    Check("settings", Status.OK, "./.env is valid"),
    Check("docker", Status.OK, "Docker Engine 27.3.1 (API 1.47)"),
    Check("gpu", Status.WARN, "no NVIDIA driver found", "models can still run on the CPU"),
    Check("models", Status.WARN, "no GGUF files in ./models", "download one"),
]


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    coder = write_tiny_model(tmp_path / "src" / "coder.gguf", name="coder", file_type=7)
    chat = write_tiny_model(tmp_path / "src" / "chat.gguf", name="chat", seed=2)
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    monkeypatch.setenv("LLM_TUI_CATALOG", str(catalog))
    with FakeHub() as hub:
        hub.add_repo("acme/Tiny-Coder-GGUF", {"tiny-coder-Q8_0.gguf": coder.read_bytes()})
        hub.add_repo("acme/Tiny-Chat-GGUF", {"tiny-chat-F16.gguf": chat.read_bytes()})
        yield hub


@pytest.fixture
def settings(home: Path, fake_hub: FakeHub) -> Settings:
    write_env(home, HF_ENDPOINT=fake_hub.url, GPU="none")
    return load_settings(home / ".env", create=True)


def guide_app(settings: Settings, engine: FakeEngine, chat: FakeChat) -> LlmTuiApp:
    services = fake_services(CHECKS, engine=engine, chat=chat, first_run_guide=True)
    return make_app(settings, services)


def body(app: LlmTuiApp) -> str:
    return str(app.screen.query_one("#guide-body").visual)


def checks_text(app: LlmTuiApp) -> str:
    """What the guide's checklist shows, row by row (the dashboard's rows)."""
    return "\n".join(str(s.visual) for s in app.screen.query("#guide-checks Static"))


async def test_from_an_empty_home_to_a_first_answer_in_four_keys(
    settings: Settings, home: Path
) -> None:
    engine, chat = FakeEngine(), FakeChat(pieces=("Hello", " there", "!"))
    app = guide_app(settings, engine, chat)
    keys = 0
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: isinstance(app.screen, GuideScreen), "the guide opened by itself")
        guide = app.screen
        assert isinstance(guide, GuideScreen)
        await until(lambda: guide.query_one("#guide-choices").display, "the checks shown")
        assert "no NVIDIA driver found" in checks_text(app)
        go_on = guide.query_one("#guide-choices", OptionList).get_option_at_index(0)
        assert "a ! only warns" in str(go_on.prompt)  # the hint may be below an 80x24 screen
        await pilot.press("enter")  # the checks: go on
        keys += 1
        await settle(app)
        assert guide.step == 1
        await pilot.press("1")  # an IDE agent
        keys += 1
        await until(lambda: bool(guide.found), "recommendations")
        await settle(app)
        assert guide.found[0].label == "acme/Tiny-Coder-GGUF Q8_0"  # code first for agents
        await pilot.press("enter")  # download the recommended one
        keys += 1
        await until(lambda: guide.tuning is not None, "downloaded and tuned")
        await settle(app)
        assert (home / "models" / "tiny-coder-Q8_0.gguf").is_file()
        assert "PARALLEL" in body(app) and "CTX_SIZE" in body(app)
        await pilot.press("enter")  # apply and start
        keys += 1
        await until(lambda: guide.first_token_s is not None, "the first answer")
        await settle(app)
        assert "local-chat: Hello there!" in body(app)
        assert ("up",) in engine.calls
        assert keys <= 6
        written = load_settings(home / ".env")
        assert written.chat_model == "tiny-coder-Q8_0.gguf"
        assert written.parallel == 1  # tuned for an agent: one slot
        assert app.settings.chat_model == "tiny-coder-Q8_0.gguf"
        await pilot.press("enter")  # Connect
        await settle(app)
        assert app.current_mode == "connect" and not isinstance(app.screen, GuideScreen)


async def test_a_blocking_check_stops_the_guide_until_it_is_fixed(settings: Settings) -> None:
    checks = [Check("docker", Status.FAIL, "no Docker Engine answers", "start Docker")]
    services = fake_services(checks, first_run_guide=True)
    app = make_app(settings, services)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: isinstance(app.screen, GuideScreen), "the guide")
        await settle(app)
        assert "→ start Docker" in checks_text(app)
        assert app.screen.query_one("#guide-checks").region.width > 0  # it shows
        assert not app.screen.query_one("#guide-choices").display
        await pilot.press("enter")
        await settle(app)
        assert isinstance(app.screen, GuideScreen) and app.screen.step == 0
        await pilot.press("escape")
        await settle(app)
        assert app.current_mode == "dashboard" and not isinstance(app.screen, GuideScreen)


async def test_the_steps_fit_one_row_at_80_columns(settings: Settings) -> None:
    """Each step with its mark on one row at 80x24: a step's name is never cut from its
    mark by the wrap."""
    app = make_app(settings, fake_services(CHECKS, first_run_guide=True))
    async with app.run_test(size=(80, 24)):
        await until(lambda: isinstance(app.screen, GuideScreen), "the guide")
        await settle(app)
        screen = app.screen
        assert isinstance(screen, GuideScreen)
        steps = screen.query_one("#guide-steps")
        for step in range(len(STEPS)):
            screen.show_step(step)
            await settle(app)
            assert steps.size.height == 1, f"step {step + 1} wraps"
            assert f"Step {step + 1} of {len(STEPS)}" in str(steps.visual)


def test_the_guide_is_for_a_first_run_only(home: Path) -> None:
    settings = load_settings(home / ".env")
    assert wants_guide(settings)
    write_tiny_model(home / "models" / "mine.gguf")
    assert not wants_guide(load_settings(home / ".env"))  # a model to pick: Models instead
