"""Tune from the Models screen and the palette; the Connect screen's windows and its test."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from textual.message import Message
from textual.widgets import Button, OptionList, Static, TabbedContent

from stack.gpu import GpuSample
from stack.settings import Settings, load_settings
from tests.support.gguf_factory import write_tiny_model
from tests.support.net import free_port
from tests.tui.conftest import FROZEN_CHECKS, write_env
from tests.tui.fakes import FakeEngine, fake_services, running_stack
from tests.tui.helpers import DEADLINE_S, SIZE, go_to, notes, settle, text, until
from tui.__main__ import LlmTuiApp, make_app
from tui.screens.models import ModelTable
from tui.screens.tune import TuneScreen

pytestmark = [pytest.mark.tui, pytest.mark.anyio]

GIB = 1 << 30
EIGHT_GIB_FREE = GpuSample(0, "NVIDIA GeForce RTX 4060", 8 * GIB, 0, None, None, None, None)


@pytest.fixture
def tuned_app(home: Path, settings: Settings, engine: FakeEngine) -> LlmTuiApp:
    # A model with a 16k training context; NVML (the seam) says 8 GiB are free.
    write_tiny_model(home / "models" / "alpha.gguf", name="alpha", context_length=16384)
    services = fake_services(FROZEN_CHECKS, engine=engine, gpus=lambda: [EIGHT_GIB_FREE])
    return make_app(settings, services)


def proposal(app: LlmTuiApp) -> str:
    return text(app.screen.query_one("#tune-proposal", Static))


async def open_tune(app: LlmTuiApp, pilot: object) -> TuneScreen:
    await go_to(app, pilot, "models")  # type: ignore[arg-type]
    assert app.screen.query_one(ModelTable).row_count == 1
    await pilot.press("t")  # type: ignore[attr-defined]
    await settle(app)
    screen = app.screen
    assert isinstance(screen, TuneScreen)
    return screen


async def test_t_proposes_for_the_use_and_y_writes_it(
    tuned_app: LlmTuiApp, home: Path, engine: FakeEngine
) -> None:
    app = tuned_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        dialog = await open_tune(app, pilot)
        assert "Free VRAM: 8.00 GiB free on RTX 4060" in text(
            dialog.query_one("#tune-free", Static)
        )
        # agent first: one slot, the model's whole 16k.
        assert "PARALLEL       4 → 1" in proposal(app)
        assert "CTX_SIZE       8192 → 16384" in proposal(app)
        assert "the model's whole training context" in proposal(app)
        await pilot.press("down", "down")  # shared, then chat
        await settle(app)
        assert dialog.query_one(OptionList).highlighted == 2
        assert "PARALLEL       4 (unchanged)" in proposal(app)
        assert "CTX_SIZE       8192 → 32768" in proposal(app)  # 4 slots of 8k
        await pilot.press("y")
        await settle(app)
        assert not isinstance(app.screen, TuneScreen)
        saved = load_settings(home / ".env")
        assert (saved.parallel, saved.ctx_size, saved.gpu_layers) == (4, 32768, "all")
        assert app.settings.ctx_size == 32768
        assert notes(app)[-1] == (
            "Tune",
            "Tuned: .env has the new values; they apply when the stack starts.",
        )
        assert engine.calls == []  # nothing runs: nothing recreated


async def test_tuning_a_running_stack_recreates_inference_in_a_worker(
    tuned_app: LlmTuiApp, home: Path, engine: FakeEngine
) -> None:
    engine.statuses = running_stack()
    app = tuned_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        dialog = await open_tune(app, pilot)
        # The driver lists no processes here, so the running llama-server's share is unknown.
        assert "stop the stack first" in text(dialog.query_one("#tune-free", Static))
        await pilot.press("y")
        await settle(app)
        assert engine.calls == [("up",)]
        assert engine.given_settings is not None and engine.given_settings.parallel == 1
        assert notes(app)[-1][1].startswith("Tuned and applied: inference was recreated")
        assert app.stack_operation is None


async def test_the_slot_is_given_back_when_the_dialog_goes_before_its_worker_ends(
    tuned_app: LlmTuiApp, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The result closes the dialog; a closed dialog never hears its worker end. Held here
    until the dialog has gone, the worker ends last, as a busy machine can make it do."""
    gone = threading.Event()
    post = TuneScreen.post_message

    def posting(self: TuneScreen, message: Message) -> bool:
        posted = post(self, message)
        if isinstance(message, TuneScreen.Applied):
            gone.wait(DEADLINE_S)  # on the worker's thread
        return posted

    monkeypatch.setattr(TuneScreen, "post_message", posting)
    engine.statuses = running_stack()
    app = tuned_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await open_tune(app, pilot)
        await pilot.press("y")
        try:
            await until(lambda: not isinstance(app.screen, TuneScreen), "the dialog closed")
            assert app.stack_operation is None  # given back with the result
        finally:
            gone.set()
        await settle(app)
        assert app.stack_operation is None and engine.calls == [("up",)]


