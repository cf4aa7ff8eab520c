"""The dashboard's GPU panel: a line per GPU, who holds its VRAM, and two small charts.

The charts put GPU 0's utilisation beside llama-server's own tokens/s over the last five
minutes (the GPU screen, 7, has every metric of every GPU). The panel asks the app's one
sampler (`tui.gpu_feed`) for readings only while the dashboard shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from tui.gpu_feed import Sampled
from tui.widgets.gpu_chart import SERIES_CLASSES, Chart, Series
from tui.widgets.gpu_text import gpu_line, gpu_title, throughput_text, usage_text

if TYPE_CHECKING:
    from stack.gpu import GpuReading, History
    from tui.app import LlmTuiApp


def token_series(history: History, roles: list[str]) -> list[Series]:
    return [
        Series(role, history.series(f"tokens.{role}"), SERIES_CLASSES[n % len(SERIES_CLASSES)])
        for n, role in enumerate(roles)
    ]


def token_roles(history: History) -> list[str]:
    return sorted(key.removeprefix("tokens.") for key in history if key.startswith("tokens."))


def retitle(widget: Widget, title: str | Content) -> None:
    """Set a border title only when it changes: setting one repaints the widget."""
    if getattr(widget, "_llm_tui_title", None) == title:
        return  # as set last time (compared as given: no markup made each second)
    markup = title.markup if isinstance(title, Content) else title
    if widget.border_title != markup:
        widget.border_title = title
    widget._llm_tui_title = title  # type: ignore[attr-defined]


class GpuPanel(Vertical):
    """GPU lines, VRAM by container, and the utilisation / tokens-per-second charts."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.reading: GpuReading | None = None
        self.active = False
        self._shown = ""  # the lines' text as last drawn
        self._fitted = False  # and whether every line of it fitted the width
        self._drawn_from: tuple[object, ...] | None = None  # what the lines were made of
        self._charts: tuple[Horizontal, Chart, Chart] | None = None  # the row and its charts

    @property
    def llm_app(self) -> LlmTuiApp:
        return cast("LlmTuiApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(Content.styled("reading…", "$text-muted"), id="gpu-lines")

    def on_mount(self) -> None:
        self.border_title = "GPU"

    def charts(self) -> tuple[Horizontal, Chart, Chart]:
        """The charts' row and its two charts, mounted with the first GPU reading (none
        without a GPU)."""
        if self._charts is None:
            util = Chart(unit="%", top=100, id="gpu-util-chart", classes="gpu-mini-chart")
            tokens = Chart(id="gpu-tokens-chart", classes="gpu-mini-chart")
            util.border_title = "GPU 0 util %"
            tokens.border_title = "tokens/s (llama-server)"
            row = Horizontal(util, tokens, id="gpu-charts")
            self.mount(row)
            self._charts = (row, util, tokens)
        return self._charts

    def activate(self) -> None:
        self.active = True
        self.llm_app.gpu_feed.show(self)

    def deactivate(self) -> None:
        self.active = False
        self.llm_app.gpu_feed.hide(self)

    def on_unmount(self) -> None:
        self.llm_app.gpu_feed.hide(self)

    def on_sampled(self, message: Sampled) -> None:
        message.stop()
        self.show(message.reading)

    def set_lines(self, lines: Static, text: Content) -> None:
        """Redraw the lines only when they changed, and lay out only when their count did:
        a layout of the whole dashboard every tick was most of what it cost left open."""
        plain = text.plain
        if plain == self._shown:
            return
        width = lines.content_size.width
        fits = all(len(line) <= width for line in plain.split("\n"))  # no line wraps
        same_rows = plain.count("\n") == self._shown.count("\n") and self._fitted and fits
        self._shown, self._fitted = plain, fits
        lines.update(text, layout=not same_rows)

    def show(self, reading: GpuReading) -> None:
        self.reading = reading
        history = self.llm_app.gpu_feed.sampler.history
        lines = self.query_one("#gpu-lines", Static)
        roles = token_roles(history)
        self.set_class(not reading.gpus, "-unavailable")
        if not reading.gpus:
            retitle(self, "GPU")
            text = [Content.styled(reading.problem or "no GPU reading", "$text-muted")]
            if reading.throughput or reading.throughput_notes:
                text.append(throughput_text(reading.throughput, reading.throughput_notes))
            self._drawn_from = None
            self.set_lines(lines, Content("\n").join(text))
            if self._charts is not None and self._charts[0].display:
                self._charts[0].display = False
            return
        several = len(reading.gpus) > 1
        drawn_from = (reading.gpus, tuple(sorted(reading.usage.items())), lines.size.width)
        if drawn_from != self._drawn_from:  # a steady GPU: the same lines, not made again
            self._drawn_from = drawn_from
            text = []
            for gpu in reading.gpus:
                # One GPU: its name goes in the border, leaving the line for numbers.
                line = gpu_line(gpu)
                text.append(Content.assemble((f"{gpu.index} ", "bold"), line) if several else line)
                usage = usage_text(reading.usage.get(gpu.index), gpu)
                if usage:
                    text.append(Content.assemble("  ", usage) if several else usage)
            self.set_lines(lines, Content("\n").join(text))
        first = reading.gpus[0]
        retitle(self, f"GPUs ({len(reading.gpus)})" if several else gpu_title(first))
        row, util, tokens = self.charts()
        if not row.display:
            row.display = True
        if first.utilization is None and not first.lost:
            util.show_empty("utilisation N/A on this GPU")
        else:
            util.show([Series("util", history.series(f"{first.index}.util"))], reading.time)
        if roles:
            tokens.show(token_series(history, roles), reading.time)
            retitle(tokens, "tokens/s " + " · ".join(roles))
        else:
            tokens.show_empty("no llama-server running")
            retitle(tokens, "tokens/s (llama-server)")
