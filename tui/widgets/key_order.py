"""Text fields that keep keys typed fast in the order they were typed.

In Textual 8.2.8 an `Input` or `TextArea` takes a printable key in its own handler, but a
bound key (Backspace, the arrows, Home/End, ctrl+u, ctrl+w, Enter) bubbles up through
every container to the App before its action runs. When keys arrive together (a fast
typist, a terminal that sends a burst, a slow SSH link, tmux send-keys), the next letter
goes in while the bound key is still on its way up: "b a ⌫ c" read "ba", and "x y ← z"
read "xyz" (upstream issue #6605). `KeepsKeyOrder` runs the field's own bindings in the
field's handler instead. The App would have run the same binding first anyway: the
focused widget heads the binding chain, and priority bindings were checked before the key
reached it. A key the field does not bind bubbles on as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.widgets import Input as TextualInput

if TYPE_CHECKING:
    from textual.widget import Widget

    _Base = Widget
else:
    _Base = object


class KeepsKeyOrder(_Base):
    """Mixed in ahead of a text field: its own key bindings run where its letters do."""

    async def _on_key(self, event: events.Key) -> None:
        await super()._on_key(event)  # letters (and the field's own special keys)
        if event._stop_propagation or event._no_default_action:
            return  # taken by the field itself
        for namespace, bindings in self.screen._modal_binding_chain:
            if namespace is not self:
                continue  # the keymap is applied to this chain, as for the App's lookup
            for binding in bindings.key_to_bindings.get(event.key, ()):
                if not binding.priority and await self.app.run_action(binding.action, self):
                    event.stop()
                    event.prevent_default()
                    return
            return


class Input(KeepsKeyOrder, TextualInput):
    """Textual's `Input`, with its editing keys kept in order with the letters."""
