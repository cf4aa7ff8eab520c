"""The log pane itself: a full pane that follows keeps drawing its newest lines, and the
width of what it holds is measured in cells."""

from __future__ import annotations

import asyncio
import re

import pytest
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.strip import Strip

from tests.tui.helpers import settle, until
from tui.widgets.log_view import LogView

pytestmark = [pytest.mark.tui, pytest.mark.anyio]


class Pane(App[None]):
    def __init__(self, max_lines: int) -> None:
        super().__init__()
        self.max_lines = max_lines

    def compose(self) -> ComposeResult:
        yield LogView(max_lines=self.max_lines, id="pane")


async def test_a_full_pane_that_follows_draws_the_lines_that_keep_coming() -> None:
    app = Pane(max_lines=50)
    async with app.run_test(size=(60, 10)):
        pane = app.query_one(LogView)
        pane.write_lines([f"line {n}" for n in range(50)])  # full, scrolled to its end
        await settle(app)
        drawn: list[str] = []
        draw = pane._render_line

        def recording(y: int, scroll_x: int, width: int) -> Strip:
            if y < len(pane.lines):
                drawn.append(pane.lines[y])
            return draw(y, scroll_x, width)

        pane._render_line = recording  # type: ignore[method-assign]
        # Its scroll position cannot move (still 50 lines): the lines move up under it.
        pane.write_lines(["newest"])
        await until(lambda: "newest" in drawn, "the newest line is drawn")
        assert pane.lines[-1] == "newest" and len(pane.lines) == 50
        assert pane.is_vertical_scroll_end


class AutoBarsPane(Pane):
    CSS = "LogView { overflow: auto; }"


@pytest.mark.parametrize("kind", [Pane, AutoBarsPane])
async def test_a_wider_line_lays_the_screen_out_only_when_a_scroll_bar_comes(
    kind: type[Pane],
) -> None:
    """Laying the screen out is most of a frame: a pane taller than it shows lays out again
    only when a wider line brings the horizontal scroll bar (never, where the bars always
    show, as `Log`'s do); otherwise the bars learn the new size in place."""
    app = kind(max_lines=500)
    async with app.run_test(size=(60, 10)):
        pane = app.query_one(LogView)
        pane.write_lines(["x" * 20] * 50)
        await settle(app)
        screen = app.screen
        layouts = 0
        lay_out = screen._refresh_layout

        def counting(*args: object, **kwargs: object) -> None:
            nonlocal layouts
            layouts += 1
            lay_out(*args, **kwargs)  # type: ignore[arg-type]

        screen._refresh_layout = counting  # type: ignore[method-assign]
        pane.write_lines(["y" * 40])
        await settle(app)
        assert pane.virtual_size == (40, 51) and layouts == 0
        assert pane.show_horizontal_scrollbar is (kind is Pane)
        assert pane.vertical_scrollbar.window_virtual_size == 51
        pane.write_lines(["z" * 100])
        await settle(app)
        assert pane.show_horizontal_scrollbar
        assert layouts == 0 if kind is Pane else layouts >= 1
        assert pane.horizontal_scrollbar.window_virtual_size == 100
        before = layouts
        pane.write_lines(["w" * 130])
        await settle(app)
        assert pane.horizontal_scrollbar.window_virtual_size == 130 and layouts == before
        assert pane.virtual_size == (130, 53)
        assert pane.is_vertical_scroll_end or kind is not Pane  # follows past the longer lines


async def test_a_write_larger_than_the_pane_keeps_its_newest_lines() -> None:
    app = Pane(max_lines=10)
    async with app.run_test(size=(60, 10)):
        pane = app.query_one(LogView)
        pane.write_lines([f"line {n}" for n in range(1000)])
        assert list(pane.lines) == [f"line {n}" for n in range(990, 1000)]


