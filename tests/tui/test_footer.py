"""The footer: Textual's, its keys made in the style they end with (tui.widgets.footer)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer as TextualFooter
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from tests.tui.helpers import settle
from tui.widgets.footer import Footer

pytestmark = [pytest.mark.tui, pytest.mark.anyio]


class Keys(App[None]):
    BINDINGS = [
        Binding("u", "noop('up')", "Up"),
        Binding("d", "noop('down')", "Down"),
        Binding("R", "noop('restart')", "Restart"),
    ]

    def __init__(self, footer: type[TextualFooter], *, compact: bool) -> None:
        super().__init__()
        self.footer, self.compact = footer, compact
        self.restyled: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("body")
        yield self.footer(compact=self.compact)

    def action_noop(self, what: str) -> None:
        pass

    def update_styles(self, node: Any, animate: bool = True) -> None:
        if isinstance(node, FooterKey):
            self.restyled.append(node.key)
        super().update_styles(node, animate)


def drawn(app: Keys) -> list[tuple[str, bool, str]]:
    """Each key: its key, whether it is compact, and its text as drawn."""
    return [
        (key.key, key.has_class("-compact"), "".join(s.text for s in key.render_line(0)))
        for key in app.screen.query(FooterKey)
    ]


@pytest.mark.parametrize("compact", [False, True])
async def test_the_footer_draws_what_textuals_draws_without_restyling_its_keys(
    compact: bool,
) -> None:
    pictures = []
    for footer in (TextualFooter, Footer):
        app = Keys(footer, compact=compact)
        async with app.run_test(size=(80, 5)):
            await settle(app)
            keys = list(app.screen.query(FooterKey))
            assert [key.key for key in keys] == ["u", "d", "R", "ctrl+p"]
            # A key's class says what its value says (Textual's watcher would keep them so).
            assert all(key.has_class("-compact") == key.compact for key in keys)
            pictures.append((drawn(app), app.restyled))
    (theirs, their_restyles), (ours, our_restyles) = pictures
    assert ours == theirs
    # Textual's keys get their class on mount, and a non-compact footer's keys lose it
    # again: one restyle each, or two. Ours are made in their final style; the palette's
    # key, not bound to the footer, keeps Textual's one restyle.
    assert their_restyles.count("u") == (1 if compact else 2)
    assert [key for key in our_restyles if key != "ctrl+p"] == []
