"""What a command is: a key binding and a palette entry for one action, and the modes."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

APP = "app"


@dataclass(frozen=True)
class Mode:
    """One of the screens the number keys switch between."""

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
    Mode("gpu", "GPU", "7"),
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
    everywhere: bool = False  # in the palette on every screen (it switches to its own)

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


def go_command(mode: Mode) -> Command:
    return Command(
        id=f"go.{mode.name}",
        key=mode.key,
        action=f"app.go('{mode.name}')",
        description=mode.title,
        title=f"Go to {mode.title}",
        help=f"Switch to the {mode.title} screen",
        show=False,  # the mode bar under the header shows these keys
    )
