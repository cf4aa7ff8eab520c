"""GPU: every metric of one GPU over the last five minutes, and who holds its memory.

Six charts (utilisation, llama-server's tokens/s, VRAM with each of our containers'
share, temperature, power against its limit, clocks) for the GPU picked with [ ]. The
screen asks the app's sampler for readings only while it shows. A GPU without a metric
says N/A in that chart only; a lost GPU, no driver or WSL2's missing per-process data
each get a sentence saying why and what to do.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.widgets import Static

from stack.gpu import GpuReading, GpuSample
from tui.commands import bindings
from tui.gpu_feed import Sampled
from tui.screens.base import ModeScreen
from tui.widgets.gpu_chart import SERIES_CLASSES, Chart, Series
from tui.widgets.gpu_panel import token_roles, token_series
from tui.widgets.gpu_text import GIB, gpu_line, gpu_title, lost_text, throughput_text, usage_text

CHARTS = ("util", "tokens", "mem", "temp", "power", "clock")


def gib(value: float) -> str:
    return f"{value / GIB:.3g}"


class GpuScreen(ModeScreen):
    CSS_PATH = "gpu.tcss"  # loaded when it first shows
    MODE = "gpu"
    SUB_TITLE = "GPU"
    BINDINGS = bindings("gpu")

    def __init__(self) -> None:
        super().__init__()
        self.gpu_index = 0
        self.reading: GpuReading | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="gpu"):
            yield Static(Content.styled("reading…", "$text-muted"), id="gpu-title")
            yield Static("", id="gpu-usage")
            with Grid(id="gpu-grid"):
                yield Chart(unit="%", top=100, id="gpu-chart-util")
                yield Chart(id="gpu-chart-tokens")
                yield Chart(format_value=gib, id="gpu-chart-mem")
                yield Chart(unit="°", id="gpu-chart-temp")
                yield Chart(id="gpu-chart-power")
                yield Chart(id="gpu-chart-clock")

    def chart(self, name: str) -> Chart:
        return self.query_one(f"#gpu-chart-{name}", Chart)

    def on_mount(self) -> None:
        for name in CHARTS:
            self.chart(name).add_class("gpu-chart")

    def on_screen_resume(self) -> None:
        self.llm_app.gpu_feed.show(self)

    def on_screen_suspend(self) -> None:
        self.llm_app.gpu_feed.hide(self)

    def on_unmount(self) -> None:
        self.llm_app.gpu_feed.hide(self)

    def on_sampled(self, message: Sampled) -> None:
        self.show(message.reading)

    def action_switch_gpu(self, step: int) -> None:
        count = len(self.reading.gpus) if self.reading else 0
        if count > 1:
            self.gpu_index = (self.gpu_index + step) % count
            if self.reading is not None:
                self.show(self.reading)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "switch_gpu":
            return self.reading is not None and len(self.reading.gpus) > 1
        return True

    # --- drawing ------------------------------------------------------------------------

    def show(self, reading: GpuReading) -> None:
        self.reading = reading
        title = self.query_one("#gpu-title", Static)
        usage = self.query_one("#gpu-usage", Static)
        grid = self.query_one("#gpu-grid")
        title.set_class(not reading.gpus, "-problem")  # the reason wraps: it says what to do
        if not reading.gpus:
            lines = [
                Content.styled("No GPU reading", "bold"),
                Content.styled(reading.problem or "no GPU", "$text-muted"),
            ]
            title.update(Content("\n").join(lines))
            usage.update(throughput_text(reading.throughput, reading.throughput_notes))
            self.show_charts(None, reading)
            grid.set_class(True, "-no-gpu")
            return
        grid.set_class(False, "-no-gpu")
        self.gpu_index = min(self.gpu_index, len(reading.gpus) - 1)
        gpu = reading.gpus[self.gpu_index]
        others = f"  ·  [ ] other GPUs ({len(reading.gpus)})" if len(reading.gpus) > 1 else ""
        title.update(Content.assemble(gpu_title(gpu), others, "\n", gpu_line(gpu)))
        if gpu.lost:
            usage.update(lost_text(gpu))
        else:
            usage.update(usage_text(reading.usage.get(gpu.index), gpu))
        self.show_charts(gpu, reading)

    def show_charts(self, gpu: GpuSample | None, reading: GpuReading) -> None:
        history = self.llm_app.gpu_feed.sampler.history
        now = reading.time
        roles = token_roles(history)
        tokens = self.chart("tokens")
        tokens.border_title = "tokens/s " + (" · ".join(roles) if roles else "(llama-server)")
        if roles:
            tokens.show(token_series(history, roles), now)
        else:
            tokens.show_empty("no llama-server running")
        names = {
            "util": "Utilisation",
            "mem": "VRAM GiB",
            "temp": "Temperature",
            "power": "Power W",
            "clock": "Clocks MHz",
        }
        if gpu is None:
            for name, label in names.items():
                self.chart(name).border_title = label
                self.chart(name).show_empty("no GPU")
            return
        key = f"{gpu.index}."

        def series(metric: str, label: str = "", style: int = 0, fill: bool = True) -> Series:
            points = history.series(key + metric)
            return Series(label or metric, points, SERIES_CLASSES[style], fill)

        def show(name: str, value: object, label: str, *lines: Series, top: float | None) -> None:
            chart = self.chart(name)
            chart.border_title = label
            if value is None and not gpu.lost:
                chart.show_empty(f"N/A: this GPU does not report {label.split()[0].lower()}")
            else:
                chart.show(lines, now, top=top)

        util = f"Utilisation {gpu.utilization}%" if gpu.utilization is not None else "Utilisation"
        show("util", gpu.utilization, util, series("util"), top=100)
        held = sorted(k.removeprefix(key + "mem.") for k in history if k.startswith(key + "mem."))
        mem_lines = [series("mem", "used")] + [
            series(f"mem.{role}", role, 1 + n % 2) for n, role in enumerate(held)
        ]
        total = gpu.memory_total or None
        mem_label = "VRAM GiB used" + ("".join(f" · {role}" for role in held) if held else "")
        show("mem", gpu.memory_total if not gpu.error else None, mem_label, *mem_lines, top=total)
        temp = f"Temperature {gpu.temperature}°C" if gpu.temperature is not None else "Temperature"
        show(
            "temp",
            gpu.temperature,
            temp,
            series("temp", fill=False),
            top=max(90.0, gpu.temperature or 0),
        )
        limit = gpu.power_limit_watts
        power = "Power W" + (f" (limit {limit:.0f})" if limit else "")
        show("power", gpu.power_watts, power, series("power"), top=limit)
        top_clock = float(gpu.clock_graphics_max_mhz or 0) or None
        clocks = [series("clock", "graphics", fill=False)]
        if gpu.clock_memory_mhz is not None:
            clocks.append(series("clock_mem", "memory", 1, fill=False))
            top_clock = None  # two scales in one chart: fit both
        show(
            "clock", gpu.clock_graphics_mhz, "Clocks MHz graphics · memory", *clocks, top=top_clock
        )