async def test_nothing_to_change_leaves_apply_off(home: Path, engine: FakeEngine) -> None:
    write_tiny_model(home / "models" / "alpha.gguf", name="alpha", context_length=16384)
    write_env(home, CHAT_MODEL="alpha.gguf", PARALLEL="1", CTX_SIZE="16384", GPU_LAYERS="all")
    services = fake_services(FROZEN_CHECKS, engine=engine, gpus=lambda: [EIGHT_GIB_FREE])
    app = make_app(load_settings(home / ".env"), services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        dialog = await open_tune(app, pilot)
        assert "Already tuned for this use: nothing to change." in proposal(app)
        assert dialog.query_one("#tune-apply", Button).disabled
        await pilot.press("escape")
        await settle(app)
        assert not isinstance(app.screen, TuneScreen)


async def test_the_palette_tunes_from_another_screen(tuned_app: LlmTuiApp) -> None:
    app = tuned_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        assert app.current_mode == "dashboard"
        await app.run_action("app.in_mode('models', 'tune_model')")
        await settle(app)
        await until(lambda: isinstance(app.screen, TuneScreen), "the Tune dialog opened")
        await settle(app)
        assert "CTX_SIZE       8192 → 16384" in proposal(app)
        await pilot.press("n")
        await settle(app)


# -- Connect ----------------------------------------------------------------------------------


@pytest.fixture
def connect_app(home: Path, engine: FakeEngine) -> LlmTuiApp:
    port = free_port()  # nothing listens there
    write_env(home, API_GATEWAY_PORT=str(port))
    return make_app(load_settings(home / ".env"), fake_services(FROZEN_CHECKS, engine=engine))


async def test_connect_warns_where_the_window_is_too_small(connect_app: LlmTuiApp) -> None:
    app = connect_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "connect")
        summary = text(app.screen.query_one("#connect-summary", Static))
        assert "2,048 tokens a request" in summary and "each of 4 slots" in summary
        warning = app.screen.query_one("#warn-claude-code", Static)
        assert warning.display
        assert "Claude Code needs 32,768" in text(warning)
        assert not app.screen.query_one("#warn-curl", Static).display
        claude = text(app.screen.query_one("#snippet-claude-code", Static))
        assert "export CLAUDE_CODE_MAX_CONTEXT_TOKENS=2048" in claude
        # A tuned window clears the warning as soon as .env says so.
        app.update_settings(replace(app.settings, ctx_size=32768, parallel=1))
        await settle(app)
        assert not app.screen.query_one("#warn-claude-code", Static).display


async def test_t_tests_the_connection_in_a_worker(connect_app: LlmTuiApp) -> None:
    app = connect_app
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "connect")
        assert "t tests the connection" in text(app.screen.query_one("#connect-check", Static))
        await pilot.press("t")
        await settle(app)
        result = text(app.screen.query_one("#connect-check", Static))
        assert result.count("✗") == 3, result
        assert "GET /v1/models" in result and "nothing answers at http://localhost:" in result
        assert "fix: start the stack (`llm-tui up`)" in result
        assert app.screen.query_one(TabbedContent).active == "tab-claude-code"
