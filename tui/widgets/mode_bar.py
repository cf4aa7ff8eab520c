"""The row under the header that names the modes and their number keys."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from tui.commands import MODES


class ModeBar(Static):
    """`1 Dashboard  2 Models …` with the current mode highlighted; clicking switches."""

    def __init__(self, current: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.current = current

    def on_mount(self) -> None:
        self.update(self.render_modes())

    def render_modes(self) -> Content:
        parts: list[Content] = []
        for mode in MODES:
            click = f"@click=app.go('{mode.name}')"
            if mode.name == self.current:
                tab = Content.styled(f" {mode.key} {mode.title} ", f"bold reverse {click}")
            else:
                tab = Content.assemble(
                    (f" {mode.key}", f"bold $accent {click}"), (f" {mode.title} ", click)
                )
            parts.append(tab)
        return Content(" ").join(parts)
