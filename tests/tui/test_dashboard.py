"""The Dashboard against a fake engine: status cards, u / d / R, events, GPU, visibility."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from textual.command import CommandList
from textual.widgets import Button, OptionList, Static

from stack.doctor import Check, Status
from stack.engine.connection import EngineUnavailable
from stack.engine.errors import EngineError
from stack.engine.events import StackEvent
from stack.settings import Settings, set_setting
from tests.tui.conftest import FROZEN_CHECKS
from tests.tui.fakes import (
    FakeEngine,
    frozen_gpu,
    missing,
    running,
    running_stack,
)
from tests.tui.fakes import fake_services as fakes
from tests.tui.helpers import DEADLINE_S, SIZE, edge, go_to, live_timers, notes, settle, text, until
from tui.__main__ import LlmTuiApp, make_app
from tui.screens.dashboard import DashboardScreen
from tui.screens.dialogs import ConfirmScreen, PickServiceScreen
from tui.widgets.checklist import Checklist, PassedRow
from tui.widgets.gpu_panel import GpuPanel
from tui.widgets.operation_panel import OperationPanel
from tui.widgets.service_card import ServiceCard

pytestmark = [pytest.mark.tui, pytest.mark.anyio]

NO_ENGINE = EngineUnavailable(
    "no Docker Engine answers at unix:///var/run/docker.sock",
    fix="start Docker (Docker Desktop with WSL integration on, or `sudo systemctl start "
    "docker`), or set DOCKER_HOST",
)
ALL_OK = [
    Check(check.name, Status.OK, "fine")
    for check in FROZEN_CHECKS
    if check.name not in ("docker", "gpu", "models")
]


def cards(app: LlmTuiApp) -> dict[str, ServiceCard]:
    return {card.role: card for card in app.screen.query(ServiceCard)}


def card_text(app: LlmTuiApp, role: str) -> str:
    return text(cards(app)[role])


def panel(app: LlmTuiApp) -> str:
    return text(app.screen.query_one(OperationPanel))


async def test_u_starts_the_stack_with_progress_then_success(
    app: LlmTuiApp, engine: FakeEngine
) -> None:
    engine.release = threading.Event()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        assert "not created" in card_text(app, "inference")
        assert "stopped (u starts it)" in str(app.screen.query_one("#stack-panel").border_title)

        await pilot.press("u")
        await until(lambda: "loading model" in panel(app), "progress shown")
        assert "Starting the stack…" in panel(app)
        assert app.stack_operation == "starting the stack"
        await pilot.press("u")  # a second start while one runs is refused, not queued
        await until(lambda: any(title == "Busy" for title, _ in notes(app)), "a Busy notice")

        engine.release.set()
        await settle(app)  # the operation, then the poll it asks for
        assert engine.calls == [("up",)]
        assert app.stack_operation is None
        assert any(t == "Stack started" and "2 started" in m for t, m in notes(app))
        # The notice says it: the panel gives its rows back, the stack panel's edge keeps it.
        assert not app.screen.query_one(OperationPanel).display
        assert edge(app).startswith(
            "✓ Stack up: 2 started, 0 unchanged  ("
        ) and "gateway" not in edge(app)
        assert "running · healthy" in card_text(app, "inference")
        assert cards(app)["inference"].has_class("-ok")
        assert "2 of 2 running" in str(app.screen.query_one("#stack-panel").border_title)


async def test_an_engine_error_is_a_notification_with_the_fix(
    app: LlmTuiApp, engine: FakeEngine
) -> None:
    engine.error = EngineError(
        "no model chosen (CHAT_MODEL is empty)", fix="pick one in the Models screen"
    )
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("u")
        await settle(app)
        assert app.is_running
        title, message = notes(app)[-1]
        assert title == "Could not start the stack"
        assert message == (
            "no model chosen (CHAT_MODEL is empty)\nFix: pick one in the Models screen"
        )
        assert "✗ no model chosen" in panel(app)
        assert app.screen.query_one(OperationPanel).display  # a failure stays
        assert app.stack_operation is None


async def test_no_engine_shows_the_fix_in_place_without_notifications(
    app: LlmTuiApp, engine: FakeEngine
) -> None:
    engine.status_error = NO_ENGINE
    async with app.run_test(size=SIZE):
        await settle(app)
        notice = app.screen.query_one("#stack-notice", Static)
        assert notice.display
        assert "no Docker Engine answers" in text(notice)
        assert "→ start Docker" in text(notice)
        assert not app.screen.query_one("#service-cards").display
        assert "Docker unavailable" in str(app.screen.query_one("#stack-panel").border_title)
        assert notes(app) == []  # a poll failure is a state, not an event

        engine.status_error = None  # the engine comes back: the next poll shows the cards
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        screen.stack_panel.poll_now()
        await settle(app)
        assert app.screen.query_one("#service-cards").display
        assert not notice.display


async def test_d_asks_first_and_then_stops(app: LlmTuiApp, engine: FakeEngine) -> None:
    engine.statuses = running_stack()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("d")
        await settle(app)
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert "llm-tui-inference, llm-tui-api-gateway" in text(
            dialog.query_one("#confirm-question", Static)
        )
        assert dialog.focused is dialog.query_one("#confirm-no", Button)  # Enter cancels
        await pilot.press("n")
        await settle(app)
        assert isinstance(app.screen, DashboardScreen)
        assert engine.calls == []

        await pilot.press("d")
        await settle(app)
        await pilot.press("y")
        await settle(app)
        assert engine.calls == [("down",)]
        assert "✓ Stack stopped: removed llm-tui-inference, llm-tui-api-gateway" in edge(app)
        assert "not created" in card_text(app, "api-gateway")


async def test_d_with_nothing_running_says_so(app: LlmTuiApp, engine: FakeEngine) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("d")
        await settle(app)
        assert isinstance(app.screen, DashboardScreen)
        assert ("Nothing to stop", "The stack is not running.") in notes(app)


async def test_cards_show_state_health_model_ports_and_death(
    app: LlmTuiApp, engine: FakeEngine
) -> None:
    engine.statuses = [
        running("inference", uptime_s=3723.0),
        replace(
            running("api-gateway"),
            state="exited",
            health="",
            exit_code=137,
            oom_killed=True,
            uptime_s=None,
        ),
    ]
    async with app.run_test(size=SIZE):
        await settle(app)
        inference = card_text(app, "inference")
        assert "● running · healthy" in inference
        assert "Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf" in inference
        assert "GPU · port 8001" in inference
        assert "up 1h 02m" in inference
        gateway = cards(app)["api-gateway"]
        assert gateway.has_class("-bad")
        assert "✗ exited" in text(gateway)
        assert "exit code 137 · OOM-killed" in text(gateway)
        assert "1 of 2 running" in str(app.screen.query_one("#stack-panel").border_title)

        engine.statuses = [running("inference", health="starting"), missing("api-gateway")]
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        screen.stack_panel.poll_now()
        await settle(app)
        assert "◐ starting · loading" in card_text(app, "inference")
        assert cards(app)["inference"].has_class("-busy")
        assert cards(app)["api-gateway"].has_class("-off")


async def test_a_card_names_the_settings_its_container_lacks(
    app: LlmTuiApp, engine: FakeEngine
) -> None:
    engine.statuses = [
        running("inference", drift=("CTX_SIZE", "PARALLEL")),
        running("api-gateway"),
    ]
    async with app.run_test(size=SIZE):
        await settle(app)
        assert "out of date: CTX_SIZE, PARALLEL · u applies" in card_text(app, "inference")
        assert "out of date" not in card_text(app, "api-gateway")


async def test_a_code_model_adds_a_card(settings: Settings, engine: FakeEngine) -> None:
    engine.statuses = [running("inference"), running("inference-code"), running("api-gateway")]
    app = make_app(settings, fakes(FROZEN_CHECKS, engine=engine))
    async with app.run_test(size=SIZE):
        await settle(app)
        assert list(cards(app)) == ["inference", "inference-code", "api-gateway"]
        assert cards(app)["inference-code"].border_subtitle == "local-code"


async def test_capital_r_restarts_the_picked_service(app: LlmTuiApp, engine: FakeEngine) -> None:
    engine.statuses = running_stack()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        cards(app)["api-gateway"].focus()
        await settle(app)
        await pilot.press("R")
        await settle(app)
        picker = app.screen
        assert isinstance(picker, PickServiceScreen)
        options = picker.query_one(OptionList)
        assert options.highlighted == 1  # the selected card's service comes first
        await pilot.press("escape")
        await settle(app)
        assert engine.calls == []

        await pilot.press("R")
        await settle(app)
        await pilot.press("up", "enter")
        await settle(app)
        assert engine.calls == [("restart", "inference")]
        assert ("Restarted", "inference restarted") in notes(app)


async def test_left_and_right_move_between_cards(app: LlmTuiApp, engine: FakeEngine) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        assert app.focused is cards(app)["inference"]
        await pilot.press("right")
        await settle(app)
        assert app.focused is cards(app)["api-gateway"]
        await pilot.press("right")
        await settle(app)
        assert app.focused is cards(app)["inference"]


async def test_a_dying_service_is_announced_and_polled(app: LlmTuiApp, engine: FakeEngine) -> None:
    engine.statuses = running_stack()
    engine.events_list = [
        StackEvent("die", "llm-tui-inference", "inference", exit_code=139),
        StackEvent("oom", "llm-tui-inference", "inference"),
        StackEvent("die", "llm-tui-api-gateway", "api-gateway", exit_code=143),
    ]
    async with app.run_test(size=SIZE):
        await settle(app)  # the first poll opens the events; each event asks for a poll
        titles = [title for title, _ in notes(app)]
        assert titles == ["Service stopped", "Out of memory"]  # exit 143 is a normal stop
        assert "exit code 139 (crashed with SIGSEGV)" in notes(app)[0][1]


async def test_a_death_the_event_stream_missed_is_announced_from_the_poll_once(
    app: LlmTuiApp, engine: FakeEngine
) -> None:
    # The stream can miss an event (it was reopened meanwhile): the poll that sees the
    # container gone from running to exited says it, once, however often it polls.
    engine.statuses = running_stack()
    async with app.run_test(size=SIZE):
        await settle(app)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        inference = engine.statuses[0]
        engine.statuses = [
            replace(inference, state="exited", health="", exit_code=137),
            *engine.statuses[1:],
        ]
        for _ in range(2):
            screen.stack_panel.poll_now()
            await settle(app)
        stopped = [m for t, m in notes(app) if t == "Service stopped"]
        assert stopped == [
            f"{inference.name} stopped with exit code 137 (killed by SIGKILL: out of memory,"
            " or `docker kill`). Its logs say why (l on its card)."
        ]


async def test_the_event_stream_closes_when_the_dashboard_hides(
    app: LlmTuiApp, engine: FakeEngine
) -> None:
    engine.statuses = running_stack()
    engine.hold_events = True
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: bool(engine.streams), "the event stream opened")
        stream = engine.streams[0]
        assert not stream.closed.is_set()
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        stack_panel = dashboard.stack_panel
        assert stack_panel.active
        await go_to(app, pilot, "settings")
        await until(stream.closed.is_set, "the event stream closed")
        # Nothing is left to poll while hidden: no timer of the panel or the GPU line runs.
        assert not stack_panel.active
        assert live_timers(stack_panel) == []
        assert not app.gpu_feed.running  # the GPU sampler stopped too
        await until(app.gpu_feed.parked.is_set, "the GPU sampler's thread waits")
        polls = engine.status_calls

        await pilot.press("1")  # no settle: the new stream's worker runs until closed
        await until(lambda: len(engine.streams) == 2, "a new stream on return")
        assert engine.status_calls > polls
        await go_to(app, pilot, "settings")  # closes it, so the test can end


async def test_gpu_panel_shows_the_sample_or_the_reason(settings: Settings, app: LlmTuiApp) -> None:
    async with app.run_test(size=SIZE):
        await settle(app)
        panel = app.screen.query_one(GpuPanel)
        assert panel.has_class("-unavailable")
        assert "no NVIDIA driver found" in text(panel.query_one("#gpu-lines", Static))

    with_gpu = make_app(settings, fakes(FROZEN_CHECKS, gpus=frozen_gpu))
    async with with_gpu.run_test(size=SIZE):
        await settle(with_gpu)
        panel = with_gpu.screen.query_one(GpuPanel)
        shown = text(panel.query_one("#gpu-lines", Static))
        assert "GPU 0 RTX 4050 Laptop GPU" in str(panel.border_title).replace("[bold]", "").replace(
            "[/bold]", ""
        )
        assert " 63%" in shown and "4.3/6.0 GiB" in shown
        assert "61°C" in shown and "28/80 W" in shown


async def test_checklist_is_compact_once_nothing_fails(settings: Settings) -> None:
    app = make_app(settings, fakes(ALL_OK))
    async with app.run_test(size=SIZE):
        await settle(app)
        checklist = app.screen.query_one(Checklist)
        assert checklist.has_class("-compact")
        assert len(checklist.query(PassedRow)) == 1
        container = app.screen.query_one("#dashboard")
        assert container.children[-1] is checklist  # problems solved: it moves down


async def test_palette_starts_the_stack_from_another_screen(
    app: LlmTuiApp, engine: FakeEngine
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "connect")
        await pilot.press("ctrl+p")
        await pilot.press(*"start or update")
        options = app.screen.query_one(CommandList)

        def found() -> bool:
            index = options.highlighted
            return index is not None and "Start or update the stack" in str(
                options.get_option_at_index(index).prompt
            )

        # The palette searches in the background: Enter picks what is highlighted then.
        await until(found, "the palette highlights the command")
        await settle(app)
        assert found()
        await pilot.press("enter")
        await settle(app)  # the switch, then the operation
        assert app.current_mode == "dashboard"
        assert engine.calls == [("up",)]


EVIL_ROLE = "infer[/]ence[@click=app.quit]x"  # a role label on a container


async def test_markup_in_a_role_label_shows_as_written(app: LlmTuiApp, engine: FakeEngine) -> None:
    engine.statuses = [running(EVIL_ROLE), running("api-gateway")]
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        card = cards(app)[EVIL_ROLE]
        assert card._border_title is not None and card._border_title.plain == EVIL_ROLE
        card.focus()
        await settle(app)
        await pilot.press("R")  # the picker lists the roles
        await settle(app)
        picker = app.screen
        assert isinstance(picker, PickServiceScreen)
        options = picker.query_one(OptionList)
        assert str(options.get_option_at_index(0).prompt) == EVIL_ROLE
        assert options.highlighted == 0
        await pilot.press("escape")
        await settle(app)
        await pilot.press("l")  # its logs: no tab of that name, and no crash looking
        await settle(app, allow=("logs-follow",))
        assert app.current_mode == "logs" and app.is_running


async def test_an_engine_replaced_mid_operation_is_closed_when_it_ends(settings: Settings) -> None:
    built: list[FakeEngine] = []

    def make_engine(received: Settings) -> FakeEngine:
        built.append(FakeEngine(release=threading.Event()).factory(received))
        return built[-1]

    app = make_app(settings, replace(fakes(FROZEN_CHECKS), make_engine=make_engine))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        first = app.engine
        await pilot.press("u")
        await until(lambda: bool(first.calls), "the start runs (and waits)")
        app.update_settings(set_setting(app.settings, "CTX_SIZE", "4096"))
        second = app.engine
        assert second is not first
        await settle(app, allow=("stack-op",))
        assert not first.closed.is_set()  # the running start still uses its client
        assert first.release is not None
        first.release.set()
        await until(first.closed.is_set, "closed once the start has ended")
        await settle(app)
        assert not second.closed.is_set()


async def test_quitting_stops_a_model_load_at_once(app: LlmTuiApp, engine: FakeEngine) -> None:
    engine.release = threading.Event()  # never set: the load would block for a long time
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("u")
        await until(lambda: "loading model" in panel(app), "the model loads (and waits)")
        await pilot.press("q")
    assert not app.is_running
    assert engine.returned.wait(timeout=DEADLINE_S)  # the worker's blocking call ended …
    assert engine.cancelled == ["up"]  # … because quitting cancelled it, not by release