@pytest.mark.parametrize(
    ("line", "cells"),
    [
        ("a" * 70, 70),
        ("inference │ 12:00:00  ── note … → ok ──", 39),  # one cell each, not ASCII
        ("漢字" * 10, 40),  # two cells each
        ("\tx", 9),  # a tab to the next stop of 8
        ("e\u0301" * 5, 5),  # combining accents take no cell of their own
    ],
)
async def test_the_width_is_measured_in_cells(line: str, cells: int) -> None:
    app = Pane(max_lines=10)
    async with app.run_test(size=(30, 10)):
        pane = app.query_one(LogView)
        pane.write_lines(["short", line])
        assert pane.virtual_size.width == cells


LINES = [
    "0.00.110.490 I srv  llama_server: model loaded",
    "0.00.004.783 W srv  llama_server: security: no API key is set",
    'INFO:     127.0.0.1:5000 - "GET /health HTTP/1.1" 200 OK',
    "LiteLLM Proxy:ERROR: proxy_server.py:123 - boom",
    "12:00:01  0.00.110.490 E srv  llama_server: failed to load",
    "inference   │ 12:00:01  0.00.110.490 I srv  llama_server: listening",
    "api-gateway │ 12:00:01  WARNING: something",
    "── inference stopped ──",
    "",
    "plain text with nothing to colour",
]


async def test_a_line_is_drawn_the_same_with_or_without_building_a_text() -> None:
    """The flood's fast path (segments straight from the styles) draws what the `Text`
    path draws: same characters, same styles."""
    app = Pane(max_lines=100)
    async with app.run_test(size=(100, 20)):
        pane = app.query_one(LogView)
        pane.write_lines(LINES)
        await settle(app)
        base = pane.rich_style
        for y, line in enumerate(LINES):
            fast = Strip(pane.line_styles.segments(line, base), len(line))
            text = Text(line, no_wrap=True)
            text.stylize(base)
            slow = Strip(pane.line_styles(text).render(app.console), len(line))
            assert list(fast.simplify()) == list(slow.simplify()), line
            assert pane.lines[y] == line  # a blank line is kept, in its place
            assert pane._render_line_strip(y, base).text == line


def textual_line(pane: LogView, y: int, scroll_x: int, width: int) -> Strip:
    """What Textual's `Log` makes of line ``y``: the line, cropped, then its offsets."""
    style = pane.rich_style
    line = Strip(pane.line_styles.segments(pane._lines[y], style), len(pane._lines[y]))
    return line.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, y)


async def test_a_line_drawn_in_one_pass_is_the_line_textual_draws() -> None:
    """The pane draws a line cropped and with its selection offsets in one pass: the same
    text, styles and offsets (every segment's meta) as Textual's three steps, wherever the
    pane is scrolled and however wide it is."""
    app = Pane(max_lines=100)
    async with app.run_test(size=(60, 10)):
        pane = app.query_one(LogView)
        pane.write_lines(
            [
                "inference    │ 12:00:01  0.01.249.229 E srv  failed to load the model",
                "",
                "api-gateway  │ 12:00:02  INFO:     127.0.0.1:5000 - POST /v1/chat 200",
                "── inference stopped; its logs continue here when it runs again ──",
                "x" * 150,
            ]
        )
        await settle(app)
        for y in range(5):
            for scroll_x, width in ((0, 60), (0, 20), (7, 30), (16, 5), (90, 60), (200, 10)):
                mine = pane._drawn_line(y, scroll_x, width, pane.rich_style)
                theirs = textual_line(pane, y, scroll_x, width)
                assert mine.cell_length == theirs.cell_length == width
                shown = [(s.text, s.style, s.style.meta if s.style else None) for s in mine]
                want = [(s.text, s.style, s.style.meta if s.style else None) for s in theirs]
                assert [p for p in shown if p[0]] == [p for p in want if p[0]], (y, scroll_x)
                assert mine.text == theirs.text


class AnsiPane(Pane):
    """A theme of ANSI colours: Textual's truecolor filter has work to do."""

    CSS = "LogView > .log-view--error { color: ansi_red; } LogView { color: ansi_default; }"


