"""Textual's footer, its keys made in the style they are drawn in.

Textual's `FooterKey` starts compact and is then bound to its footer's `compact`, so on
mount each key of a non-compact footer gets the `-compact` class and loses it again:
two restyles of every key (and its two component styles), each time the keys are
recomposed, ~1 ms a key on this machine: the largest share of the dashboard's start-up
that was ours to save. Here each key is made with the value and class it ends with, so
neither change happens; what shows is exactly Textual's footer.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer as TextualFooter
from textual.widgets._footer import FooterKey


class Footer(TextualFooter):
    def compose(self) -> ComposeResult:
        for widget in super().compose():
            # Textual binds every key to the footer's style but the palette's (left as it is).
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                widget.set_reactive(FooterKey.compact, self.compact)
                widget.set_class(self.compact, "-compact", update=False)
            yield widget
