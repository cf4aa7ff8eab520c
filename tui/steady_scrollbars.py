"""A scroll bar is drawn again only when what it shows changes (Textual 8.2.8).

Textual redraws a scroll bar whenever its widget's virtual size or scroll position changes,
and the scroll bar is dear to draw: its bar goes through Rich's renderer, Textual's visual
and its styles cache, 2-4 ms of the app loop for the log pane's 34 rows (ten times the pane's
own new lines). While a pane fills and follows its end (a log flood, a streaming answer) that
is every frame, though the bar looks the same: past a few hundred lines its thumb is one cell
at the bottom whatever the count.

`install()` wraps `ScrollBar.render_lines`: it works out the bar's segments (Textual's own
`render_bar`, cheap: a list of a few segments) and answers the lines it drew last time when
they, the crop, the size and the styles the bar is drawn with are the same. Anything else
draws as Textual does. The test compares every answer with a fresh Textual drawing.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import cache

from rich.color import Color
from rich.style import Style
from textual.geometry import Region
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip

TEXTUAL_RENDER_LINES = ScrollBar.render_lines
# What `ScrollBarRender.__rich_console__` falls back to when a style has no colour.
BACK_COLOR = Color.parse("#555555")
BAR_COLOR = Color.parse("bright_magenta")

KEPT = "_llm_tui_drawn"  # the bar's attribute: (what it looked like, the lines drawn)


@cache  # once: a second call changes nothing
def install() -> None:
    ScrollBar.render_lines = render_lines  # type: ignore[method-assign, assignment]


def render_lines(bar: ScrollBar, crop: Region) -> list[Strip]:
    """`ScrollBar.render_lines`, the lines drawn last time while they would come out the same."""
    key = looks(bar, crop)
    if key is not None:
        kept: tuple[Hashable, list[Strip]] | None = getattr(bar, KEPT, None)
        if kept is not None and kept[0] == key:
            return kept[1]
    strips = TEXTUAL_RENDER_LINES(bar, crop)
    if key is not None:
        setattr(bar, KEPT, (key, strips))
    return strips


def looks(bar: ScrollBar, crop: Region) -> Hashable | None:
    """All that the bar's lines are made from, or None when that cannot be told (a renderer
    of the app's own)."""
    renderable = bar.render()
    if type(renderable) is not ScrollBarRender:
        return None
    width, height = bar.size
    style = renderable.style
    if not isinstance(style, Style):
        return None  # a style by name: resolved by the console, not here
    segments = renderable.render_bar(
        size=height if renderable.vertical else width,
        virtual_size=renderable.virtual_size,
        window_size=renderable.window_size,
        position=renderable.position,
        thickness=width if renderable.vertical else height,
        vertical=renderable.vertical,
        back_color=style.bgcolor or BACK_COLOR,
        bar_color=style.color or BAR_COLOR,
    )
    app = bar.app
    return (
        tuple(segments.segments),
        crop,
        bar.size,
        bar.region.size,
        bar.rich_style,
        bar.background_colors,
        bar.opacity,
        bar.styles.tint,
        bar.styles.text_opacity,
        tuple(bar.get_line_filters()),
        app.ansi_theme,
        app.native_ansi_color,
    )
