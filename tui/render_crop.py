"""A screen update draws only what it shows: the widgets, and the rows of each, that it sends
and that no widget in front covers (Textual 8.2.8).

The compositor cuts each line of the screen at widget edges into chops, and fills each chop
from the front-most widget that covers it. For a partial update (a widget refreshed: a pane of
new log lines, a status line) Textual asks every widget whose *clip* (its container's visible
area) meets the dirty area for all its lines, and cuts every line it gets into chops, even
where a widget in front has filled them already: on the Logs screen each frame of a flood drew
the header, the mode bar, the tabs, the footer, the screen and the pane's container in full,
and cut the pane's container and the screen under it row by row, to keep only the pane's
rows and its scroll bar.

`install()` replaces `Compositor._render_chops` with one that goes front to back as Textual's
does and asks a widget for its lines only where one of its chops on a row that is sent is
still empty, and then only for those rows (the full width of its visible part: chops are cut
at widget edges). The chops that come out are the same; the test compares them with
Textual's own, for full updates and partial ones.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from functools import cache

from textual._compositor import Compositor
from textual.geometry import Region
from textual.strip import Strip

TEXTUAL_RENDER_CHOPS = Compositor._render_chops

Chops = Sequence[Mapping[int, Strip]]


@cache  # once: a second call changes nothing
def install() -> None:
    Compositor._render_chops = render_chops  # type: ignore[method-assign, assignment]


def render_chops(
    compositor: Compositor, crop: Region, is_rendered_line: Callable[[int], bool]
) -> Chops:
    """`Compositor._render_chops`: for each line of the screen, its cuts mapped to the strip
    that shows there (None where nothing is drawn: a line or a chop outside ``crop`` or not
    sent)."""
    _rich_traceback_guard = True  # a widget's rendering error shows without this frame
    cuts = compositor.cuts
    chops: list[dict[int, Strip | None]] = [dict.fromkeys(line[:-1]) for line in cuts]
    crop_top, crop_bottom, crop_left, crop_right = crop.y, crop.bottom, crop.x, crop.right
    intersection = Region.intersection
    for widget, (region, clip) in compositor.visible_widgets.items():  # front to back
        left, top, width, height = intersection(region, clip)
        right = left + width
        top, bottom = max(top, crop_top), min(top + height, crop_bottom)
        if not width or bottom <= top or left >= crop_right or right <= crop_left:
            continue
        wanted: list[int] = []  # the rows sent where a chop of it in the crop is empty
        shown_left, shown_right = max(left, crop_left), min(right, crop_right)
        for y in range(top, bottom):
            if not is_rendered_line(y):
                continue
            line = chops[y]
            if line.get(shown_left, 0) is None:  # the chop at the left of it is empty
                wanted.append(y)
                continue
            line_cuts = cuts[y]
            first_chop = bisect_right(line_cuts, shown_left) - 1  # the one shown_left is in
            end_chop = bisect_left(line_cuts, shown_right)
            if any(line.get(cut) is None for cut in line_cuts[first_chop:end_chop]):
                wanted.append(y)
        if not wanted:
            continue
        first, last = wanted[0], wanted[-1]
        strips = widget.render_lines(
            Region(left - region.x, first - region.y, width, last + 1 - first)
        )
        for y in wanted:
            if y - first >= len(strips):
                break
            line_cuts = cuts[y]
            inside = line_cuts[bisect_left(line_cuts, left) : bisect_right(line_cuts, right)]
            line = chops[y]
            pieces = strips[y - first].divide([cut - left for cut in inside[1:]])
            for cut, piece in zip(inside, pieces, strict=False):
                if line.get(cut) is None:
                    line[cut] = piece
    return chops  # type: ignore[return-value]
