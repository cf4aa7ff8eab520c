"""What a running stack operation (up, down, restart, swap) is doing, line by line.

Progress lines that report on the same thing (one image layer, one container) replace
each other, so a pull shows one line per layer instead of thousands.
"""

from __future__ import annotations

import time

from textual.content import Content
from textual.timer import Timer
from textual.widgets import Static

SHOWN_LINES = 6


def outcome_line(ok: bool, text: str, elapsed_s: float) -> Content:
    """``✓ Stack up: 2 started  (8.3 s)``: how an operation ended, in one line."""
    symbol, colour = ("✓", "$text-success") if ok else ("✗", "$text-error")
    return Content.assemble(
        (f"{symbol} ", f"bold {colour}"), text, (f"  ({elapsed_s:.1f} s)", "$text-muted")
    )


def line_key(line: str) -> str:
    """What a progress line is about: its first two words (``image: layer``, ``starting X``)."""
    return " ".join(line.split(" ", 2)[:2])


class OperationPanel(Static):
    """Hidden until an operation starts; afterwards it keeps the outcome in one line."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.display = False
        self.title = ""
        self.lines: dict[str, str] = {}
        self.outcome: Content | None = None
        self.running = False
        self._started = 0.0
        self.elapsed_s = 0.0  # how long the last operation took
        self._ticker: Timer | None = None

    def start(self, title: str) -> None:
        self.title, self.lines, self.outcome = title, {}, None
        self.running = True
        self._started = time.monotonic()
        self.set_classes("-running")
        self.display = True
        if self._ticker is None:
            self._ticker = self.set_interval(1.0, self._tick)
        else:
            self._ticker.resume()
        self._show()

    def add(self, lines: list[str]) -> None:
        for line in lines:
            key = line_key(line)
            self.lines.pop(key, None)  # moves to the end: the newest line shows last
            self.lines[key] = line
        self._show()

    def finish(self, ok: bool, text: str) -> None:
        self.running = False
        if self._ticker is not None:
            self._ticker.pause()
        self.elapsed_s = time.monotonic() - self._started
        self.outcome = outcome_line(ok, text, self.elapsed_s)
        self.set_classes("-ok" if ok else "-failed")
        if ok:
            self.lines = {}  # the outcome says it all; failures keep their last steps
        self._show()

    def _tick(self) -> None:
        if self.running:
            self._show()

    def _show(self) -> None:
        if self.running:
            elapsed = time.monotonic() - self._started
            head = Content.assemble(
                ("◐ ", "bold $text-warning"), (f"{self.title}…", "bold"), f"  {elapsed:.0f} s"
            )
        else:
            head = self.outcome or Content(self.title)
        body = [
            Content.styled(f"  {line}", "$text-muted")
            for line in list(self.lines.values())[-SHOWN_LINES:]
        ]
        self.update(Content("\n").join([head, *body]))
