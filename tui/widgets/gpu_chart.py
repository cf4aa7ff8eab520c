"""A history chart in braille dots: y labels, a time axis, one or more series.

Why not a plotting library: `textual-plot` works on Textual 8.2.8 but needs numpy, whose
import alone costs ~150 ms and ~20 MB here, more than the dashboard's whole start-up
budget allows. This draws 2x4 dots per cell from plain lists, straight into cached
`Strip`s: a 40x6 chart rebuilds in well under a millisecond, and only when new data lands
or the size changes. Colours come from component classes, so every theme works.

Each series is (label, points, component class); points are (time, value or None), and
None leaves a gap. The x axis spans the last ``window_s`` seconds up to the newest point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

Points = Sequence[tuple[float, float | None]]
WINDOW_S = 300.0
# The x axis moves in steps of this many seconds (of the window's 300), the same for every
# chart: while a history fills, charts side by side change their picture together, once
# a step, instead of each whenever its own dots move (an idle dashboard's main cost). A
# new value still shows at once; the newest point sits at most one step from the edge.
STEP_FRACTION = 1 / 60
LABEL_WIDTH = 6
# Braille dot bits: column 0 rows 0-3, then column 1 rows 0-3 (Unicode's order).
DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
# RUNS[side][a][b]: the dots a..b (0-3, top down) of one braille column, as bits.
RUNS = tuple(
    tuple(tuple(sum(dots[a : b + 1]) for b in range(4)) for a in range(4)) for dots in DOTS
)
BRAILLE = 0x2800
SERIES_CLASSES = ("chart--series-0", "chart--series-1", "chart--series-2")


@dataclass(frozen=True)
class Series:
    label: str
    points: Points
    style_class: str = SERIES_CLASSES[0]
    fill: bool = True  # an area down to zero (reads at a glance); False: a line


def nice_ceiling(value: float) -> float:
    """The next 1, 2 or 5 times a power of ten at or above ``value``: a readable axis top."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def step_end(when: float, step: float) -> float:
    """``when`` moved up to the end of its ``step`` of the x axis (none: as it is)."""
    return math.ceil(when / step) * step if step > 0 else when


def short_number(value: float) -> str:
    """Axis labels in at most five characters: ``0``, ``2.5``, ``850``, ``12k``, ``1.5M``."""
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e4:
        return f"{value / 1e3:.3g}k"
    if value >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2g}"


def time_label(seconds: float) -> str:
    seconds = round(seconds)
    if seconds <= 0:
        return "now"
    if seconds % 60 == 0:
        return f"-{seconds // 60}m"
    if seconds > 60:
        return f"-{seconds / 60:.1f}m"
    return f"-{seconds}s"


