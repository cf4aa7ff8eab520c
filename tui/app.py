"""The Textual app: six modes, one command table, settings shared through a signal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import App
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.widgets import HelpPanel
from textual.worker import Worker

from stack.errors import LlmTuiError
from stack.settings import Settings
from tui.commands import APP, CommandTableProvider, bindings
from tui.screens.chat import ChatScreen
from tui.screens.connect import ConnectScreen
from tui.screens.dashboard import DashboardScreen
from tui.screens.logs import LogsScreen
from tui.screens.models import ModelsScreen
from tui.screens.settings import SettingsScreen
from tui.services import Services

WORKER_TITLES = {
    "doctor": "Checks failed",
    "models-scan": "Could not list models",
    "settings-write": "Could not save the setting",
}

# Actions that make no sense while a dialog is open (it would be left behind, or lost).
BLOCKED_IN_DIALOGS = {"go", "quit"}


class LlmTuiApp(App[int]):
    """llm-tui: dashboard, models, logs, chat, settings and connection help."""

    CSS_PATH = "app.tcss"
    TITLE = "llm-tui"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "dashboard": DashboardScreen,
        "models": ModelsScreen,
        "logs": LogsScreen,
        "chat": ChatScreen,
        "settings": SettingsScreen,
        "connect": ConnectScreen,
    }
    COMMANDS = App.COMMANDS | {CommandTableProvider}
    BINDINGS = bindings(APP)

    def __init__(
        self, settings: Settings, services: Services, *, started_at: float | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.services = services
        self.settings_changed: Signal[Settings] = Signal(self, "settings-changed")
        self._started_at = time.perf_counter() if started_at is None else started_at

    def on_mount(self) -> None:
        self.switch_mode("dashboard")

    def on_ready(self) -> None:
        elapsed = (time.perf_counter() - self._started_at) * 1000
        self.log.info(f"llm-tui ready in {elapsed:.0f} ms")

    def update_settings(self, settings: Settings) -> None:
        """`.env` was written: every screen redraws from the new settings."""
        self.settings = settings
        self.settings_changed.publish(settings)

    def action_go(self, mode: str) -> None:
        self.switch_mode(mode)

    def action_exit_now(self) -> None:
        self.exit()

    def action_toggle_help(self) -> None:
        try:
            self.screen.query_one(HelpPanel)
        except NoMatches:
            self.action_show_help_panel()
        else:
            self.action_hide_help_panel()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in BLOCKED_IN_DIALOGS and isinstance(self.screen, ModalScreen))

    def report_worker_error(self, worker: Worker[object]) -> None:
        """The one place worker failures go: a notification that says what to do."""
        error = worker.error
        if isinstance(error, LlmTuiError):
            message = error.message + (f"\nFix: {error.fix}" if error.fix else "")
        else:
            message = f"{type(error).__name__}: {error}"
        self.log.error(f"worker {worker.name!r} failed: {error!r}")
        self.notify(
            message,
            title=WORKER_TITLES.get(worker.group, f"{worker.name} failed"),
            severity="error",
            timeout=15,
            markup=False,
        )
