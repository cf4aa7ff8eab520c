"""The GPU screen and the dashboard's GPU panel, fed by the one sampler (Python fakes here;
tests/tui/test_gpu_fake_nvml.py runs the same views on the fake NVML library in C)."""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from textual.content import Content
from textual.widgets import Static

from stack.gpu import GpuProcess, GpuSample
from stack.settings import Settings, load_settings
from tests.tui.conftest import FROZEN_CHECKS, write_env
from tests.tui.fakes import (
    FROZEN_GPU,
    GIB,
    FakeEngine,
    FakeMetrics,
    fake_gpu_sampler,
    fake_services,
    no_gpu,
    running_stack,
)
from tests.tui.helpers import DEADLINE_S, SIZE, go_to, settle, text, until
from tui.__main__ import LlmTuiApp, make_app
from tui.screens.gpu import GpuScreen
from tui.widgets.gpu_chart import Chart
from tui.widgets.gpu_panel import GpuPanel

pytestmark = [pytest.mark.tui, pytest.mark.anyio]

INFERENCE_PID, DESKTOP_PID = 4242, 1717
WITH_PROCESSES = replace(
    FROZEN_GPU,
    processes=(GpuProcess(INFERENCE_PID, int(4.1 * GIB)), GpuProcess(DESKTOP_PID, 200 * 2**20)),
    clock_graphics_mhz=1_800,
    clock_memory_mhz=7_001,
    clock_graphics_max_mhz=2_505,
)


def gpu_app(
    settings: Settings, *readings: list[GpuSample], engine: FakeEngine | None = None, **kw: object
) -> LlmTuiApp:
    """An app whose sampler answers ``readings`` one tick after another (the last repeats)."""
    queue = list(readings)

    def read() -> list[GpuSample]:
        if len(queue) > 1:
            return queue.pop(0)
        return queue[0]

    engine = engine or FakeEngine(statuses=running_stack())
    metrics = FakeMetrics({"http://127.0.0.1:8001": 23.4})
    services = fake_services(
        FROZEN_CHECKS,
        engine=engine,
        gpus=read,
        make_gpu_sampler=lambda: fake_gpu_sampler(
            read,
            metrics=metrics,
            containers={INFERENCE_PID: "id-inference"},
            **kw,  # type: ignore[arg-type]
        ),
    )
    return make_app(settings, services)


def plain(title: object) -> str:
    """A border title as it reads (Content or str)."""
    return Content.from_markup(str(title)).plain


def shown(app: LlmTuiApp, selector: str) -> str:
    return text(app.screen.query_one(selector, Static))


def chart(app: LlmTuiApp, name: str) -> Chart:
    return app.screen.query_one(f"#gpu-chart-{name}", Chart)


async def test_the_gpu_screen_shows_every_metric_and_who_holds_the_vram(settings: Settings) -> None:
    app = gpu_app(settings, [WITH_PROCESSES])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "gpu")
        screen = app.screen
        assert isinstance(screen, GpuScreen)
        await until(lambda: screen.reading is not None, "a reading")
        await settle(app)
        title = shown(app, "#gpu-title")
        assert "GPU 0 RTX 4050 Laptop GPU" in title
        assert "63%" in title and "4.3/6.0 GiB" in title and "61°C" in title
        assert "28/80 W" in title and "1800 MHz" in title
        usage = shown(app, "#gpu-usage")
        assert "inference 4.10 GiB" in usage and "other process 200 MiB (1)" in usage
        assert plain(chart(app, "util").border_title) == "Utilisation 63%"
        assert plain(chart(app, "tokens").border_title) == "tokens/s inference"
        assert plain(chart(app, "power").border_title) == "Power W (limit 80)"
        assert "inference" in plain(chart(app, "mem").border_title)
        assert chart(app, "tokens").series[0].points[-1][1] == 23.4
        await go_to(app, pilot, "dashboard")


async def test_a_metric_the_gpu_does_not_report_is_na_in_its_chart_only(settings: Settings) -> None:
    quiet = replace(WITH_PROCESSES, temperature=None, power_watts=None, power_limit_watts=None)
    app = gpu_app(settings, [quiet])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "gpu")
        await until(
            lambda: isinstance(app.screen, GpuScreen) and app.screen.reading is not None,
            "a reading",
        )
        await settle(app)
        assert chart(app, "temp").empty_text == "N/A: this GPU does not report temperature"
        assert chart(app, "power").empty_text == "N/A: this GPU does not report power"
        assert chart(app, "util").series  # the others still chart
        title = shown(app, "#gpu-title")
        assert "temp N/A" in title and "power N/A" in title and "63%" in title
        await go_to(app, pilot, "dashboard")