class BoxedPane(Pane):
    CSS = "LogView { border: round $accent; padding: 0 1; }"


def as_drawn(strips: list[Strip]) -> list[list[tuple[str, object]]]:
    return [[(s.text, s.style) for s in strip if s.text] for strip in strips]


@pytest.mark.parametrize("kind", [Pane, AnsiPane, BoxedPane])
async def test_the_pane_draws_what_textuals_styles_cache_draws(kind: type[Pane]) -> None:
    """A plain pane's lines skip Textual's styles cache: the same text and styles (offsets
    too) as `Widget.render_lines` makes, followed or scrolled, cropped, with a search on, with
    ANSI colours the app's filter turns to true colour; a boxed pane goes through the cache."""
    from textual.widget import Widget

    app = kind(max_lines=500)
    async with app.run_test(size=(60, 12)):
        pane = app.query_one(LogView)
        lines = [
            "inference    │ 12:00:01  0.01.249.229 E srv  failed to load the model",
            "api-gateway  │ 12:00:02  INFO:     127.0.0.1:5000 - POST /v1/chat 200",
            "── inference stopped; its logs continue here when it runs again ──",
            "wide " + "x" * 150,
        ]
        pane.write_lines(lines * 20)
        await settle(app)
        assert pane._plain_box() is (kind is not BoxedPane)
        assert pane._shown_width() == pane.size.width - 2  # its vertical scroll bar shows
        height = pane.region.height

        def compare() -> None:
            for crop in (Region(0, 0, pane.region.width, height), Region(3, 2, 20, 4)):
                pane._drawn.clear()
                pane._render_line_cache.clear()
                mine = pane.render_lines(crop)
                pane._drawn.clear()
                pane._render_line_cache.clear()
                pane._styles_cache.clear()
                theirs = Widget.render_lines(pane, crop)
                if kind is not BoxedPane:  # a plain pane's lines stop where its bar begins
                    shown = pane._shown_width() - crop.x
                    theirs = [strip.crop(0, shown) for strip in theirs]
                assert as_drawn(mine) == as_drawn(theirs), crop
                assert [s.cell_length for s in mine] == [s.cell_length for s in theirs]

        compare()  # following, at the end
        pane.scroll_to(x=40, y=5, animate=False, immediate=True)
        await until(lambda: pane.scroll_offset == (40, 5), "scrolled")
        compare()
        pane.set_search(re.compile("model|POST"), current=5 + 1)
        compare()


