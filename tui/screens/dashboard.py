"""Dashboard: the stack's services, the GPU, what is ready, and the keys that run it all.

The stack panel (status poll + engine events) and the GPU panel (the app's one sampler)
run their loops only while the dashboard shows: they stop when another screen shows (or a dialog
covers this one) and start again when it comes back. Stack operations (u, d, R) run in
their own worker and keep running whatever shows; their progress lands in the operation
panel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.worker import Worker, WorkerState, get_current_worker

from stack.cancel import CancelToken
from stack.doctor import Check, Status
from stack.errors import LlmTuiError
from stack.settings import Settings
from tui.commands import bindings
from tui.mailbox import Mailbox, newest
from tui.screens.base import ModeScreen
from tui.screens.dialogs import ConfirmScreen, PickServiceScreen
from tui.services import Progress, StackEngine
from tui.widgets.checklist import Checklist
from tui.widgets.gpu_panel import GpuPanel
from tui.widgets.operation_panel import OperationPanel, line_key, outcome_line
from tui.widgets.service_card import ServiceCard
from tui.widgets.stack_panel import StackPanel

if TYPE_CHECKING:
    from stack.engine import UpResult

Job = Callable[[StackEngine, Progress, CancelToken], str]


@dataclass(frozen=True)
class Operation:
    """A stack operation as the user sees it: while it runs, when it worked, when not."""

    running: str  # "Starting the stack"
    done: str  # notification title on success
    failed: str  # notification title on failure
    job: Job


GATEWAY_CLAUSE = "; the gateway is "  # ends an up's summary: the notice says it, not the edge


def up_summary(result: UpResult, settings: Settings) -> str:
    started = len(result.created) + len(result.recreated)
    head = (
        f"Stack up: {started} started, {len(result.kept)} unchanged"
        if started
        else "The stack was already up to date"
    )
    return f"{head}{GATEWAY_CLAUSE}{settings.gateway_url}"


class DashboardScreen(ModeScreen):
    MODE = "dashboard"
    SUB_TITLE = "Dashboard"
    BINDINGS = bindings("dashboard")
    AUTO_FOCUS = "ServiceCard"
    SELF_REPORTED: ClassVar[frozenset[str]] = frozenset({"stack-op"})

    @dataclass
    class ChecksFinished(Message):
        checks: list[Check]

    class OperationProgress(Message):
        """Progress lines wait in the operation mailbox."""

    @dataclass
    class OperationDone(Message):
        operation: Operation
        summary: str
        settings: Settings | None = None  # the engine's, when the operation wrote .env

    def __init__(self) -> None:
        super().__init__()
        self._pending_checks: list[Check] | None = None
        self._checks: list[Check] | None = None
        # A line replaces the older one about the same thing (see OperationPanel).
        self._progress: Mailbox[str] = Mailbox(
            self, self.OperationProgress, compact=partial(newest, key=line_key)
        )
        self._operation: Operation | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="dashboard"):
            yield StackPanel(self.settings, id="stack-panel")
            yield OperationPanel(id="operation")
            yield GpuPanel(id="gpu-panel")
            yield Checklist(id="checklist")

    @property
    def stack_panel(self) -> StackPanel:
        return self.query_one(StackPanel)

    def on_mount(self) -> None:
        # After the first paint: the checks' thread imports docker and httpx, and would
        # hold the interpreter while the dashboard is being drawn.
        self.call_after_refresh(self.call_after_refresh, self.action_recheck)
        self.llm_app.stack_operation_began.subscribe(self, self._outcome_outdated)

    def _outcome_outdated(self, what: str) -> None:
        """An operation began, here or elsewhere (a swap from the palette or the Models
        screen, a tune): the last one's outcome on the stack panel's edge no longer says how
        the stack is."""
        self.query_one(StackPanel).border_subtitle = None

    # --- visibility: the loops run only while the dashboard shows -----------------------

    def on_screen_resume(self) -> None:
        if self._pending_checks is not None:
            self.query_one(Checklist).show(self._pending_checks)
            self._pending_checks = None
        self.call_after_refresh(self._activate)  # drawn first, then polled (see on_mount)

    def _activate(self, again: bool = True) -> None:
        if again:  # the first refresh may come before the screen's widgets are laid out
            self.call_after_refresh(self._activate, False)
        elif self.is_current:
            self.stack_panel.activate()
            self.query_one(GpuPanel).activate()

    def on_screen_suspend(self) -> None:
        self.stack_panel.deactivate()
        self.query_one(GpuPanel).deactivate()

    def on_stack_panel_changed(self, message: StackPanel.Changed) -> None:
        self.llm_app.gpu_feed.note_statuses(message.statuses)
        self.show_checks()

    # --- getting-started checks ---------------------------------------------------------

    def action_open_guide(self) -> None:
        from tui.screens.guide import open_guide

        open_guide(self.app)

    def action_recheck(self) -> None:
        self._pending_checks = None
        self._checks = None
        self.query_one(Checklist).show(None)
        self.run_checks(self.settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="doctor")
    def run_checks(self, settings: Settings) -> None:
        checks = self.llm_app.services.run_checks(settings)
        if not get_current_worker().is_cancelled:  # a newer run replaced this one
            self.post_message(self.ChecksFinished(checks))

    def on_dashboard_screen_checks_finished(self, message: ChecksFinished) -> None:
        self._checks = message.checks
        self.show_checks()

    def show_checks(self) -> None:
        if self._checks is None:
            return
        checks = self._checks
        if self.is_current:
            self.query_one(Checklist).show(checks)
            self._place_checklist(checks)
        else:
            # Recomposing a hidden screen stalls the visible one's updates: wait until shown.
            self._pending_checks = checks

    def _place_checklist(self, checks: Sequence[Check]) -> None:
        """While something fails, the checklist goes first: it says what to do."""
        failing = any(check.status is Status.FAIL for check in checks)
        container = self.query_one("#dashboard")
        checklist = self.query_one(Checklist)
        if failing and container.children[0] is not checklist:
            container.move_child(checklist, before=0)
        elif not failing and container.children[-1] is not checklist:
            container.move_child(checklist, after=container.children[-1])

    # --- stack operations ---------------------------------------------------------------

    def action_start_stack(self) -> None:
        def up(engine: StackEngine, progress: Progress, cancel: CancelToken) -> str:
            return up_summary(engine.up(progress=progress, cancel=cancel), engine.settings)

        self.run_operation(
            Operation("Starting the stack", "Stack started", "Could not start the stack", up)
        )

    def action_stop_stack(self) -> None:
        panel = self.stack_panel
        running = [s.name for s in panel.statuses or [] if s.state != "missing"]
        if panel.statuses is not None and not running and not panel.engine_problem:
            self.notify("The stack is not running.", title="Nothing to stop")
            return
        names = ", ".join(running) if running else "the stack's containers"
        question = (
            f"Stop and remove {names}?\n\n"
            "IDEs lose the gateway until you start it again (u). Models and settings stay."
        )
        dialog = ConfirmScreen("Stop the stack", question, "Stop", id="confirm-stop")
        self.app.push_screen(dialog, self._stop_confirmed)

    def _stop_confirmed(self, yes: bool | None) -> None:
        if not yes:
            return

        def down(engine: StackEngine, progress: Progress, cancel: CancelToken) -> str:
            removed = engine.down(progress=progress, cancel=cancel)
            if not removed:
                return "Nothing was running"
            return f"Stack stopped: removed {', '.join(removed)}"

        self.run_operation(
            Operation("Stopping the stack", "Stack stopped", "Could not stop the stack", down)
        )

    def action_restart_service(self) -> None:
        roles = [s.role for s in self.stack_panel.statuses or [] if s.state != "missing"]
        if not roles:
            self.notify(
                "No service to restart: start the stack with u.", title="Nothing to restart"
            )
            return
        selected = self.focused.role if isinstance(self.focused, ServiceCard) else None
        dialog = PickServiceScreen("Restart which service?", roles, selected)
        self.app.push_screen(dialog, self._restart_picked)

    def restart_role(self, role: str) -> None:
        """Restart ``role`` without asking which (the palette's "Restart <service>")."""
        self._restart_picked(role)

    def _restart_picked(self, role: str | None) -> None:
        if role is None:
            return

        def restart(engine: StackEngine, progress: Progress, cancel: CancelToken) -> str:
            engine.restart(role, progress=progress, cancel=cancel)
            return f"{role} restarted"

        self.run_operation(
            Operation(f"Restarting {role}", "Restarted", f"Could not restart {role}", restart)
        )

    async def action_show_logs(self) -> None:
        role = self.focused.role if isinstance(self.focused, ServiceCard) else "inference"
        await self.app.switch_mode("logs")
        select = getattr(self.app.screen, "select_service", None)  # the Logs screen's
        if select is not None:
            select(role)

    def run_operation(self, operation: Operation) -> None:
        if not self.llm_app.begin_stack_operation(operation.running.lower()):
            return
        self._operation = operation
        self._progress.take()
        self.query_one(OperationPanel).start(operation.running)  # its edge: _outcome_outdated
        self.operate(self.llm_app.engine, operation, self.llm_app.cancel_token())

    @work(thread=True, exclusive=True, exit_on_error=False, group="stack-op")
    def operate(self, engine: StackEngine, operation: Operation, cancel: CancelToken) -> None:
        summary = operation.job(engine, self._progress.put_one, cancel)
        self.post_message(self.OperationDone(operation, summary, engine.settings))

    def on_dashboard_screen_operation_progress(self, message: OperationProgress) -> None:
        self.query_one(OperationPanel).add(self._progress.take())

    def on_dashboard_screen_operation_done(self, message: OperationDone) -> None:
        engine = self.llm_app.engine
        if (
            engine.settings is not self.settings
            and engine.settings.env_file == self.settings.env_file
        ):
            self.llm_app.update_settings(engine.settings)  # e.g. `up` wrote a missing key
        panel = self.query_one(OperationPanel)
        panel.add(self._progress.take())
        panel.finish(True, message.summary)
        # The notice says it all; the outcome stays on the stack panel's edge, in no row of
        # its own: at 80x24 the panel's rows are the GPU charts'.
        panel.display = False
        head = message.summary.partition(GATEWAY_CLAUSE)[0]  # the URL is on the panel
        short = outcome_line(True, head, panel.elapsed_s)
        self.query_one(StackPanel).border_subtitle = short
        self.notify(message.summary, title=message.operation.done, markup=False)

    def _operation_failed(self, worker: Worker[None]) -> None:
        error = worker.error
        text = error.message if isinstance(error, LlmTuiError) else f"{error}"
        panel = self.query_one(OperationPanel)
        panel.add(self._progress.take())
        panel.finish(False, text.splitlines()[0] if text else "failed")
        title = self._operation.failed if self._operation else None
        self.llm_app.report_worker_error(worker, title=title)

    # --- worker lifecycles --------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        group, state = event.worker.group, event.state
        if group == "doctor" and state is WorkerState.ERROR:
            failed = Check("checks", Status.FAIL, f"the checks failed: {event.worker.error}")
            self._checks = [failed]
            self.show_checks()
        elif group == "stack-op" and event.worker.is_finished:
            if state is WorkerState.ERROR:
                self._operation_failed(event.worker)
            self.llm_app.end_stack_operation()
            self.stack_panel.poll_now()
            self.run_checks(self.settings)  # ports and images may read differently now

    def settings_changed(self, settings: Settings) -> None:
        self.stack_panel.settings_changed(settings)
        self.action_recheck()