async def test_a_lost_gpu_says_so_and_keeps_its_history(settings: Settings) -> None:
    lost = GpuSample(0, FROZEN_GPU.name, 0, 0, None, None, None, None, lost=True)
    app = gpu_app(settings, [WITH_PROCESSES], [lost])
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "gpu")
        screen = app.screen
        assert isinstance(screen, GpuScreen)
        await until(lambda: screen.reading is not None and screen.reading.gpus[0].lost, "lost")
        await settle(app)
        usage = shown(app, "#gpu-usage")
        assert "GPU 0 (RTX 4050 Laptop GPU) is lost" in usage
        assert "GPU_IS_LOST" in usage and "nvidia-smi -r" in usage
        points = chart(app, "util").series[0].points
        values = [value for _, value in points]
        assert values[0] == 63 and values[-1] is None  # the history stays, then a gap
        await go_to(app, pilot, "dashboard")


async def test_no_driver_is_one_calm_line(settings: Settings) -> None:
    services = fake_services(FROZEN_CHECKS, gpus=no_gpu)
    app = make_app(settings, services)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        panel = app.screen.query_one(GpuPanel)
        assert panel.has_class("-unavailable") and not panel.query(Chart)
        await go_to(app, pilot, "gpu")
        await until(lambda: "No GPU reading" in shown(app, "#gpu-title"), "the reason")
        assert "no NVIDIA driver found" in shown(app, "#gpu-title")
        assert chart(app, "util").empty_text == "no GPU"
        await go_to(app, pilot, "dashboard")


async def test_wsl_says_why_vram_is_not_split_by_container(settings: Settings) -> None:
    app = gpu_app(settings, [WITH_PROCESSES], wsl=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "gpu")
        await until(lambda: "WSL2" in shown(app, "#gpu-usage"), "the WSL note")
        assert "WDDM" in shown(app, "#gpu-usage")
        await go_to(app, pilot, "dashboard")


async def test_the_dashboard_panel_charts_util_beside_tokens(settings: Settings) -> None:
    app = gpu_app(settings, [WITH_PROCESSES])
    async with app.run_test(size=SIZE):
        await settle(app)
        panel = app.screen.query_one(GpuPanel)
        await until(lambda: panel.reading is not None, "a reading")
        await settle(app)
        lines = text(panel.query_one("#gpu-lines", Static))
        assert "util  63%" in lines and "inference 4.10 GiB" in lines
        util, tokens = panel.query(Chart)
        assert plain(util.border_title) == "GPU 0 util %"
        assert plain(tokens.border_title) == "tokens/s inference"
        assert plain(panel.border_title) == "GPU 0 RTX 4050 Laptop GPU"


async def test_one_sampler_runs_only_while_a_gpu_view_shows(home: Path) -> None:
    write_env(home, GPU_SAMPLE_INTERVAL="0.25")
    app = gpu_app(load_settings(home / ".env"), [WITH_PROCESSES], engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        feed = app.gpu_feed
        await until(lambda: feed.ticks >= 3, "the dashboard's panel ticks")
        assert feed.interval == 0.25  # GPU_SAMPLE_INTERVAL
        (thread,) = [t for t in threading.enumerate() if t.name == "gpu-sampler"]
        await go_to(app, pilot, "logs")  # no GPU view: the sampler stops
        assert not feed.running
        await until(feed.parked.is_set, "the sampler waits for a view")
        ticks = feed.ticks
        await go_to(app, pilot, "settings")
        await settle(app)
        assert feed.ticks == ticks and feed.parked.is_set()
        await go_to(app, pilot, "gpu")  # the GPU screen starts it again
        await until(lambda: feed.ticks > ticks, "ticks again")
        await go_to(app, pilot, "dashboard")
        # Still the one thread, for the app's life.
        assert [t for t in threading.enumerate() if t.name == "gpu-sampler"] == [thread]
    thread.join(timeout=DEADLINE_S)
    assert not thread.is_alive()  # the app's end ends it


async def test_ticks_never_overlap_with_a_slow_driver(home: Path) -> None:
    write_env(home, GPU_SAMPLE_INTERVAL="0.25")
    release = threading.Event()
    inside = []
    most = [0]

    def slow() -> list[GpuSample]:
        inside.append(1)
        most[0] = max(most[0], len(inside))
        release.wait(timeout=30)
        inside.pop()
        return [WITH_PROCESSES]

    app = make_app(
        load_settings(home / ".env"),
        fake_services(FROZEN_CHECKS, make_gpu_sampler=lambda: fake_gpu_sampler(slow)),
    )
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: bool(inside), "a tick is reading")
        await settle(app, allow=("gpu-sample",))
        assert app.gpu_feed.reading  # held inside the driver, and the app still answers:
        await pilot.press("7")
        await until(lambda: app.current_mode == "gpu", "the GPU screen shows")
        release.set()
        await until(lambda: app.gpu_feed.ticks >= 3, "ticks go on")
        assert most[0] == 1


