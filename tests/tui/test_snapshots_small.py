"""Pictures of every screen's main states at 80x24 (the smallest terminal we support), and
of the GPU screen and the operating views (search, all services, the settings diff).

Regenerate after an intended change with `pytest tests/tui/test_snapshots_small.py
--snapshot-update`, and look at the SVGs before accepting them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Log

from stack.engine.logs import LogLine
from stack.gpu import GpuProcess, GpuReading, GpuSample, GpuSampler, ServiceTarget
from tests.support.fakehub import FakeHub
from tests.support.gguf_factory import write_tiny_model
from tests.tui.conftest import FROZEN_CHECKS
from tests.tui.fakes import (
    FROZEN_GPU,
    GIB,
    CallReader,
    FakeEngine,
    FakeLogs,
    FakeMetrics,
    fake_services,
    running_stack,
)
from tests.tui.helpers import freeze, settle, until
from tests.tui.test_snapshots import (
    READY_CHECKS,
    SnapCompare,
    dashboard_ready,
    models_ready,
    shows,
    snapshot_app,
    table_ready,
    unfocus,
    unfocused,
)
from tui.__main__ import LlmTuiApp
from tui.screens.chat import ChatScreen
from tui.screens.connect import ConnectScreen
from tui.screens.edit_setting import EditSettingScreen
from tui.screens.gpu import GpuScreen
from tui.screens.hub import HubScreen
from tui.screens.logs import LogsScreen
from tui.screens.settings import SettingsTable
from tui.widgets.gpu_chart import STEP_FRACTION, WINDOW_S
from tui.widgets.hub_tables import QuantsTable

pytestmark = pytest.mark.tui

SMALL = (80, 24)
MODEL = "Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf"
INFERENCE_PID = 4242
GPU = replace(
    FROZEN_GPU,
    processes=(GpuProcess(INFERENCE_PID, int(4.1 * GIB)), GpuProcess(1717, 200 * 2**20)),
    clock_graphics_mhz=1_800,
    clock_memory_mhz=7_001,
    clock_graphics_max_mhz=2_505,
)
LLAMA_LINES = [
    LogLine("0.00.004.651 I srv  llama_server: initializing ...", "2025-01-01T10:00:00.10Z"),
    LogLine(
        "0.00.013.430 W srv  llama_server: security: no API key is set", "2025-01-01T10:00:00.11Z"
    ),
    LogLine(
        "0.00.013.952 I srv    load_model: loading model '/models/a.gguf'",
        "2025-01-01T10:00:00.12Z",
    ),
    LogLine("0.01.249.229 I srv  llama_server: model loaded", "2025-01-01T10:00:01.20Z"),
    LogLine(
        "0.01.249.238 I srv  llama_server: listening on http://0.0.0.0:8080",
        "2025-01-01T10:00:01.21Z",
    ),
    LogLine(
        "0.03.053.502 E slot launch_slot_: id  0 | failed to load the grammar",
        "2025-01-01T10:00:03.05Z",
    ),
]
GATEWAY_LINES = [
    LogLine("INFO:     Started server process [1]", "2025-01-01T10:00:00.50Z"),
    LogLine(
        'INFO:     172.18.0.1:40144 - "POST /v1/chat/completions HTTP/1.1" 200 OK',
        "2025-01-01T10:00:02.00Z",
    ),
    LogLine("LiteLLM Proxy:WARNING: no master key rotation configured", "2025-01-01T10:00:02.50Z"),
]


STEP_S = WINDOW_S * STEP_FRACTION  # the x axis's step (5 s)


class SeededSampler(GpuSampler):
    """Five minutes of made-up history before the first real tick, whenever that lands."""

    def __init__(self, read: list[GpuSample] | None) -> None:
        samples = read

        def reader() -> list[GpuSample]:
            if samples is None:
                from stack.gpu import GpuUnavailable

                raise GpuUnavailable(
                    "no NVIDIA driver found (libnvidia-ml is missing); install the NVIDIA "
                    "driver, or on WSL2 update the Windows NVIDIA driver"
                )
            return samples

        super().__init__(
            open_gpus=lambda: CallReader(reader),
            container_of={INFERENCE_PID: "id-inference"}.get,
            visible=lambda pid: True,
            wsl=False,
            metrics=FakeMetrics({"http://127.0.0.1:8001": 23.4}),  # type: ignore[arg-type]
        )
        self.seeded = samples is None

    def sample(self, now: float, targets: Sequence[ServiceTarget] = ()) -> GpuReading:
        if not self.seeded:
            self.seeded = True
            # A value per 5 s step of the x axis (the step a chart places readings by), up
            # to this tick's own time: whatever second this tick lands on, each step holds
            # the same values, so the picture is the same.
            last_step = math.ceil(now / STEP_S)
            for second in range(301):
                t = now - 300 + second
                i = STEP_S * (math.ceil(t / STEP_S) - last_step + 60)
                wave = math.sin(i / 20)
                self.history.add("0.util", t, 50 + 40 * wave)
                self.history.add("0.mem", t, (4.0 + 0.3 * (i > 60)) * GIB)
                self.history.add("0.mem.inference", t, (3.8 + 0.3 * (i > 60)) * GIB)
                self.history.add("0.temp", t, 58 + 4 * math.sin(i / 40))
                self.history.add("0.power", t, 30 + 22 * wave)
                self.history.add("0.clock", t, 1700 + 400 * wave)
                self.history.add("0.clock_mem", t, 7001)
                self.history.add("tokens.inference", t, max(0.0, 30 * math.sin(i / 12)))
        return super().sample(now, targets)


def gpu_services(
    read: list[GpuSample] | None = (GPU,), checks: object = READY_CHECKS, **more: object
) -> object:  # type: ignore[assignment]
    engine = FakeEngine(statuses=running_stack())
    return fake_services(
        checks,  # type: ignore[arg-type]
        engine=engine,
        gpus=lambda: list(read or []),
        make_gpu_sampler=lambda: SeededSampler(list(read) if read is not None else None),
        **more,
    )


def gpu_home(home: Path, **values: str) -> dict[str, str]:
    write_tiny_model(home / "models" / MODEL)
    return {"CHAT_MODEL": MODEL, "GPU_SAMPLE_INTERVAL": "60", **values}  # one tick, then still


def gpu_ready(app: LlmTuiApp) -> bool:
    screen = app.screen
    return isinstance(screen, GpuScreen) and screen.reading is not None


def logs_at(state: str, lines: int) -> object:
    def ready(app: LlmTuiApp) -> bool:
        screen = app.screen
        return (
            isinstance(screen, LogsScreen)
            and screen._state == state
            and screen.query_one(Log).line_count == lines
        )

    return ready


def small(snap_compare: SnapCompare, app: object, run_before: object) -> None:
    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


# --- dashboard ------------------------------------------------------------------------------


def test_dashboard_small(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home, gpu_services(), **gpu_home(home))
    small(snap_compare, app, shows(ready=dashboard_ready, what="the running dashboard"))


def test_dashboard_small_first_run(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home, fake_services(FROZEN_CHECKS))
    small(snap_compare, app, shows(ready=dashboard_ready, what="what is missing, first"))


# --- GPU --------------------------------------------------------------------------------------


def test_gpu(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home, gpu_services(), **gpu_home(home))
    assert snap_compare(
        app, terminal_size=(100, 32), run_before=shows("7", ready=gpu_ready, what="charts")
    )


def test_gpu_small(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home, gpu_services(), **gpu_home(home))
    small(snap_compare, app, shows("7", ready=gpu_ready, what="six charts at 80x24"))


def test_gpu_small_no_driver(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home, gpu_services(None), **gpu_home(home))
    small(snap_compare, app, shows("7", ready=gpu_ready, what="no driver, tokens/s still"))


def test_gpu_small_na_and_lost(snap_compare: SnapCompare, home: Path) -> None:
    quiet = replace(GPU, temperature=None, power_watts=None, power_limit_watts=None)
    lost = GpuSample(1, "NVIDIA RTX A2000 12GB", 0, 0, None, None, None, None, lost=True)
    app = snapshot_app(home, gpu_services([quiet, lost]), **gpu_home(home))
    small(snap_compare, app, shows("7", ready=gpu_ready, what="N/A charts, a lost second GPU"))


# --- logs ---------------------------------------------------------------------------------------


def logs_services() -> object:
    engine = FakeEngine(statuses=running_stack())
    logs = FakeLogs({"inference": [LLAMA_LINES], "api-gateway": [GATEWAY_LINES]}, hold=False)
    return fake_services(FROZEN_CHECKS, engine=engine, logs=logs)


def test_logs_small_levels_and_search(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home, logs_services())

    async def search(pilot: Pilot[int]) -> None:
        await until(lambda: logs_at("stopped", len(LLAMA_LINES) + 1)(app), "the lines")  # type: ignore[operator]
        await pilot.press("slash", *"model", "enter")
        await settle(app)
        await unfocus(pilot)

    run = shows(
        "3", ready=unfocused(LogsScreen), what="levels coloured, matches marked", then=search
    )
    small(snap_compare, app, run)


def test_logs_small_all_services(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home, logs_services())

    async def everything(pilot: Pilot[int]) -> None:
        await pilot.press("left_square_bracket")
        total = len(LLAMA_LINES) + len(GATEWAY_LINES) + 2  # and each one's stop note
        await until(lambda: logs_at("stopped", total)(app), "both services' lines")  # type: ignore[operator]
        await unfocus(pilot)

    run = shows("3", ready=unfocused(LogsScreen), what="interleaved by time", then=everything)
    small(snap_compare, app, run)


# --- the other screens at 80x24 -------------------------------------------------------------


def test_models_small(snap_compare: SnapCompare, home: Path) -> None:
    write_tiny_model(home / "models" / "tiny-chat-F16.gguf", name="tiny-chat", seed=1)
    write_tiny_model(home / "models" / "tiny-code-Q8_0.gguf", name="tiny-code", file_type=7)
    app = snapshot_app(home, fake_services(FROZEN_CHECKS), CHAT_MODEL="tiny-chat-F16.gguf")
    small(snap_compare, app, shows("2", ready=models_ready(2), what="two rows"))


def hub_ready(app: LlmTuiApp) -> bool:
    screen = app.screen
    if not isinstance(screen, HubScreen) or not screen.query(QuantsTable):
        return False
    quants = screen.query_one(QuantsTable)
    return quants.row_count == 3 and app.focused is quants


def test_hub_small_quants_and_fit(snap_compare: SnapCompare, home: Path) -> None:
    """A search's repos, then one repo's quants with their size and fit, at 80x24."""
    source = home / "source"
    tiny = write_tiny_model(source / "tiny.gguf", name="tiny-chat", seed=1).read_bytes()
    code = write_tiny_model(source / "q8.gguf", name="tiny-chat", file_type=7).read_bytes()
    with FakeHub() as hub:
        files = {"Tiny-Chat-F16.gguf": tiny, "Tiny-Chat-Q8_0.gguf": code, "README.md": b"#"}
        hub.add_repo(
            "acme/Tiny-Chat-GGUF",
            {**files, "Tiny-Chat-F16-copy.gguf": tiny},
            downloads=12_345,
            likes=67,
        )
        hub.add_repo("acme/Other-GGUF", {"Other-Q8_0.gguf": code}, downloads=89)
        services = fake_services(FROZEN_CHECKS, gpus=lambda: [GPU])
        app = snapshot_app(home, services, HF_ENDPOINT=hub.url, HF_TRUST_ENDPOINT="true")

        async def open_repo(pilot: Pilot[int]) -> None:
            await pilot.press(*"tiny", "enter")
            await settle(pilot.app)
            await pilot.press("enter")  # the first repo's quants

        small(
            snap_compare,
            app,
            shows("2", "h", then=open_repo, ready=hub_ready, what="the quants, with fit"),
        )


def test_chat_small(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home, fake_services(FROZEN_CHECKS))
    small(snap_compare, app, shows("4", "escape", ready=unfocused(ChatScreen), what="empty chat"))


def test_settings_small(snap_compare: SnapCompare, home: Path) -> None:
    small(snap_compare, snapshot_app(home), shows("5", ready=table_ready, what="grouped keys"))


def test_settings_small_review(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home)

    def reviewing(app: LlmTuiApp) -> bool:
        dialog = app.screen
        return isinstance(dialog, EditSettingScreen) and dialog.reviewing and app.focused is None

    async def edit(pilot: Pilot[int]) -> None:
        table = app.screen.query_one(SettingsTable)
        table.move_cursor(row=table.get_row_index("CTX_SIZE"))
        await pilot.press("enter")
        await settle(app)
        app.screen.query_one("#edit-value", Input).value = "16384"
        await settle(app)
        await pilot.press("enter")
        await settle(app)
        await unfocus(pilot)

    small(
        snap_compare,
        app,
        shows("5", ready=reviewing, what="the diff, what it recreates", then=edit),
    )


def test_connect_small(snap_compare: SnapCompare, home: Path) -> None:
    run = shows("6", ready=lambda app: isinstance(app.screen, ConnectScreen), what="Connect")
    small(snap_compare, snapshot_app(home), run)


@pytest.mark.anyio
async def test_freeze_keeps_the_gpu_still(home: Path) -> None:
    """The pictures above rely on a tick per view only (GPU_SAMPLE_INTERVAL=60), frozen."""
    app = snapshot_app(home, gpu_services(), **gpu_home(home))
    async with app.run_test(size=SMALL) as pilot:
        await settle(app)
        await pilot.press("7")
        await until(lambda: gpu_ready(app), "a reading")
        await freeze(app)
        assert app.gpu_feed.ticks == 2  # the dashboard's, then the GPU screen's own
        assert app.gpu_feed.paused
        await until(app.gpu_feed.parked.is_set, "the sampler waits")
        assert app.gpu_feed.ticks == 2