async def test_the_lines_that_show_are_drawn_ahead_a_few_a_turn_then_the_frame() -> None:
    """New lines are drawn DRAW_TURN a turn of the loop before the frame asks for them, so
    no turn holds the loop for a whole pane of new lines; the frame then draws none."""
    from tui.widgets.log_view import DRAW_TURN

    app = Pane(max_lines=1000)
    async with app.run_test(size=(60, 3 * DRAW_TURN + 5)):
        pane = app.query_one(LogView)
        pane.write_lines([f"old {n}" for n in range(500)])
        await settle(app)
        drawn_per_turn: list[int] = []
        draw_ahead = pane._draw_ahead
        made = 0
        segments = pane.line_styles.segments  # called for each line drawn, not when kept

        def counting_line(plain: str, base: Style) -> list[Segment]:
            nonlocal made
            made += 1
            return segments(plain, base)

        marks: list[list[bool]] = []  # put on the loop at each piece: run by the next one

        def counting_turn() -> bool:
            nonlocal made
            assert not marks or marks[-1][0], "the loop did not turn between two pieces"
            marks.append([False])
            asyncio.get_running_loop().call_soon(marks[-1].__setitem__, 0, True)
            made = 0
            more = draw_ahead()
            drawn_per_turn.append(made)
            return more

        pane.line_styles.segments = counting_line  # type: ignore[method-assign]
        pane._draw_ahead = counting_turn  # type: ignore[method-assign]
        # No frame between the turns: on a loaded machine the screen's frame timer can come
        # due between two of them, and that frame would draw the rest itself.
        with app.batch_update():
            pane.write_lines([f"new {n}" for n in range(500)])
            await until(lambda: not pane._draw_pending, "the new lines drawn")
        shown = pane.scrollable_content_region.height  # the rows above the scroll bar
        assert drawn_per_turn[:-1] == [DRAW_TURN] * (shown // DRAW_TURN)
        assert sum(drawn_per_turn) == shown
        made = 0
        pane.refresh()  # the frame the batch held back (Textual asks for it only once)
        await settle(app)  # the frame: every line it shows was drawn ahead
        assert made == 0
        assert pane.render_line(shown - 1).text.rstrip() == "new 499"


@pytest.mark.parametrize("following", [True, False])
async def test_a_take_written_in_pieces_is_sized_and_scrolled_to_once(following: bool) -> None:
    """While drawing is held (a take in pieces), the pane's size, its scroll bar and its view
    wait for the last piece: each piece would move them, and a frame between two pieces
    would draw the pane and its bar for nothing. A pane scrolled up stays where it is."""
    app = Pane(max_lines=500)
    async with app.run_test(size=(60, 10)):
        pane = app.query_one(LogView)
        pane.write_lines([f"line {n}" for n in range(50)])
        await settle(app)
        if not following:
            pane.scroll_to(y=10, animate=False, immediate=True)
            await settle(app)
        bar_moves = 0
        bar_refresh = pane.vertical_scrollbar.refresh

        def counting(*args: object, **kwargs: object) -> None:
            nonlocal bar_moves
            bar_moves += 1
            bar_refresh(*args, **kwargs)  # type: ignore[arg-type]

        pane.vertical_scrollbar.refresh = counting  # type: ignore[method-assign]
        scroll_y = pane.scroll_y
        with pane.drawing_held():
            for piece in range(3):
                pane.write_lines([f"piece {piece} line {n}" for n in range(40)])
                assert pane.virtual_size.height == 50 and pane.scroll_y == scroll_y
                await asyncio.sleep(0)
            assert bar_moves == 0
        assert pane.virtual_size.height == 170
        assert pane.is_vertical_scroll_end is following
        assert pane.scroll_y == (pane.max_scroll_y if following else 10)
        assert 1 <= bar_moves <= 3  # the bar learns the new size (and position) once
        await settle(app)
        top = round(pane.scroll_y)
        assert pane.lines[top] == "line 10" or following
        assert pane.lines[top + pane.scrollable_content_region.height - 1] == (
            "piece 2 line 39" if following else "line 18"
        )


@pytest.mark.parametrize("held", [False, True])
async def test_a_pane_scrolled_up_keeps_its_lines_in_view_as_older_ones_roll_out(
    held: bool,
) -> None:
    """A full pane the user reads (not following) moves up with the lines that roll out
    above it, written at once or in held pieces; at the top it stays at the top."""
    app = Pane(max_lines=100)
    async with app.run_test(size=(60, 10)):
        pane = app.query_one(LogView)
        pane.write_lines([f"line {n}" for n in range(100)])
        await settle(app)
        pane.scroll_to(y=40, animate=False, immediate=True)
        await settle(app)

        def write(lines: list[str]) -> None:
            if not held:
                pane.write_lines(lines, scroll_end=False)
                return
            with pane.drawing_held():
                for start in range(0, len(lines), 10):
                    pane.write_lines(lines[start : start + 10], scroll_end=False)

        write([f"new {n}" for n in range(30)])
        await settle(app)
        assert pane.scroll_y == 10 and pane.lines[10] == "line 40"
        assert pane.render_line(0).text.rstrip() == "line 40"
        write([f"newer {n}" for n in range(30)])  # line 40 rolls out too
        await settle(app)
        assert pane.scroll_y == 0 and pane.render_line(0).text.rstrip() == "line 60"
