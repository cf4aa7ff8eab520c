"""The log pane's lines as strips, made in one pass: cropped to the pane and each segment
with its offset for text selection, as `Strip.crop_extend` then `Strip.apply_offsets` make
them (tui.widgets.log_view draws a flood's lines with these)."""

from __future__ import annotations

from itertools import count
from pickle import dumps

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Spacing

_link_ids = count(1 << 24)  # link ids as rich makes them (a counter, then the hash)

NO_SPACING = Spacing(0, 0, 0, 0)


def is_truecolor(style: Style) -> bool:
    """True where `ANSIToTruecolor` leaves ``style`` (and any sum of such styles) as it is:
    no colour without an RGB triplet (ANSI, standard or default), nothing dim."""
    color, bgcolor = style.color, style.bgcolor
    return (
        (color is None or color.triplet is not None)
        and (bgcolor is None or bgcolor.triplet is not None)
        and not style.dim
    )


def offset_style(style: Style | None, x: int, y: int) -> Style:
    """``style + Style.from_meta({"offset": (x, y)})``, what `Strip.apply_offsets` gives each
    segment for text selection, without rich's meta merge (a style with no meta of its own
    takes the offset's as it is)."""
    if not style:
        return Style.from_meta({"offset": (x, y)})
    if style._meta:
        return style + Style.from_meta({"offset": (x, y)})
    made: Style = Style.__new__(Style)
    made._ansi = None
    made._style_definition = None
    made._color = style._color
    made._bgcolor = style._bgcolor
    made._attributes = style._attributes
    made._set_attributes = style._set_attributes
    made._link = style._link
    made._meta = meta = dumps({"offset": (x, y)})
    made._link_id = f"{next(_link_ids)}{hash(meta)}"
    made._hash = None
    made._null = False
    return made


def offset_segments(
    segments: list[Segment], scroll_x: int, width: int, y: int, pad_style: Style
) -> list[Segment]:
    """One-cell-per-character ``segments`` cropped to ``width`` cells from ``scroll_x``,
    padded with ``pad_style`` to the full width, each with its offset (`offset_style`):
    `Strip.crop_extend` then `Strip.apply_offsets`, in one pass."""
    end = scroll_x + width
    shown: list[Segment] = []
    at = 0  # where the segment starts in the line
    x = scroll_x  # where the next shown piece starts
    for text, style, _ in segments:
        after = at + len(text)
        if after > scroll_x and at < end and text:
            piece = text[max(0, scroll_x - at) : end - at]
            shown.append(Segment(piece, offset_style(style, x, y)))
            x += len(piece)
        at = after
        if at >= end:
            break
    if x < end:
        shown.append(Segment(" " * (end - x), offset_style(pad_style, x, y)))
    return shown
