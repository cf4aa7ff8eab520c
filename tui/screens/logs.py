"""Logs: the containers' output (follow, search, filter) once the engine runs the stack."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from tui.screens.base import ModeScreen

NO_LOGS = (
    "The stack is not running — no logs yet.\n\n"
    "When it runs, the inference (llama-server) and api-gateway (LiteLLM) logs stream here."
)


class LogsScreen(ModeScreen):
    MODE = "logs"
    SUB_TITLE = "Logs"

    def compose_body(self) -> ComposeResult:
        with Vertical(id="logs"):
            yield Static(NO_LOGS, id="logs-empty", classes="empty-state", markup=False)
