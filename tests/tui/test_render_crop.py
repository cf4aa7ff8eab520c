"""A screen update drawn by `tui.render_crop` sends exactly what Textual's own drawing sends,
full or partial, for any dirty area, while drawing only what shows."""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import pytest
from rich.console import Console
from textual._compositor import ChopsUpdate, Compositor
from textual.app import App, ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer, Header, Label, Log, Static

from tests.tui.helpers import settle
from tui import render_crop

pytestmark = [pytest.mark.tui, pytest.mark.anyio]

RenderChops = Callable[[Compositor, Region, Callable[[int], bool]], render_crop.Chops]


class Layers(App[None]):
    """Docks, a split, a scrolled column whose children are clipped, a bordered and padded
    log scrolled sideways, and a layer drawn over both halves."""

    CSS = """
    Screen { layers: base over; }
    #left { width: 40%; }
    #left Static { height: 3; border: round $accent; }
    #log { border: heavy $warning; padding: 0 1; }
    #over { layer: over; offset: 22 6; width: 30; height: 5; background: $panel; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with VerticalScroll(id="left"):
                for n in range(30):
                    yield Static(f"item {n} " + "·" * n)
            yield Log(id="log")
        yield Label("over both halves\nsecond line", id="over")
        yield Footer()

    def on_mount(self) -> None:
        log = self.query_one(Log)
        log.write_lines(f"{n:04} " + "lorem ipsum dolor sit amet " * (n % 7) for n in range(300))


def partial_update(
    compositor: Compositor, console: Console, regions: list[Region], render: RenderChops
) -> str:
    """What `Compositor.render_partial_update` sends for dirty ``regions``, its chops made
    by ``render``."""
    crop = Region.from_union(regions).intersection(compositor.size.region)
    spans = list(compositor._regions_to_spans(regions))
    rendered = {y for y, _, _ in spans}.__contains__
    chops = render(compositor, crop, rendered)
    update = ChopsUpdate(chops, spans, [cuts[1:] for cuts in compositor.cuts])  # type: ignore[arg-type]
    return without_idle_moves(update.render_segments(console))


MOVE = r"\x1b\[\d+;\d+H"


def without_idle_moves(sent: str) -> str:
    """What is drawn, without the cursor moves that draw nothing (one followed by another, by
    the end of a line or by the end): Textual's sends one for a chop that starts where the
    dirty area ends, whose widget `render_crop` leaves undrawn."""
    return re.sub(f"(?:{MOVE})+(?={MOVE}|\n|$)", "", sent)


def full_update(compositor: Compositor, console: Console, render: RenderChops) -> str:
    chops = render(compositor, compositor.size.region, lambda y: True)
    return "\n".join(Strip.join(line.values()).render(console) for line in chops)


async def scrolled(app: Layers) -> None:
    await settle(app)
    app.query_one("#left", VerticalScroll).scroll_to(y=17, animate=False, immediate=True)
    app.query_one(Log).scroll_to(x=9, y=120, animate=False, immediate=True)
    await settle(app)


async def test_updates_send_what_textual_sends() -> None:
    app = Layers()
    async with app.run_test(headless=True, size=(90, 30)):
        await scrolled(app)
        compositor = app.screen._compositor
        ours = full_update(compositor, app.console, render_crop.render_chops)
        assert ours == full_update(compositor, app.console, render_crop.TEXTUAL_RENDER_CHOPS)
        cases = [[region] for region, _clip in compositor.visible_widgets.values()]
        shuffle = random.Random(8)
        for _ in range(300):  # rectangles anywhere, one to three at once (their union's box)
            cases.append(
                [
                    Region(
                        x := shuffle.randrange(90),
                        y := shuffle.randrange(30),
                        shuffle.randint(1, 90 - x),
                        shuffle.randint(1, 30 - y),
                    )
                    for _ in range(shuffle.randint(1, 3))
                ]
            )
        for regions in cases:
            ours = partial_update(compositor, app.console, regions, render_crop.render_chops)
            textual = partial_update(
                compositor, app.console, regions, render_crop.TEXTUAL_RENDER_CHOPS
            )
            assert ours == textual, regions


async def test_an_update_draws_only_what_shows() -> None:
    app = Layers()
    async with app.run_test(headless=True, size=(90, 30)):
        await scrolled(app)
        compositor = app.screen._compositor
        log = app.query_one(Log)
        log_area = compositor.visible_widgets[log][0]
        drawn: list[tuple[Widget, Region]] = []
        for widget in compositor.visible_widgets:

            def recording(crop: Region, widget: Widget = widget, draw=widget.render_lines) -> list:
                drawn.append((widget, crop))
                return draw(crop)

            widget.render_lines = recording  # type: ignore[method-assign]
        row = Region(log_area.x, log_area.y + 3, log_area.width, 1)  # one row of the log
        render_crop.render_chops(compositor, row, lambda y: y == row.y)
        assert [(type(widget).__name__, crop.height) for widget, crop in drawn] == [
            ("ScrollBar", 1),  # the log's own, in front of it
            ("Log", 1),
        ]
        drawn.clear()
        render_crop.TEXTUAL_RENDER_CHOPS(compositor, row, lambda y: y == row.y)
        # Textual's own draws the others in full: each one's clip (its container's) meets it
        assert {"Header", "Footer", "Label", "VerticalScroll", "Horizontal", "Screen"} <= {
            type(widget).__name__ for widget, _ in drawn
        }
        drawn.clear()
        render_crop.render_chops(compositor, compositor.size.region, lambda y: True)
        names = {type(widget).__name__ for widget, _ in drawn}
        # the split is covered by the column and the log, the header by its parts
        assert not names & {"Horizontal", "Header"}
        assert {"HeaderTitle", "FooterKey", "Label", "Log", "Static", "ScrollBar"} <= names
