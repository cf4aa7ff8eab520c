"""`tui.steady_scrollbars`: a scroll bar answers the lines it drew while they would come out
the same, and exactly what Textual draws afresh in every state."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.scrollbar import ScrollBar
from textual.strip import Strip
from textual.widgets import Log

from tests.tui.helpers import settle
from tui import steady_scrollbars

pytestmark = [pytest.mark.tui, pytest.mark.anyio]


class Pane(App[None]):
    CSS = "Log { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield Log(id="log")

    def on_mount(self) -> None:
        steady_scrollbars.install()


def bars(app: Pane) -> list[ScrollBar]:
    log = app.query_one(Log)
    return [
        bar
        for bar in (log.vertical_scrollbar, log.horizontal_scrollbar)
        if bar.display and bar.size
    ]


def drawn(strips: list[Strip]) -> list[list[object]]:
    return [list(strip) for strip in strips]


def check_against_textual(app: Pane) -> int:
    """Each bar's lines, ours against a fresh Textual drawing; how many bars were compared."""
    checked = 0
    for bar in bars(app):
        crop = Region(0, 0, *bar.size)
        ours = steady_scrollbars.render_lines(bar, crop)
        bar.refresh()  # Textual's own, from scratch
        assert drawn(ours) == drawn(steady_scrollbars.TEXTUAL_RENDER_LINES(bar, crop)), (
            bar,
            bar.position,
            bar.window_virtual_size,
        )
        checked += 1
    return checked


async def test_the_lines_are_textuals_in_every_state() -> None:
    app = Pane()
    async with app.run_test(headless=True, size=(60, 20)) as pilot:
        log = app.query_one(Log)
        checked = 0
        for count in (5, 40, 400, 4000):  # no bar, then a thumb that shrinks to one cell
            log.write_lines(f"{n:05} " + "wide " * (n % 17) for n in range(count))
            await settle(app)
            for y in (0, log.max_scroll_y // 3, log.max_scroll_y):
                log.scroll_to(x=count % 7, y=y, animate=False, immediate=True)
                await settle(app)
                checked += check_against_textual(app)
        bar = log.vertical_scrollbar
        bar.mouse_over = True  # the hover colours
        await settle(app)
        checked += check_against_textual(app)
        bar.mouse_over = False
        app.theme = "textual-light"
        await settle(app)
        checked += check_against_textual(app)
        await pilot.resize_terminal(44, 12)
        await settle(app)
        checked += check_against_textual(app)
        assert checked >= 20


async def test_a_bar_that_looks_the_same_is_not_drawn_again() -> None:
    app = Pane()
    async with app.run_test(headless=True, size=(60, 20)):
        log = app.query_one(Log)
        log.write_lines(str(n) for n in range(2_000))
        await settle(app)
        bar = log.vertical_scrollbar
        contents = 0
        textual_render_content = bar._render_content

        def counting() -> None:
            nonlocal contents
            contents += 1
            textual_render_content()

        bar._render_content = counting  # type: ignore[method-assign]
        for _ in range(10):  # a flood: the pane follows its end, the thumb stays put
            before = bar.window_virtual_size
            log.write_lines(str(n) for n in range(200))
            await settle(app)
            assert bar.window_virtual_size > before and log.is_vertical_scroll_end
        assert contents == 0
        log.scroll_to(y=0, animate=False, immediate=True)  # the thumb moves: drawn again
        await settle(app)
        assert contents == 1
        check_against_textual(app)
