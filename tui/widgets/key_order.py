"""Text fields that keep keys typed fast in the order they were typed.

In Textual 8.2.8 an `Input` or `TextArea` takes a printable key in its own handler, but a
bound key (Backspace, the arrows, Home/End, ctrl+u, ctrl+w, Enter, Tab) bubbles up through
every container to the App before its action runs. When keys arrive together (a fast
typist, a terminal that sends a burst, a slow SSH link, tmux send-keys), the next letter
goes in while the bound key is still on its way up: "b a ⌫ c" read "ba", and "x y ← z"
read "xyz" (upstream issue #6605).

`KeepsKeyOrder` runs, in the field's own handler, the bindings the App would run for a
key the field did not take: the same chain (the focused widget, its ancestors, the screen
and the App, up to the last modal, with the keymap applied), the same order, only before
the next key is handled instead of after. A key that Tab has just moved the focus away
from is applied where the focus now is, as the App would have done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import textual.command
from textual import events
from textual.widgets import Input as TextualInput

if TYPE_CHECKING:
    from textual.widget import Widget

    _Base = Widget
else:
    _Base = object


class KeepsKeyOrder(_Base):
    """Mixed in *after* a text field's class (``class Input(TextualInput, KeepsKeyOrder)``).

    Textual calls every class's ``_on_key`` along the MRO until one prevents the default:
    the field's own handler runs first (and takes letters), then this one."""

    async def _on_key(self, event: events.Key) -> None:
        if event._stop_propagation:
            return  # taken on the way here
        for namespace, bindings in self.screen._modal_binding_chain:
            for binding in bindings.key_to_bindings.get(event.key, ()):
                if not binding.priority and await self.app.run_action(binding.action, namespace):
                    event.stop()
                    event.prevent_default()
                    return


class Input(TextualInput, KeepsKeyOrder):
    """Textual's `Input`, with its editing keys kept in order with the letters."""


class CommandInput(textual.command.CommandInput, KeepsKeyOrder):
    """The command palette's input, with its editing keys kept in order with the letters."""


def install_in_palette() -> None:
    """Textual's command palette makes its input by this module-level name each time it
    opens (and finds it by it): from now on the palette's is ours."""
    textual.command.CommandInput = CommandInput  # type: ignore[misc]
