"""Dashboard: what is ready, what to do next, and where the gateway will listen."""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker

from stack.doctor import Check, Status
from stack.settings import Settings
from tui.commands import bindings
from tui.screens.base import ModeScreen
from tui.widgets.checklist import Checklist

NO_MODEL = "none — press 2 to pick one"
STACK_NOT_RUNNING = "stack not running — `u` to start will come with the engine"


def stack_summary(settings: Settings) -> Content:
    """Gateway URL, models and stack state, one labelled line each."""
    rows = [
        ("Gateway", settings.gateway_url),
        ("Chat model", settings.chat_model or NO_MODEL),
    ]
    if settings.has_code_model:
        rows.append(("Code model", settings.code_model))
    rows.append(("Status", STACK_NOT_RUNNING))
    width = max(len(label) for label, _ in rows) + 2
    lines = [Content.assemble((label.ljust(width), "bold"), value) for label, value in rows]
    return Content("\n").join(lines)


class DashboardScreen(ModeScreen):
    MODE = "dashboard"
    SUB_TITLE = "Dashboard"
    BINDINGS = bindings("dashboard")

    @dataclass
    class ChecksFinished(Message):
        checks: list[Check]

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="dashboard"):
            yield Checklist(id="checklist")
            yield Static(stack_summary(self.settings), id="stack-summary")

    def __init__(self) -> None:
        super().__init__()
        self._pending_checks: list[Check] | None = None

    def on_mount(self) -> None:
        self.query_one("#stack-summary").border_title = "Stack"
        self.action_recheck()

    def action_recheck(self) -> None:
        self._pending_checks = None
        self.query_one(Checklist).show(None)
        self.run_checks(self.settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="doctor")
    def run_checks(self, settings: Settings) -> None:
        checks = self.llm_app.services.run_checks(settings)
        if not get_current_worker().is_cancelled:  # a newer run replaced this one
            self.post_message(self.ChecksFinished(checks))

    def on_dashboard_screen_checks_finished(self, message: ChecksFinished) -> None:
        self.show_checks(message.checks)

    def show_checks(self, checks: list[Check]) -> None:
        if self.is_current:
            self.query_one(Checklist).show(checks)
        else:
            # Recomposing a hidden screen stalls the visible one's updates: wait until shown.
            self._pending_checks = checks

    def on_screen_resume(self) -> None:
        if self._pending_checks is not None:
            self.query_one(Checklist).show(self._pending_checks)
            self._pending_checks = None

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "doctor" and event.state is WorkerState.ERROR:
            failed = Check("checks", Status.FAIL, f"the checks failed: {event.worker.error}")
            self.show_checks([failed])

    def settings_changed(self, settings: Settings) -> None:
        self.query_one("#stack-summary", Static).update(stack_summary(settings))
        self.action_recheck()
