"""The one command table: it feeds the key bindings and the command palette alike.

Each `Command` becomes a `Binding` (with a stable id, so users can remap it with a keymap)
on the app, a screen or a widget, and a palette entry. Actions that start with ``screen.``
run on the screen the palette was opened from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider

APP = "app"


@dataclass(frozen=True)
class Mode:
    """One of the six screens the number keys switch between."""

    name: str  # the key in App.MODES
    title: str
    key: str


MODES: tuple[Mode, ...] = (
    Mode("dashboard", "Dashboard", "1"),
    Mode("models", "Models", "2"),
    Mode("logs", "Logs", "3"),
    Mode("chat", "Chat", "4"),
    Mode("settings", "Settings", "5"),
    Mode("connect", "Connect", "6"),
)


@dataclass(frozen=True)
class Command:
    """A key binding and a palette entry that run the same action."""

    id: str  # binding id, e.g. "go.models"; keymaps use it
    key: str
    action: str
    description: str  # short, for the footer and the keys panel
    title: str  # the palette entry
    help: str  # tooltip in the footer, help line in the palette
    scope: str = APP  # APP, a mode name, or "<mode>.<widget>" for a widget's own keys
    show: bool = True
    priority: bool = False
    palette: bool = True
    key_display: str | None = None

    def binding(self) -> Binding:
        return Binding(
            self.key,
            self.action,
            self.description,
            show=self.show,
            key_display=self.key_display,
            priority=self.priority,
            tooltip=self.help,
            id=self.id,
        )


def _go(mode: Mode) -> Command:
    return Command(
        id=f"go.{mode.name}",
        key=mode.key,
        action=f"app.go('{mode.name}')",
        description=mode.title,
        title=f"Go to {mode.title}",
        help=f"Switch to the {mode.title} screen",
        show=False,  # the mode bar under the header shows these keys
    )


COMMANDS: tuple[Command, ...] = (
    *(_go(mode) for mode in MODES),
    Command(
        "app.help",
        "question_mark",
        "app.toggle_help",
        "Keys",
        "Show or hide the keys",
        "Show or hide the panel that lists every key",
        key_display="?",
        palette=False,  # the palette's own "Keys" command does this
    ),
    Command(
        "app.quit",
        "q",
        "app.quit",
        "Quit",
        "Quit",
        "Quit llm-tui (the stack keeps running)",
        palette=False,  # the palette's own "Quit" command does this
    ),
    Command(
        "app.force_quit",
        "ctrl+q",
        "app.exit_now",
        "Quit",
        "Quit",
        "Quit llm-tui, even while typing",
        show=False,
        priority=True,
        palette=False,
    ),
    Command(
        "dashboard.recheck",
        "r",
        "screen.recheck",
        "Re-check",
        "Re-run the getting-started checks",
        "Run the settings, Docker, GPU, models, ports and disk checks again",
        scope="dashboard",
    ),
    Command(
        "models.use_chat",
        "enter",
        "screen.use_chat_model",
        "Use for chat",
        "Use the selected model for chat (CHAT_MODEL)",
        "Set CHAT_MODEL to the selected GGUF file; it is served as local-chat",
        scope="models.table",
    ),
    Command(
        "models.rescan",
        "r",
        "screen.rescan",
        "Rescan",
        "Rescan the models folder",
        "List the GGUF files in MODELS_DIR again",
        scope="models",
    ),
    Command(
        "chat.leave_input",
        "escape",
        "screen.leave_input",
        "Leave input",
        "Leave the message input",
        "Stop typing, so single keys (1-6, q, ?) work again",
        scope="chat",
        palette=False,
    ),
    Command(
        "chat.focus_input",
        "i",
        "screen.focus_input",
        "Type",
        "Type a message",
        "Move to the message input",
        scope="chat",
    ),
    Command(
        "settings.edit",
        "enter",
        "screen.edit_selected",
        "Edit",
        "Edit the selected setting",
        "Change the selected .env value (validated before it is written)",
        scope="settings.table",
    ),
    Command(
        "edit.save",
        "ctrl+s",
        "screen.save",
        "Save",
        "Save the setting",
        "Validate the value and write it to .env (Enter in the field does the same)",
        scope="edit",
        palette=False,
    ),
    Command(
        "edit.cancel",
        "escape",
        "screen.cancel",
        "Cancel",
        "Close without saving",
        "Close the dialog; .env is left as it was",
        scope="edit",
        palette=False,
    ),
    Command(
        "settings.secrets",
        "s",
        "screen.toggle_secrets",
        "Show secrets",
        "Show or hide secret settings",
        "Show secret values (master key, HF token) unmasked, or mask them again",
        scope="settings",
    ),
    Command(
        "connect.reveal",
        "s",
        "screen.toggle_key",
        "Show key",
        "Show or hide the gateway key",
        "Show the gateway key (LITELLM_MASTER_KEY) in full, or mask it again",
        scope="connect",
    ),
    Command(
        "connect.copy_key",
        "c",
        "screen.copy_key",
        "Copy key",
        "Copy the gateway key",
        "Copy LITELLM_MASTER_KEY to the clipboard",
        scope="connect",
    ),
    Command(
        "connect.copy_snippet",
        "y",
        "screen.copy_snippet",
        "Copy snippet",
        "Copy the shown connection snippet",
        "Copy the snippet on the current tab, with the real key, to the clipboard",
        scope="connect",
    ),
)


def bindings(scope: str) -> list[BindingType]:
    """The bindings for one scope of the table."""
    return [command.binding() for command in COMMANDS if command.scope == scope]


def _palette_commands(mode: str | None) -> Iterator[Command]:
    for command in COMMANDS:
        if not command.palette:
            continue
        owner = command.scope.partition(".")[0]
        if owner in (APP, mode):
            yield command


class CommandTableProvider(Provider):
    """Palette entries for the app's commands and those of the screen it was opened from."""

    def _entries(self) -> Iterator[tuple[Command, Callable[[], object]]]:
        mode = getattr(self.screen, "MODE", None)
        for command in _palette_commands(mode):
            action = command.action
            run: Callable[[], object]
            if action.startswith("screen."):
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