async def test_a_steady_reading_repaints_no_chart_and_a_change_does() -> None:
    # An idle GPU reads the same every second: the chart must not rebuild and repaint
    # then (that was most of an idle dashboard's CPU), but must as soon as a dot moves.
    from textual.app import App, ComposeResult

    from tui.widgets.gpu_chart import Series

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield Chart(top=100, id="c")

    def points(now: float, value: float) -> tuple[tuple[float, float | None], ...]:
        return tuple((t, value) for t in range(int(now) - 30, int(now) + 1))

    app = One()
    async with app.run_test(size=(80, 10)) as pilot:
        widget = app.query_one(Chart)
        widget.show([Series("util", points(1001, 40.0))], 1001.0)
        await pilot.pause()
        await settle(app)
        assert widget._strips is not None  # drawn
        widget.show([Series("util", points(1002, 40.0))], 1002.0)  # a second later, the same
        assert widget._strips is not None  # kept: nothing to rebuild or repaint
        widget.show([Series("util", points(1003, 90.0))], 1003.0)
        assert widget._strips is None  # a different picture: rebuilt on the next refresh
        await settle(app)
        assert widget._strips is not None
        # The x axis moves in 5 s steps (300 s / 60): a steady reading repaints once a step.
        assert widget.now == 1005.0
        widget.show([Series("util", points(1004, 90.0))], 1004.0)
        assert widget._strips is not None  # the same step, the same value: kept
        # The next step, with a history that grew (it starts where it started): redrawn.
        grown = tuple((t, 90.0) for t in range(971, 1007))
        widget.show([Series("util", grown)], 1006.0)
        assert widget.now == 1010.0 and widget._strips is None


def columns_drawn(points: list[tuple[float, float | None]], width: int) -> str:
    """The bottom row of a filled chart, one character per cell: █ both dot columns drawn,
    ▌/▐ one of them, a space neither."""
    from tui.widgets.gpu_chart import DOTS, Series, plot

    left = sum(DOTS[0])
    right = sum(DOTS[1])
    row = plot([Series("util", points)], width, 3, 100.0, 1000.0, 300.0, 5.0)[-1]
    out = []
    for bits, _ in row:
        both = bits & left == left and bits & right == right
        out.append("█" if both else "▌" if bits & left else "▐" if bits & right else " ")
    return "".join(out)


@pytest.mark.parametrize("width", [37, 60, 73, 120, 200])
def test_a_steady_history_fills_every_column_at_any_width(width: int) -> None:
    # Readings each second over 5 minutes, 5 s steps on the x axis: a chart with more dot
    # columns than steps (any wider than 30 cells) drew a comb of empty columns between them.
    steady = [(700.0 + second, 50.0) for second in range(301)]
    assert columns_drawn(steady, width) == "█" * width


def test_a_pause_in_the_readings_and_a_missing_value_leave_gaps() -> None:
    # The sampler stopped for 50 s (no GPU view showed), then a metric read N/A for 20 s.
    points: list[tuple[float, float | None]] = [(700.0 + s, 40.0) for s in range(100)]
    points += [(850.0 + s, 40.0 if not 60 <= s < 80 else None) for s in range(151)]
    drawn = columns_drawn(points, 60)
    # 60 cells over 300 s: 5 s a cell. Filled, empty, filled, empty, filled (edges may be half).
    runs = [(char == " ", len(list(group))) for char, group in itertools.groupby(drawn)]
    gaps = [length for empty, length in runs if empty]
    assert len(gaps) == 2, drawn
    assert 8 <= gaps[0] <= 10 and 2 <= gaps[1] <= 4, drawn


def test_few_readings_or_a_late_tick_join_as_they_should() -> None:
    from tui.widgets.gpu_chart import hold_limit

    # Two readings a second apart, then the sampler stopped for minutes: not one line.
    assert hold_limit([(700.0, 50.0), (701.0, 50.0), (895.0, 50.0)]) == 3.5
    # Readings each second, one of them 3 s late (a metrics read that timed out): joined.
    late = [(700.0 + s, 50.0) for s in range(150)] + [(852.0 + s, 50.0) for s in range(149)]
    assert columns_drawn(late, 200) == "█" * 200


def test_a_line_starts_again_after_a_gap_instead_of_climbing_to_it() -> None:
    from tui.widgets.gpu_chart import DOTS, Series, plot

    # A line chart (temperature, clocks): 20 before a 30 s pause, 80 after it.
    points: list[tuple[float, float | None]] = [(700.0 + s, 20.0) for s in range(100)]
    points += [(830.0 + s, 80.0) for s in range(171)]
    cells = plot([Series("temp", points, fill=False)], 60, 3, 100.0, 1000.0, 300.0, 5.0)
    dots = [
        [bool(cells[row][x // 2][0] & DOTS[x % 2][dot]) for row in range(3) for dot in range(4)]
        for x in range(120)
    ]
    drawn = [x for x, column in enumerate(dots) if any(column)]
    after_gap = next(x for x, following in itertools.pairwise(drawn) if following > x + 1)
    first_after = drawn[drawn.index(after_gap) + 1]
    assert sum(dots[first_after]) == 1  # one dot at 80, no climb from 20 across the gap
    assert sum(dots[first_after + 1]) == 1
