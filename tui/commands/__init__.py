"""The one command table: it feeds the key bindings and the command palette alike.

Each `Command` becomes a `Binding` (with a stable id, so users can remap it with a keymap)
on the app, a screen or a widget, and a palette entry. Actions that start with ``screen.``
run on the screen the palette was opened from. The table is kept in parts (the stack,
models, the operating screens, the others); their order is the palette's order. Entries
made from what exists now (each model, each service) come from `dynamic.StackProvider`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.binding import BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.commands import chat_keys, model_keys, operate_keys, screen_keys, stack_keys
from tui.commands.command import APP, MODES, Command, Mode
from tui.commands.dynamic import StackProvider

__all__ = [
    "APP",
    "COMMANDS",
    "MODES",
    "Command",
    "CommandTableProvider",
    "Mode",
    "StackProvider",
    "bindings",
]

COMMANDS: tuple[Command, ...] = (
    *stack_keys.COMMANDS,
    *model_keys.COMMANDS,
    *operate_keys.COMMANDS,
    *screen_keys.COMMANDS,
    *chat_keys.COMMANDS,
)


def bindings(scope: str) -> list[BindingType]:
    """The bindings for one scope of the table."""
    return [command.binding() for command in COMMANDS if command.scope == scope]


def _palette_commands(mode: str | None) -> Iterator[Command]:
    for command in COMMANDS:
        if not command.palette:
            continue
        owner = command.scope.partition(".")[0]
        if owner in (APP, mode) or command.everywhere:
            yield command


class CommandTableProvider(Provider):
    """Palette entries for the app's commands and those of the screen it was opened from."""

    def _entries(self) -> Iterator[tuple[Command, Callable[[], object]]]:
        mode = getattr(self.screen, "MODE", None)
        for command in _palette_commands(mode):
            action = command.action
            run: Callable[[], object]
            owner = command.scope.partition(".")[0]
            if command.everywhere and owner != mode:
                # Another screen's command: switch to that screen, then run it there.
                name = action.removeprefix("screen.")
                run = partial(self.app.run_action, f"app.in_mode({owner!r}, {name!r})")
            elif action.startswith("screen."):
                run = partial(self.app.run_action, action.removeprefix("screen."), self.screen)
            else:
                run = partial(self.app.run_action, action)
            yield command, run

    async def discover(self) -> Hits:
        for command, run in self._entries():
            yield DiscoveryHit(command.title, run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command, run in self._entries():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), run, help=command.help)
