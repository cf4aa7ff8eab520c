"""The Logs screen with a fake follower: lines in, stream closed on hide and on switch."""

from __future__ import annotations

import pytest
from textual.widgets import Input, Log, Static, Tabs

from stack.engine.connection import EngineUnavailable
from stack.engine.logs import LogLine
from tests.tui.fakes import FakeEngine, FakeLogs, running_stack
from tests.tui.helpers import SIZE, go_to, settle, text, until
from tui.__main__ import LlmTuiApp
from tui.screens.logs import MAX_LINES, LogsScreen, clock
from tui.widgets.service_card import ServiceCard

pytestmark = [pytest.mark.tui, pytest.mark.anyio]

INFERENCE_LINES = [
    [
        LogLine("srv load_model: loading model '/models/alpha.gguf'", "2025-01-01T10:00:00.1Z"),
        LogLine("srv llama_server: model loaded", "2025-01-01T10:00:01.2Z"),
    ],
    [LogLine("srv llama_server: listening on http://0.0.0.0:8080", "2025-01-01T10:00:01.3Z")],
]
GATEWAY_LINES = [[LogLine("LiteLLM: Proxy initialized with Config, Set models:", "")]]


async def calm(app: LlmTuiApp) -> None:
    """Settled, but for the follow worker: a held stream keeps it running."""
    await settle(app, allow=("logs-follow",))


def log_lines(app: LlmTuiApp) -> list[str]:
    return list(app.screen.query_one(Log).lines)


def status(app: LlmTuiApp) -> str:
    return text(app.screen.query_one("#logs-status", Static))


@pytest.fixture
def running_engine(engine: FakeEngine, logs: FakeLogs) -> FakeEngine:
    engine.statuses = running_stack()
    logs.batches = {"inference": INFERENCE_LINES, "api-gateway": GATEWAY_LINES}
    return engine


def test_clock_is_local_time() -> None:
    assert clock("2025-01-01T10:00:05.123Z", 0) == "10:00:05"
    assert clock("2025-01-01T23:30:00Z", 3600) == "00:30:00"
    assert clock("garbage", 0) == ""


async def test_lines_stream_in_and_the_stream_closes_when_hidden(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("3")
        await until(lambda: len(log_lines(app)) == 3, "three lines shown")
        await calm(app)
        assert logs.opened == ["inference"]
        shown = log_lines(app)
        assert shown[1].endswith("  srv llama_server: model loaded")
        assert "inference  ·  following  ·  3 lines" in status(app)

        await go_to(app, pilot, "dashboard")
        await until(logs.streams[0].closed.is_set, "the stream closed")


async def test_brackets_switch_service_and_close_the_old_stream(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("3")
        await until(lambda: len(log_lines(app)) == 3, "inference lines")
        await pilot.press("right_square_bracket")
        await until(lambda: log_lines(app) == [GATEWAY_LINES[0][0].text], "gateway lines")
        await calm(app)
        assert logs.opened == ["inference", "api-gateway"]
        await until(logs.streams[0].closed.is_set, "the inference stream closed")
        screen = app.screen
        assert isinstance(screen, LogsScreen) and screen.role == "api-gateway"
        assert screen.query_one(Tabs).active == "logs-tab-api-gateway"

        await pilot.press("left_square_bracket")
        await until(lambda: len(log_lines(app)) == 3, "inference again")
        await go_to(app, pilot, "dashboard")


async def test_filter_follow_and_clear(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("3")
        await until(lambda: len(log_lines(app)) == 3, "three lines")

        await pilot.press("slash")
        await calm(app)
        assert isinstance(app.focused, Input)
        await pilot.press(*"LOADED")  # case does not matter
        await calm(app)
        assert len(log_lines(app)) == 1 and log_lines(app)[0].endswith("model loaded")
        assert "filter “loaded”: 1 shown" in status(app)
        await pilot.press("enter")  # keeps the filter, back to the log
        await calm(app)
        assert isinstance(app.focused, Log)
        assert len(log_lines(app)) == 1
        await pilot.press("escape")  # clears it
        await calm(app)
        assert len(log_lines(app)) == 3

        log = app.screen.query_one(Log)
        await pilot.press("f")
        await calm(app)
        assert not log.auto_scroll
        assert "paused (f follows)" in status(app)
        await pilot.press("f")
        await calm(app)
        assert log.auto_scroll

        await pilot.press("c")
        await calm(app)
        assert log_lines(app) == []
        assert "0 lines" in status(app)
        await go_to(app, pilot, "dashboard")


async def test_a_stopped_stack_says_how_to_start_it(app: LlmTuiApp, logs: FakeLogs) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "logs")
        empty = app.screen.query_one("#logs-empty", Static)
        assert empty.display and not app.screen.query_one(Log).display
        assert "inference is not running" in text(empty)
        assert "Start the stack with u on the Dashboard" in text(empty)
        assert logs.opened == []


async def test_no_engine_shows_the_fix(app: LlmTuiApp, engine: FakeEngine) -> None:
    engine.status_error = EngineUnavailable(
        "no Docker Engine answers at the default socket", fix="start Docker, or set DOCKER_HOST"
    )
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "logs")
        shown = text(app.screen.query_one("#logs-empty", Static))
        assert "no Docker Engine answers" in shown
        assert "start Docker, or set DOCKER_HOST" in shown
        assert not app._notifications


async def test_a_stopping_container_ends_the_stream_with_a_note(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    logs.hold = False  # the stream ends after its lines, as when the container stops
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "logs")
        await until(lambda: len(log_lines(app)) == 4, "lines and the note")
        await settle(app)
        assert "inference stopped" in log_lines(app)[-1]
        assert "stopped" in status(app)


async def test_l_on_a_dashboard_card_opens_its_logs(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        gateway = next(c for c in app.screen.query(ServiceCard) if c.role == "api-gateway")
        gateway.focus()
        await settle(app)
        await pilot.press("l")
        await until(lambda: "api-gateway" in logs.opened, "the gateway's logs open")
        await calm(app)
        assert app.current_mode == "logs"
        screen = app.screen
        assert isinstance(screen, LogsScreen) and screen.role == "api-gateway"
        await go_to(app, pilot, "dashboard")


async def test_a_flood_faster_than_the_screen_is_bounded_and_said(
    app: LlmTuiApp, running_engine: FakeEngine, logs: FakeLogs
) -> None:
    flood = [LogLine(f"token {n}", "") for n in range(MAX_LINES + 500)]
    logs.batches = {"inference": [flood]}  # more than the pane holds, before it can draw
    logs.hold = False  # then the stream ends: nothing is left running
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "logs")
        await until(lambda: "lines dropped" in status(app), "the drop is said")
        await settle(app)
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        assert screen.dropped == 500
        assert "500 lines dropped" in status(app)
        shown = log_lines(app)
        assert len(shown) == MAX_LINES
        assert shown[0] == "token 501"  # the oldest went: 500 in the mailbox, the note in the pane
        assert shown[-1].startswith("── inference stopped")
