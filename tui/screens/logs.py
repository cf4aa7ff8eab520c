"""Logs: follow one service's container output (switch with [ ]), filter with /.

A thread worker reads the container's log stream in batches and drops them in a mailbox;
the app loop writes whatever piled up in one `write_lines`. The stream is closed as soon as
the pane is hidden or switched to another service, and opened again (from the last
LOG_TAIL lines) when it shows. A container that stops ends its stream: the pane says so,
and picks the logs up again when the service runs once more.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Log, Static, Tab, Tabs
from textual.worker import Worker, WorkerState

from stack.engine.connection import EngineUnavailable
from stack.engine.logs import LogLine
from stack.errors import LlmTuiError
from stack.settings import Settings
from tui.commands import bindings
from tui.mailbox import Mailbox, StreamHandle
from tui.screens.base import ModeScreen
from tui.services import LogSource, StackEngine
from tui.widgets.service_card import service_roles

MAX_LINES = 10_000
RECHECK_S = 3.0  # while a stopped service is watched for a restart
START_HINT = "Start the stack with u on the Dashboard (1)."


def clock(stamp: str, offset: int) -> str:
    """``2025-01-02T13:04:05.123Z`` → ``15:04:05`` in local time (``offset`` from UTC)."""
    try:
        seconds = int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])
    except ValueError:
        return ""
    seconds = (seconds + offset) % 86400
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def format_lines(lines: Iterable[LogLine], offset: int) -> list[str]:
    return [
        f"{clock(line.timestamp, offset)}  {line.text}" if line.timestamp else line.text
        for line in lines
    ]


def dropped_note(count: int, role: str) -> str:
    return f"── {count:,} lines dropped: {role} wrote them faster than this pane could show ──"


def matches(line: str, text: str) -> bool:
    return text in line.lower()


class LogsScreen(ModeScreen):
    MODE = "logs"
    SUB_TITLE = "Logs"
    BINDINGS = bindings("logs")
    AUTO_FOCUS = "#logs-view"
    SELF_REPORTED: ClassVar[frozenset[str]] = frozenset({"logs-follow", "logs-recheck"})

    class LinesArrived(Message):
        """New lines wait in ``mailbox``."""

        def __init__(self, mailbox: Mailbox[str]) -> None:
            super().__init__()
            self.mailbox = mailbox

    @dataclass
    class FollowStarted(Message):
        mailbox: Mailbox[str]
        started_at: str  # the container's start time: a change means it was restarted

    @dataclass
    class FollowEnded(Message):
        mailbox: Mailbox[str]

    @dataclass
    class FollowFailed(Message):
        mailbox: Mailbox[str]
        text: str

    @dataclass
    class Restarted(Message):
        role: str

    def __init__(self) -> None:
        super().__init__()
        self.role = "inference"
        self.lines: deque[str] = deque(maxlen=MAX_LINES)
        self.dropped = 0  # lines the container wrote faster than the pane could take them
        self.filter_text = ""
        self.following = False
        self._offset = time.localtime().tm_gmtoff
        self._handle: StreamHandle[LogSource] | None = None
        self._mailbox: Mailbox[str] | None = None
        self._started_at = ""
        self._recheck: Timer | None = None
        self._state = ""  # what the status line says about the stream

    def compose_body(self) -> ComposeResult:
        with Vertical(id="logs"):
            yield Tabs(
                *(Tab(role, id=f"logs-tab-{role}") for role in service_roles(self.settings)),
                id="logs-tabs",
            )
            yield Static("", id="logs-status", markup=False)
            yield Log(max_lines=MAX_LINES, highlight=False, id="logs-view")
            yield Static("", id="logs-empty", classes="empty-state", markup=False)
            yield Input(
                placeholder="Show lines containing… (Enter keeps it, Esc clears)", id="logs-filter"
            )

    def on_mount(self) -> None:
        self.query_one("#logs-filter").display = False
        self.query_one("#logs-empty").display = False

    # --- visibility ---------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.start_following()

    def on_screen_suspend(self) -> None:
        self.stop_following()

    def on_unmount(self) -> None:
        self.stop_following()

    # --- following ----------------------------------------------------------------------

    def start_following(self) -> None:
        """Open the current service's logs from the last LOG_TAIL lines."""
        self.stop_following()
        self.lines.clear()
        self.dropped = 0
        log = self.query_one(Log)
        log.clear()
        self._handle = StreamHandle()
        self.llm_app.track_stream(self._handle)
        # No more waits than the pane shows: older lines would scroll out of it anyway.
        mailbox: Mailbox[str] = Mailbox(self, lambda: self.LinesArrived(mailbox), limit=MAX_LINES)
        self._mailbox = mailbox
        self._state = "connecting…"
        self.show_empty("")
        self.show_status()
        self.follow(self.llm_app.engine, self.role, self._handle, mailbox)

    def stop_following(self) -> None:
        if self._recheck is not None:
            self._recheck.stop()
            self._recheck = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._mailbox = None
        self.following = False
        for worker in self.workers:
            if worker.group in ("logs-follow", "logs-recheck"):
                worker.cancel()

    @work(thread=True, exclusive=True, exit_on_error=False, group="logs-follow")
    def follow(
        self,
        engine: StackEngine,
        role: str,
        handle: StreamHandle[LogSource],
        mailbox: Mailbox[str],
    ) -> None:
        try:
            started_at = next((s.started_at for s in engine.status() if s.role == role), "")
            container = engine.container_for(role)
        except EngineUnavailable as error:
            fix = f"\n\n→ {error.fix}" if error.fix else ""
            self.post_message(self.FollowFailed(mailbox, f"{error.message}{fix}"))
            return
        except LlmTuiError as error:
            if "does not exist" in error.message:
                text = f"{role} is not running: its container does not exist.\n\n{START_HINT}"
            else:
                text = error.message + (f"\n\n→ {error.fix}" if error.fix else "")
            self.post_message(self.FollowFailed(mailbox, text))
            return
        source = self.llm_app.services.follow_logs(container)
        if not handle.attach(source):
            return
        self.post_message(self.FollowStarted(mailbox, started_at))
        offset = self._offset
        for batch in source.batches():
            if handle.closed:
                return
            mailbox.put(format_lines(batch, offset))  # here, not on the app loop
        if not handle.closed:
            self.post_message(self.FollowEnded(mailbox))

    def on_logs_screen_follow_started(self, message: FollowStarted) -> None:
        if message.mailbox is self._mailbox:
            self._started_at = message.started_at
            self.following = True
            self._state = ""
            self.show_status()

    def on_logs_screen_lines_arrived(self, message: LinesArrived) -> None:
        if message.mailbox is not self._mailbox:
            return  # lines of a stream closed since
        lines, dropped = message.mailbox.drain()
        if dropped:
            self.dropped += dropped
            lines = [dropped_note(dropped, self.role), *lines]
        self.lines.extend(lines)
        if self.filter_text:
            lines = [line for line in lines if matches(line, self.filter_text)]
        if lines:
            self.query_one(Log).write_lines(lines)
        self.show_status()

    def on_logs_screen_follow_ended(self, message: FollowEnded) -> None:
        if message.mailbox is not self._mailbox:
            return
        self.on_logs_screen_lines_arrived(self.LinesArrived(message.mailbox))
        self.following = False
        stopped = f"── {self.role} stopped; its logs continue here when it runs again ──"
        self.lines.append(stopped)
        self.query_one(Log).write_line(stopped)
        self._state = "stopped"
        self.show_status()
        self._recheck = self.set_timer(RECHECK_S, self.check_restarted)

    def on_logs_screen_follow_failed(self, message: FollowFailed) -> None:
        if message.mailbox is not self._mailbox:
            return
        self._state = "not available"
        self.show_status()
        self.show_empty(message.text)
        self._recheck = self.set_timer(RECHECK_S, self.check_restarted)

    def check_restarted(self) -> None:
        self._recheck = None
        if self.is_current:
            self.watch_for_restart(self.llm_app.engine, self.role, self._started_at)

    @work(thread=True, exclusive=True, exit_on_error=False, group="logs-recheck")
    def watch_for_restart(self, engine: StackEngine, role: str, started_at: str) -> None:
        status = next((s for s in engine.status() if s.role == role), None)
        if status is not None and status.state == "running" and status.started_at != started_at:
            self.post_message(self.Restarted(role))

    def on_logs_screen_restarted(self, message: Restarted) -> None:
        if message.role == self.role and self.is_current:
            self.start_following()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "logs-recheck" and worker.is_finished:
            # Nothing new yet (or the engine is away): look again in a while.
            if self.is_current and not self.following and self._recheck is None:
                self._recheck = self.set_timer(RECHECK_S, self.check_restarted)
        elif worker.group == "logs-follow" and event.state is WorkerState.ERROR:
            if worker.is_cancelled:
                return
            self.following = False
            self._state = "failed"
            self.show_status()
            self.show_empty(f"Reading the {self.role} logs failed: {worker.error}")

    # --- services -----------------------------------------------------------------------

    def select_service(self, role: str) -> None:
        """Show ``role``'s logs (the Dashboard's l key lands here)."""
        tabs = self.query_one(Tabs)
        wanted = f"logs-tab-{role}"  # compared, not queried: a role is no safe selector
        if any(tab.id == wanted for tab in tabs.query(Tab)):
            tabs.active = wanted  # TabActivated does the rest

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        role = (event.tab.id or "").removeprefix("logs-tab-")
        if role and role != self.role:
            self.role = role
            if self.is_current:
                self.start_following()

    def action_switch_service(self, step: int) -> None:
        tabs = self.query_one(Tabs)
        if step > 0:
            tabs.action_next_tab()
        else:
            tabs.action_previous_tab()

    # --- follow, filter, clear ----------------------------------------------------------

    def action_toggle_follow(self) -> None:
        log = self.query_one(Log)
        log.auto_scroll = not log.auto_scroll
        if log.auto_scroll:
            log.scroll_end(animate=False)
        self.show_status()

    def action_open_filter(self) -> None:
        field = self.query_one("#logs-filter", Input)
        field.display = True
        field.value = self.filter_text
        field.focus()

    def action_close_filter(self) -> None:
        field = self.query_one("#logs-filter", Input)
        field.display = False
        field.value = ""
        self.apply_filter("")
        self.query_one(Log).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "logs-filter":
            event.stop()
            self.apply_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "logs-filter":
            event.stop()
            if not event.value:
                event.input.display = False
            self.query_one(Log).focus()

    def apply_filter(self, text: str) -> None:
        text = text.strip().lower()
        if text == self.filter_text:
            return
        self.filter_text = text
        log = self.query_one(Log)
        log.clear()
        shown = [line for line in self.lines if matches(line, text)] if text else self.lines
        log.write_lines(shown, scroll_end=True)
        self.show_status()

    def action_clear_logs(self) -> None:
        self.lines.clear()
        self.query_one(Log).clear()
        self.show_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        typing = isinstance(self.focused, Input)
        if action == "close_filter":
            return typing or bool(self.filter_text)
        if action in ("toggle_follow", "open_filter", "clear_logs", "switch_service"):
            return not typing
        return True

    # --- what the pane says -------------------------------------------------------------

    def show_status(self) -> None:
        parts = [f"{self.role}"]
        if self._state:
            parts.append(self._state)
        elif self.following:
            parts.append("following" if self.query_one(Log).auto_scroll else "paused (f follows)")
        count = len(self.lines)
        parts.append(f"{count:,} line{'s' if count != 1 else ''}")
        if self.dropped:
            parts.append(f"{self.dropped:,} lines dropped (written faster than shown)")
        if self.filter_text:
            shown = self.query_one(Log).line_count
            parts.append(f"filter “{self.filter_text}”: {shown:,} shown")
        self.query_one("#logs-status", Static).update("  ·  ".join(parts))

    def show_empty(self, text: str) -> None:
        empty = self.query_one("#logs-empty", Static)
        empty.update(text)
        empty.display = bool(text)
        self.query_one(Log).display = not text

    def settings_changed(self, settings: Settings) -> None:
        tabs = self.query_one(Tabs)
        wanted = service_roles(settings)
        have = [(tab.id or "").removeprefix("logs-tab-") for tab in tabs.query(Tab)]
        if have != wanted:
            tabs.clear()
            for role in wanted:
                tabs.add_tab(Tab(role, id=f"logs-tab-{role}"))
            if self.role not in wanted:
                self.role = wanted[0]
            tabs.active = f"logs-tab-{self.role}"
        self.start_following()  # STACK_NAME or the containers may have changed
