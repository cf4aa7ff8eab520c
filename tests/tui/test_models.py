"""The Models screen on the real library scan: columns, fit, and serving (swap or set)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from stack.settings import Settings, load_settings
from tests.support.gguf_factory import write_tiny_model, write_truncated
from tests.tui.conftest import FROZEN_CHECKS
from tests.tui.fakes import FakeEngine, fake_services, frozen_gpu, running_stack
from tests.tui.helpers import DEADLINE_S, SIZE, go_to, notes, settle, text, until
from tui.__main__ import LlmTuiApp, make_app
from tui.screens.models import ModelTable

pytestmark = [pytest.mark.tui, pytest.mark.anyio]


@pytest.fixture
def library(home: Path) -> Path:
    models = home / "models"
    write_tiny_model(models / "alpha.gguf", name="alpha", seed=1)
    write_tiny_model(models / "beta.gguf", name="beta", seed=2)
    write_truncated(models / "broken.gguf", name="broken")
    return models


def row(app: LlmTuiApp, key: str) -> list[str]:
    return [str(cell).strip() for cell in app.screen.query_one(ModelTable).get_row(key)]


async def pick(app: LlmTuiApp, pilot: Pilot[int], key: str, press: str) -> None:
    table = app.screen.query_one(ModelTable)
    assert app.focused is table  # set when the scan's rows land: settled before this
    table.move_cursor(row=table.get_row_index(key))
    await pilot.press(press)
    await settle(app)


async def test_enter_swaps_the_running_stack(
    library: Path, home: Path, app: LlmTuiApp, engine: FakeEngine
) -> None:
    engine.statuses = running_stack()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "models")
        await pick(app, pilot, "beta.gguf", "enter")
        assert engine.calls == [("swap", "beta.gguf", "chat")]
        assert app.settings.chat_model == "beta.gguf"
        assert load_settings(home / ".env").chat_model == "beta.gguf"
        title, message = notes(app)[-1]
        assert title == "Model swapped"
        assert "Now serving beta.gguf as local-chat" in message
        assert row(app, "beta.gguf")[0] == "● chat"
        assert app.stack_operation is None


async def test_c_sets_the_code_model_while_the_stack_is_stopped(
    library: Path, home: Path, app: LlmTuiApp, engine: FakeEngine
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "models")
        await pick(app, pilot, "alpha.gguf", "c")
        assert engine.calls == []
        assert load_settings(home / ".env").code_model == "alpha.gguf"
        assert notes(app)[-1][0] == "Code model set"
        assert row(app, "alpha.gguf")[0] == "● code"


async def test_a_broken_file_is_dimmed_with_its_reason_and_not_served(
    library: Path, app: LlmTuiApp, engine: FakeEngine
) -> None:
    engine.statuses = running_stack()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "models")
        cells = row(app, "broken.gguf")
        assert cells[2] == "—" and cells[-1] == "✗ broken"
        await pick(app, pilot, "broken.gguf", "enter")
        assert engine.calls == []
        assert notes(app)[-1][0] == "Broken model"
        detail = text(app.screen.query_one("#models-detail", Static))
        assert detail.startswith("✗ cannot be served: ")


async def test_a_failed_swap_is_reported_with_its_fix(
    library: Path, app: LlmTuiApp, engine: FakeEngine
) -> None:
    from stack.engine.errors import EngineError

    engine.statuses = running_stack()
    engine.error = EngineError(
        "could not serve beta.gguf: llm-tui-inference stopped while starting\n"
        "alpha.gguf is served again.",
        fix="a smaller model may help",
    )
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "models")
        await pick(app, pilot, "beta.gguf", "enter")
        title, message = notes(app)[-1]
        assert title == "Could not serve the model"
        assert "Fix: a smaller model may help" in message
        assert app.stack_operation is None


async def test_fit_uses_the_free_vram_of_the_gpu(library: Path, settings: Settings) -> None:
    app = make_app(settings, fake_services(FROZEN_CHECKS, gpus=frozen_gpu))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "models")
        assert row(app, "alpha.gguf")[-1] == "✓ fits"
        where = text(app.screen.query_one("#models-where", Static))
        assert "1.70 GiB free on RTX 4050 Laptop GPU" in where


async def test_quitting_stops_a_swap_at_once(
    library: Path, app: LlmTuiApp, engine: FakeEngine
) -> None:
    engine.statuses = running_stack()
    engine.release = threading.Event()  # never set: the new model would load for long
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "models")
        table = app.screen.query_one(ModelTable)
        table.move_cursor(row=table.get_row_index("beta.gguf"))
        await settle(app)
        await pilot.press("enter")
        await until(lambda: bool(engine.calls), "the swap runs (and waits)")
        await pilot.press("q")
    assert not app.is_running
    assert engine.returned.wait(timeout=DEADLINE_S)
    assert engine.cancelled == ["swap"]
