"""Drawn strips are freed when the last frame lets go of them, not by the cyclic collector:
`tui.strip_cycles` keeps a strip out of its own caches and changes no answer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from tui import strip_cycles


@pytest.fixture
def no_collections() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def line(n: int) -> Strip:
    return Strip([Segment(f"line {n:>4} ", Style(bold=True)), Segment("text", None)], 14)


def test_answers_are_the_same_and_nothing_holds_itself(no_collections: None) -> None:
    strip_cycles.install()
    strip_cycles.install()  # once is enough; twice changes nothing
    made = [line(n) for n in range(200)]
    for strip in made:
        assert strip.divide([14]) == [strip]
        assert strip.divide([14, 20]) == [strip]  # cuts past the end are dropped, as before
        assert strip.crop_extend(0, 14, None) is strip
        halves = strip.divide([5, 14])
        assert [half.text for half in halves] == [strip.text[:5], strip.text[5:]]
        wider = strip.crop_extend(0, 20, None)
        assert wider.text == strip.text + " " * 6 and strip.crop_extend(0, 20, None) is wider
    del made, strip, halves, wider
    assert gc.collect() == 0  # nothing was left for the collector: refcounts freed it all
