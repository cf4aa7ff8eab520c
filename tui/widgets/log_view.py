"""The log pane: Textual's `Log` (plain strings, batched writes) with styles laid on top.

Lines stay plain text: nothing in them is ever read as markup. Colour comes from a Rich
highlighter that styles spans of each line as it is drawn (only the lines on screen):
llama.cpp's level letter (`I`/`W`/`E`/`D` after its uptime stamp), LiteLLM's and
uvicorn's level words, our own notes (`── … ──`), the time column, the service column of
the all-services view, and the current search's matches. Styles are component classes,
so every theme works.

`LogView.Scrolled` says when the pane leaves or reaches its last line: the screen turns
following off when the user scrolls up and back on when they reach the end (End).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.cells import cell_len
from rich.highlighter import Highlighter
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.color import TRANSPARENT
from textual.filter import ANSIToTruecolor, LineFilter
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widgets import Log

from tui.widgets.log_strips import NO_SPACING, is_truecolor, offset_segments

# llama.cpp: "0.01.249.229 I srv  llama_server: model loaded"
LLAMA_LEVEL = re.compile(r"(?:^|\s)\d+\.\d{2}\.\d{3}\.\d{3} ([IWED]) ")
# LiteLLM / uvicorn / Python logging: "INFO:     …", "LiteLLM Proxy:ERROR: …", "WARNING …"
WORD_LEVEL = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|Traceback)\b")
TIME = re.compile(r"^(?:\S+ +│ )?(\d\d:\d\d:\d\d)  ")
ROLE = re.compile(r"^(\S+) +│ ")
# Characters one cell wide that `Log` shows as they are (no tab, no control, nothing wide or
# zero-width): text made only of these is as wide as it is long.
NOT_ONE_CELL = re.compile(
    "[^\n\x20-\x7e\u00a0-\u02ff\u2010-\u2027\u2030-\u205e\u2190-\u21ff\u2500-\u25fc]"
)
DRAW_TURN = 16  # lines drawn ahead of a frame per turn of the loop
DRAWN_LINES = 512  # drawn lines kept (a few panes' worth: a flood draws each line once)

LEVELS = {
    "E": "error",
    "W": "warning",
    "D": "debug",
    "ERROR": "error",
    "CRITICAL": "error",
    "Traceback": "error",
    "WARNING": "warning",
    "WARN": "warning",
    "DEBUG": "debug",
}


def level_of(line: str) -> str:
    """error | warning | debug | "" for a log line (llama.cpp or LiteLLM style)."""
    match = LLAMA_LEVEL.search(line)
    if match:
        return LEVELS.get(match.group(1), "")
    match = WORD_LEVEL.search(line)
    return LEVELS.get(match.group(1), "") if match else ""


class LineStyles(Highlighter):
    """Styles for levels, notes, columns and search matches (set by the view)."""

    def __init__(self) -> None:
        self.styles: dict[str, Style] = {}
        self.search: re.Pattern[str] | None = None
        self.current = -1  # the number (see `LogView.pruned`) of the line n/N moved to
        self.line_index = -1  # the number of the line drawn next, set by the view

    def highlight(self, text: Text) -> None:
        plain = text.plain
        styles = self.styles
        if plain.startswith("── "):
            text.stylize(styles["note"])
        else:
            level = level_of(plain)
            if level:
                text.stylize(styles[level])
            role = ROLE.match(plain)
            if role:
                text.stylize(styles["role"], 0, role.end(1))
            stamp = TIME.match(plain)
            if stamp:
                text.stylize(styles["time"], stamp.start(1), stamp.end(1))
        if self.search is not None:
            if self.line_index == self.current:
                text.stylize(styles["current"])
            for match in self.search.finditer(plain):
                if match.end() > match.start():
                    text.stylize(styles["match"], match.start(), match.end())

    def segments(self, plain: str, base: Style) -> list[Segment]:
        """``plain`` styled as `highlight` styles it, as segments, while no search is on:
        what a flood draws, without building a `Text` per line."""
        styles = self.styles
        if not plain:
            return [Segment("")]  # as `Text` renders an empty line
        if plain.startswith("── "):
            return [Segment(plain, base + styles["note"])]
        level = level_of(plain)
        line_style = base + styles[level] if level else base
        spans: list[tuple[int, int, Style]] = []  # in order, apart: the role, then the time
        role = ROLE.match(plain)
        if role:
            spans.append((0, role.end(1), line_style + styles["role"]))
        stamp = TIME.match(plain)
        if stamp:
            spans.append((stamp.start(1), stamp.end(1), line_style + styles["time"]))
        segments = []
        at = 0
        for start, end, style in spans:
            if start > at:
                segments.append(Segment(plain[at:start], line_style))
            segments.append(Segment(plain[start:end], style))
            at = end
        if at < len(plain):
            segments.append(Segment(plain[at:], line_style))
        return segments


class LogView(Log):
    """A `Log` that colours levels and search matches, and says when it is scrolled up."""

    COMPONENT_CLASSES = {
        "log-view--error",
        "log-view--warning",
        "log-view--debug",
        "log-view--note",
        "log-view--time",
        "log-view--role",
        "log-view--match",
        "log-view--current",
    }
    DEFAULT_CSS = """
    LogView > .log-view--error { color: $text-error; }
    LogView > .log-view--warning { color: $text-warning; }
    LogView > .log-view--debug { color: $text-muted; }
    LogView > .log-view--note { color: $text-muted; text-style: italic; }
    LogView > .log-view--time { color: $text-muted; }
    LogView > .log-view--role { color: $text-accent; text-style: bold; }
    LogView > .log-view--match { background: $warning 60%; color: $text; text-style: bold; }
    LogView > .log-view--current { background: $accent 25%; }
    """

    @dataclass
    class Scrolled(Message):
        """The pane left its last line (``at_end`` False) or reached it again."""

        log: LogView
        at_end: bool

    def __init__(self, *, max_lines: int, id: str | None = None) -> None:
        super().__init__(highlight=True, max_lines=max_lines, id=id)
        self.line_styles = LineStyles()
        self.highlighter = self.line_styles
        self.at_end = True
        self._frame_style: Style | None = None
        self._frame_drawn: bool | None = None  # this frame's lines come from `_drawn`
        self._drawn: LRUCache[int, Strip] = LRUCache(DRAWN_LINES)
        self._drawn_for: tuple[int, int, Style] | None = None  # scroll x, width, style
        self._pruned = 0  # lines dropped from the top since the pane began
        self._draw_pending = False  # `_draw_now` is on its way
        self.hold_drawing = False  # more lines come on the loop's next turns: draw then
        self._held_follow: bool | None = None  # a held write's: follow to the end after
        self._held_moved = 0  # lines rolled out over the pane by held writes

    def on_mount(self) -> None:
        self._load_styles()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        if self.is_mounted:
            self._load_styles()

    def _load_styles(self) -> None:
        self.line_styles.styles = {
            name.removeprefix("log-view--"): self.get_component_rich_style(name)
            for name in self.COMPONENT_CLASSES
        }
        self._render_line_cache.clear()
        self._drawn.clear()

    def write_lines(self, lines: Iterable[str], scroll_end: bool | None = None) -> LogView:
        """`Log.write_lines`, at a flood's pace.

        Textual's measures each new line's width on a thread worker of its own per call
        (whose description is the repr of every line), which under a flood of writes costs
        the app loop more than the lines themselves. Here the width is measured in place:
        ``max(map(len, …))`` where every character is one cell, `cell_len` otherwise. A
        write of more lines than the pane holds keeps only its newest. And the pane is drawn
        again: Textual's is not once it is full, so a full pane that follows shows stale
        lines (its scroll position stays while its lines move up under it).
        """
        at_end = self.is_vertical_scroll_end
        auto_scroll = self.auto_scroll if scroll_end is None else scroll_end
        text = "\n".join(lines)
        new_lines = text.splitlines()
        if not new_lines:
            return self
        if self.max_lines is not None and len(new_lines) > self.max_lines:
            new_lines = new_lines[-self.max_lines :]
        pruned = self._pruned
        self._lines.extend(new_lines)
        if self.max_lines is not None and len(self._lines) > self.max_lines:
            self._prune_max_lines()
        if NOT_ONE_CELL.search(text) is None:
            widest = max(map(len, new_lines))
        else:
            widest = max(cell_len(self._process_line(line)) for line in new_lines)
        self._width = max(self._width, widest)
        follow = auto_scroll and at_end
        if self.hold_drawing:  # sized and scrolled once, when the take's last piece is in
            self._held_follow = follow if self._held_follow is None else self._held_follow
            self._held_moved += self._pruned - pruned
            return self
        self._size_and_follow(follow, self._pruned - pruned)
        self.draw_soon()
        return self

    def _size_and_follow(self, follow: bool, moved: int) -> None:
        """The pane's new size, then its last line if it follows. No drawn line is kept for
        the new lines' places (pruning moved the kept ones up with their lines), so nothing to
        forget line by line; what shows is drawn again (`draw_soon`), since a full pane that
        follows does not scroll: its lines move up under it.

        A pane that does not follow (scrolled up, paused, on a match) moves up with the
        ``moved`` lines that rolled out over it: what the user reads stays where it is."""
        self._grow(Size(self._width, len(self._lines)))
        if self.is_vertical_scrollbar_grabbed:
            return
        if follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        elif moved and self.scroll_y > 0:
            self.scroll_to(y=max(0, self.scroll_y - moved), animate=False, immediate=True)

    @contextmanager
    def drawing_held(self) -> Iterator[None]:
        """Writes meanwhile are sized, scrolled to and drawn once, when the block ends (a take
        written in pieces): each piece would otherwise move the scroll bar and the view, and
        a frame between two pieces would draw the whole pane and its bar for nothing."""
        self.hold_drawing = True
        self._held_follow, self._held_moved = None, 0
        try:
            yield
        finally:
            self.hold_drawing = False
            if self._held_follow is not None:
                self._size_and_follow(self._held_follow, self._held_moved)
                self._held_follow, self._held_moved = None, 0
            self.draw_soon()

    def draw_soon(self) -> None:
        """Draw the lines that show on a turn of the loop of their own, then ask for the
        frame: in a flood a take of lines, drawing them and the frame would otherwise hold
        the loop at once (and a busy machine stretches that fourfold)."""
        if not self._draw_pending and not self.hold_drawing:
            self._draw_pending = True
            self.call_later(self._draw_now)

    async def _draw_now(self) -> None:
        """Draw the lines that show DRAW_TURN a turn of the loop (those not drawn yet, from
        where the pane is then), then ask for the frame."""
        while self._draw_ahead():
            await asyncio.sleep(0)
        self._draw_pending = False
        self.refresh()

    def _draw_ahead(self) -> bool:
        """Draw up to DRAW_TURN lines that show and are not drawn yet: True if more wait."""
        if not self._draws_plain():
            return False
        if not self.is_mounted or not self._plain_box():
            return False
        scroll_x, scroll_y = self.scroll_offset
        width, height = self._shown_width(), self.size.height
        rich_style = self.rich_style
        drawn = 0
        for y in range(scroll_y, min(scroll_y + height, len(self._lines))):
            if (scroll_x, width, rich_style) == self._drawn_for and y + self._pruned in (
                self._drawn
            ):
                continue
            if drawn == DRAW_TURN:
                return True
            self._drawn_line(y, scroll_x, width, rich_style)
            drawn += 1
        return False

    def _grow(self, size: Size) -> None:
        """The new virtual size, laid out only when that can change the layout: setting
        `virtual_size` lays out the whole screen (15-40 ms on the Logs screen), for every
        write until the buffer is full, and for each wider line after. A pane already taller
        than it shows, whose horizontal scroll bar neither comes nor goes with the new width,
        and not sized by its content, keeps its scroll bars and its size: the bars only learn
        the new size."""
        old = self.virtual_size
        if size == old:
            return  # a full pane taking more lines: the bars stay as they are, not redrawn
        if (
            self._shows_horizontal_bar(size.width) == self._shows_horizontal_bar(old.width)
            and size.height >= old.height > self.size.height > 0
            and not self.styles.is_auto_height
            and not self.styles.is_auto_width
        ):
            self.set_reactive(Log.virtual_size, size)
            self._scroll_update(size)
        else:
            self.virtual_size = size

    def _shows_horizontal_bar(self, width: int) -> bool:
        """What `Widget._refresh_scrollbars` decides for content ``width`` cells wide."""
        overflow = self.styles.overflow_x
        return overflow == "scroll" or (overflow == "auto" and width > self.container_size.width)

    def render_lines(self, crop: Region) -> list[Strip]:
        # `Log` works out the widget's style and its selection (walks up the DOM) for every
        # line it draws; once a frame is enough.
        self._frame_style = rich_style = self.rich_style
        self._frame_drawn = self._draws_plain()
        try:
            if not self._plain_box():
                return super().render_lines(crop)
            return self._render_plain(crop, rich_style)
        finally:
            self._frame_style = self._frame_drawn = None

    def _draws_plain(self) -> bool:
        """No selection and no search: lines are drawn once and kept (`_drawn_line`)."""
        return self.text_selection is None and self.line_styles.search is None

    def _plain_box(self) -> bool:
        """No border, padding, outline, tint, hatch, title or transparency: the pane's lines
        are its content lines as they are, which `_render_plain` draws without Textual's
        styles cache (a third of a frame in a flood, where every line shown is new)."""
        styles = self.styles
        return (
            styles.gutter == NO_SPACING
            and not any(edge for edge, _ in styles.outline)
            and not styles.tint.a
            and self.opacity == 1.0
            and styles.text_opacity == 1.0
            and (not styles.has_rule("hatch") or styles.hatch == "none")
            and self._border_title is None
            and self._border_subtitle is None
        )

    def _render_plain(self, crop: Region, rich_style: Style) -> list[Strip]:
        """What `Widget.render_lines` makes of a plain box's lines, with the app's line
        filters; Textual's ANSI-to-truecolor filter is left out where it would change nothing
        (every style the pane draws with has true colours and no dim: see `_filters`)."""
        scroll_x, scroll_y = self.scroll_offset
        width = self._shown_width()
        filters = self._filters(rich_style)
        background = self.background_colors[1] if filters else TRANSPARENT
        strips = []
        for y in crop.line_range:
            strip = self._render_line(scroll_y + y, scroll_x, width)
            for line_filter in filters:
                strip = strip.apply_filter(line_filter, background)
            strips.append(strip)
        x1, x2 = crop.column_span
        if (x1, x2) != (0, self.size.width):
            strips = [strip.crop(x1, min(x2, width)) for strip in strips]
        return strips

    def _shown_width(self) -> int:
        """The columns of a line that show: the pane's, less a vertical scroll bar's over its
        last ones. Lines are drawn that wide, so the compositor has nothing to cut away
        under the bar (a division of every line of every frame)."""
        width = self.size.width
        if self.show_vertical_scrollbar:
            width -= self.scrollbar_size_vertical
        return max(0, width)

    def _filters(self, rich_style: Style) -> list[LineFilter]:
        filters = list(self.get_line_filters())
        if self.text_selection is None and all(
            is_truecolor(style) for style in (rich_style, *self.line_styles.styles.values())
        ):
            filters = [f for f in filters if not isinstance(f, ANSIToTruecolor)]
        return filters

    def _render_line(self, y: int, scroll_x: int, width: int) -> Strip:
        rich_style = self._frame_style or self.rich_style
        if y >= len(self._lines):
            return Strip.blank(width, rich_style)
        drawn = self._frame_drawn
        if drawn if drawn is not None else self._draws_plain():
            return self._drawn_line(y, scroll_x, width, rich_style)
        line = self._render_line_strip(y, rich_style)
        line = line.crop_extend(scroll_x, scroll_x + width, rich_style)
        return line.apply_offsets(scroll_x, y)

    def _drawn_line(self, y: int, scroll_x: int, width: int, rich_style: Style) -> Strip:
        """A line as it shows, cropped to the pane and with its offsets (for selecting
        text), made in one pass: what `Log` makes through three strips (the line, cropped,
        then with offsets), each with its seven caches, which in a flood was most of a
        frame's time and of the young objects the collector scans. Kept by the line's
        number since the pane began, so lines moving up as old ones go stay drawn."""
        key = (scroll_x, width, rich_style)
        if key != self._drawn_for:
            self._drawn.clear()
            self._drawn_for = key
        number = y + self._pruned
        strip = self._drawn.get(number)
        if strip is None:
            plain = self._process_line(self._lines[y])
            if NOT_ONE_CELL.search(plain) is None:
                segments = self.line_styles.segments(plain, rich_style)
                strip = Strip(offset_segments(segments, scroll_x, width, y, rich_style), width)
            else:  # wide or zero-width characters: Textual crops by cells
                line = Strip(self.line_styles.segments(plain, rich_style), cell_len(plain))
                line = line.crop_extend(scroll_x, scroll_x + width, rich_style)
                strip = line.apply_offsets(scroll_x, y)
            self._drawn[number] = strip
        return strip

    def _prune_max_lines(self) -> None:
        before = len(self._lines)
        super()._prune_max_lines()
        self._pruned += before - len(self._lines)

    def clear(self) -> LogView:
        super().clear()
        self._drawn.clear()
        return self

    def refresh_lines(self, y_start: int, line_count: int = 1) -> None:
        for y in range(y_start, y_start + line_count):
            self._drawn.discard(y + self._pruned)
        super().refresh_lines(y_start, line_count)

    def _render_line_strip(self, y: int, rich_style: Style) -> Strip:
        # With a search on (and no selection), a drawn line is kept (Textual 8.2's `Log`
        # keeps one only while text is selected); the cache is cleared when the search or
        # the styles change.
        if self.text_selection is None:
            cached = self._render_line_cache.get(y)
            if cached is not None:
                return cached
        self.line_styles.line_index = y + self._pruned
        strip = super()._render_line_strip(y, rich_style)
        if self.text_selection is None:
            self._render_line_cache[y] = strip
        return strip

    @property
    def pruned(self) -> int:
        """Lines dropped from the top since the pane began: the line at index ``i`` is
        number ``i + pruned``, which stays its number while older lines roll out."""
        return self._pruned

    def set_search(self, pattern: re.Pattern[str] | None, current: int = -1) -> None:
        """Highlight ``pattern``'s matches, and line number ``current`` (see `pruned`)."""
        self.line_styles.search = pattern
        self.line_styles.current = current
        self._render_line_cache.clear()
        self._drawn.clear()
        self.refresh()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        at_end = self.is_vertical_scroll_end
        if at_end != self.at_end:
            self.at_end = at_end
            self.post_message(self.Scrolled(self, at_end))
