"""Strips that never keep themselves in their own caches (Textual 8.2.8).

`Strip.divide` caches its answer on the strip, and when there is nothing to cut (a line
no other widget overlaps: nearly every line the compositor draws) that answer is
``[self]``. The same goes for `Strip.crop_extend` when the strip already has the asked-for
extent. A strip holding itself is a reference cycle: it and its seven caches, its segments
and their styles are freed only by the cyclic collector, never when the last frame that
used them goes. In a log flood that was thousands of objects a frame, collections every
second or so of 20-30 ms each on the app's loop, most of them spent freeing those strips.

`install()` wraps both methods so that a strip that is its own answer is returned without
being cached (the cache still holds every answer that is a new strip). Same results, same
objects; only the self-references are gone, so refcounting frees strips as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache

from rich.style import Style
from textual.strip import Strip


@cache  # once: a second call changes nothing
def install() -> None:
    divide = Strip.divide
    crop_extend = Strip.crop_extend

    def divide_without_cycles(self: Strip, cuts: Iterable[int]) -> Sequence[Strip]:
        length = self.cell_length
        cuts = [cut for cut in cuts if cut <= length]
        if cuts == [length]:
            return [self]  # what `divide` answers (and would keep, holding itself)
        return divide(self, cuts)

    def crop_extend_without_cycles(self: Strip, start: int, end: int, style: Style | None) -> Strip:
        strip = crop_extend(self, start, end, style)
        if strip is self:
            self._crop_extend_cache._cache.pop((start, end, style), None)
        return strip

    Strip.divide = divide_without_cycles  # type: ignore[method-assign]
    Strip.crop_extend = crop_extend_without_cycles  # type: ignore[method-assign]