def hold_limit(points: Points) -> float:
    """The longest pause between two readings that still joins them: 3.5x their usual one
    (a tick or two late, as when a metrics read times out, still joins).

    A reading covers the time back to the one before it, so the dot columns between two
    readings are theirs (a chart wider than its readings has no comb of empty columns),
    while a sampler that stopped (no GPU view showed) leaves its gap. With under three
    spacings to go by, the shortest is the usual one."""
    times = [when for when, value in points if value is not None]
    spacings = sorted(b - a for a, b in pairwise(times) if b > a)
    if not spacings:
        return 0.0
    usual = spacings[len(spacings) // 2] if len(spacings) >= 3 else spacings[0]
    return 3.5 * usual


def plot(
    series: Sequence[Series],
    width: int,
    height: int,
    top: float,
    now: float,
    window: float,
    step: float = 0.0,
) -> list[list[tuple[int, int]]]:
    """Cells of the plot area: (braille bits, index of the series drawn last) per cell.

    ``step``: points are placed by the step their time falls in (see STEP_FRACTION)."""
    cells = [[(0, -1) for _ in range(width)] for _ in range(height)]
    dots_x, dots_y = width * 2, height * 4
    start = now - window
    last_x, scale = dots_x - 1, (dots_x - 1) / window
    # Once a second per chart over every point of five minutes: comparisons, not min/max
    # calls, and one column written directly (those were most of its cost).
    for index, one in enumerate(series):
        # The highest value that lands in each dot column: spikes stay visible.
        columns: dict[int, float] = {}
        starts: set[int] = set()  # columns where a line begins again after a gap
        hold = hold_limit(one.points)
        before_when, before_x = -math.inf, -1  # the last reading (-inf: none, or a gap)
        for when, value in one.points:
            if value is None:
                before_when = -math.inf  # a reading with no value: a gap
                continue
            if when + hold < start:
                continue
            x = int((step_end(when, step) - start) * scale + 0.5)
            if x < 0:
                x = 0
            elif x > last_x:
                x = last_x
            first = x
            if when - before_when <= hold:
                if before_x + 1 < x:
                    first = before_x + 1  # back to the reading before
            elif when >= start:
                starts.add(x)
            if first == x:  # most readings: one column, most of them one already drawn
                got = columns.get(x)
                if got is None or value > got:
                    columns[x] = value
            else:
                for column in range(first, x + 1):
                    got = columns.get(column)
                    if got is None or value > got:
                        columns[column] = value
            before_when, before_x = when, x
        previous: int | None = None
        low_y = dots_y - 1
        for x in sorted(columns):
            fraction = columns[x] / top if top > 0 else 0.0
            if fraction < 0.0:
                fraction = 0.0
            elif fraction > 1.0:
                fraction = 1.0
            y = low_y - int(fraction * low_y + 0.5)
            if one.fill:
                low, high = y, low_y
            elif previous is None or x in starts:
                low = high = y
            elif y < previous:  # join to the dot before: a line, not dots
                low, high = y, previous
            else:
                low, high = previous, y
            side, column = RUNS[x % 2], x // 2
            for row in range(low // 4, high // 4 + 1):  # each cell's dots in one go
                top_dot = low - row * 4
                low_dot = high - row * 4
                bits, _ = cells[row][column]
                cells[row][column] = (
                    bits | side[top_dot if top_dot > 0 else 0][low_dot if low_dot < 3 else 3],
                    index,
                )
            previous = y
    return cells


class Chart(Widget):
    """A braille line chart with a y axis (0…top) and a time axis (the last 5 minutes)."""

    COMPONENT_CLASSES = {"chart--axis", "chart--empty", *SERIES_CLASSES}
    DEFAULT_CSS = """
    Chart {
        height: 6;
        min-height: 4;
    }
    Chart > .chart--axis { color: $text-muted; }
    Chart > .chart--empty { color: $text-muted; }
    Chart > .chart--series-0 { color: $accent; }
    Chart > .chart--series-1 { color: $success; }
    Chart > .chart--series-2 { color: $warning; }
    """

    def __init__(
        self,
        *,
        unit: str = "",
        top: float | None = None,
        window_s: float = WINDOW_S,
        format_value: Callable[[float], str] = short_number,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.unit = unit
        self.fixed_top = top
        self.window_s = window_s
        self.format_value = format_value
        self.series: tuple[Series, ...] = ()
        self.now: float | None = None
        self.empty_text = "no readings yet"
        self._strips: list[Strip] | None = None
        self._built_for: tuple[int, int] = (0, 0)
        self._picture: tuple[object, ...] | None = None  # what the strips were drawn from

    def show(
        self, series: Sequence[Series], now: float | None, *, top: float | None = None
    ) -> None:
        """New data: redrawn on the next refresh (and only then)."""
        self.series = tuple(series)
        self.now = None if now is None else self.stepped(now)
        if top is not None:
            self.fixed_top = top
        picture = self._picture_of()
        if picture is not None and picture == self._picture:
            return  # the same dots as on screen (a steady reading): nothing to repaint
        self._picture = picture
        self._strips = None
        self.refresh()

    @property
    def step(self) -> float:
        return self.window_s * STEP_FRACTION

    def stepped(self, now: float) -> float:
        """``now`` moved up to the end of its step of the x axis (see STEP_FRACTION)."""
        return step_end(now, self.step)

    def _picture_of(self) -> tuple[object, ...] | None:
        """What the plot would show at this size: equal pictures draw the same strips."""
        width, height = self.size
        if not width or not height or self.now is None:
            return None
        top = self.top
        cells = plot(
            self.series, max(1, width - LABEL_WIDTH - 1), max(1, height - 1), top, self.now,
            self.window_s, self.step,
        )  # fmt: skip
        has_data = any(v is not None for one in self.series for _, v in one.points)
        return (width, height, top, has_data, tuple(map(tuple, cells)))

    def show_empty(self, text: str) -> None:
        if not self.series and self.now is None and self.empty_text == text:
            return  # as drawn: an idle dashboard repaints nothing
        self.series, self.now, self.empty_text = (), None, text
        self._picture = None
        self._strips = None
        self.refresh()

    @property
    def top(self) -> float:
        if self.fixed_top:
            return self.fixed_top
        values = [v for one in self.series for _, v in one.points if v is not None]
        return nice_ceiling(max(values, default=0.0) * 1.1)

    def on_resize(self) -> None:
        self._strips = None
        self._picture = None

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips = None
        self._picture = None

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._strips is None or self._built_for != (width, height):
            self._strips = self._build(width, height)
            self._built_for = (width, height)
        return self._strips[y] if y < len(self._strips) else Strip.blank(width)

    def _build(self, width: int, height: int) -> list[Strip]:
        base = self.rich_style
        return [strip.apply_style(base) for strip in self._draw(width, height)]

    def _draw(self, width: int, height: int) -> list[Strip]:
        axis = self.get_component_rich_style("chart--axis")
        plot_width = max(1, width - LABEL_WIDTH - 1)
        plot_height = max(1, height - 1)
        has_data = self.now is not None and any(
            v is not None for one in self.series for _, v in one.points
        )
        if not has_data:
            text = self.empty_text[:width]
            empty = self.get_component_rich_style("chart--empty")
            strips = [Strip.blank(width) for _ in range(height)]
            margin = " " * ((width - len(text)) // 2)  # centred, off the border
            strips[height // 2 if height > 1 else 0] = Strip(
                [Segment(margin), Segment(text, empty)]
            ).extend_cell_length(width)
            return strips
        assert self.now is not None
        top = self.top
        cells = plot(self.series, plot_width, plot_height, top, self.now, self.window_s, self.step)
        styles = [self.get_component_rich_style(one.style_class) for one in self.series]
        labels = {0: top, plot_height // 2: top / 2, plot_height - 1: 0.0}
        strips = []
        for row in range(plot_height):
            label = self.format_value(labels[row]) if row in labels else ""
            if row == 0 and self.unit:
                label = (
                    f"{label}{self.unit}" if len(label) + len(self.unit) < LABEL_WIDTH else label
                )
            segments = [
                Segment(
                    f"{label:>{LABEL_WIDTH - 1}} ┤" if label else " " * (LABEL_WIDTH - 1) + " │",
                    axis,
                )
            ]
            segments.extend(self._plot_row(cells[row], styles))
            strips.append(Strip(segments).adjust_cell_length(width))
        strips.append(self._time_axis(width, plot_width, axis))
        return strips[:height]

    @staticmethod
    def _plot_row(row: list[tuple[int, int]], styles: list[Style]) -> list[Segment]:
        segments: list[Segment] = []
        run, run_style = "", Style()
        for bits, index in row:
            char = chr(BRAILLE + bits) if bits else " "
            style = styles[index] if index >= 0 else Style()
            if style != run_style and run:
                segments.append(Segment(run, run_style))
                run = ""
            run, run_style = run + char, style
        if run:
            segments.append(Segment(run, run_style))
        return segments

    def _time_axis(self, width: int, plot_width: int, axis: Style) -> Strip:
        line = [" "] * (LABEL_WIDTH + plot_width)
        line[LABEL_WIDTH - 1] = "└"
        for offset in range(LABEL_WIDTH, LABEL_WIDTH + plot_width):
            line[offset] = "─"
        ticks = 3 if plot_width >= 24 else 2
        for tick in range(ticks):
            fraction = tick / (ticks - 1)
            label = time_label(self.window_s * (1 - fraction))
            at = LABEL_WIDTH + round(fraction * (plot_width - 1))
            start = min(
                max(LABEL_WIDTH, at - len(label) // 2), LABEL_WIDTH + plot_width - len(label)
            )
            line[start : start + len(label)] = list(label)
        return Strip([Segment("".join(line), axis)]).adjust_cell_length(width)
