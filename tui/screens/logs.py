"""Logs: follow one service's container output, or every service's interleaved.

`/` searches (matches highlighted, n / N jump between them); `&` filters (only matching
lines show); both take plain text or a regex (ctrl+r) and ignore case unless asked
(ctrl+t). `p` pauses the pane while lines keep arriving, `s` saves it to a file, `f`
follows, and scrolling up stops following until End.

A thread worker per shown service reads its container's log stream in batches and drops
them in one mailbox; the app loop takes whatever piled up, at most TAKE_S apart
(FLOOD_TAKE_S while the streams flood it: repainting a pane of new lines is the app's
dearest work), and writes a large take TAKE_TURN lines a turn of the loop, drawn once
after its last piece. A flood's streams wait for the pane instead of reading on (the
engine holds their lines), and one the pane is SKIP_S behind starts again from its
newest lines, so the app stays responsive and shows what is current. Streams
are closed as soon as the pane is hidden or switched, and opened again (from the last
LOG_TAIL lines) when it shows. A container that stops ends its stream: the pane says so,
and picks its logs up again when the service runs once more. Every buffer is bounded by
LOG_BUFFER_LINES (per service): a flood drops the oldest lines and says how many.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static, Tab, Tabs
from textual.worker import Worker, WorkerState

from stack.engine.connection import EngineUnavailable
from stack.errors import LlmTuiError
from stack.settings import FIELDS, Settings
from tui.commands import bindings
from tui.mailbox import Mailbox, StreamHandle
from tui.screens.logs_find import ALL, FILTER_ID, SEARCH_ID, LogsFind
from tui.screens.logs_lines import (
    BACKLOG,
    dropped_note,
    first,
    in_order,
    merged_in,
    pump,
    role_prefix,
    second,
    stopped_note,
)
from tui.services import LOG_TAIL, LogSource, StackEngine
from tui.widgets.key_order import Input
from tui.widgets.log_view import LogView
from tui.widgets.service_card import service_roles

MAX_LINES = int(FIELDS["LOG_BUFFER_LINES"].default)  # per service, unless the setting says
MERGE_LIMIT = 4 * LOG_TAIL  # lines in the pane while late lines are still merged in
RECHECK_S = 3.0  # while a stopped service is watched for a restart
TAKE_S = 0.05  # the pane takes what piled up at most this often
FLOOD_TAKE_S = 0.2  # … and while its streams flood it (5 paints a second)
TAKE_TURN = 400  # lines written per turn of the loop (a take of a flood is ~2,000)
START_HINT = "Start the stack with u on the Dashboard (1)."


class LogsScreen(LogsFind):
    CSS_PATH = "logs.tcss"  # loaded when it first shows
    MODE = "logs"
    SUB_TITLE = "Logs"
    BINDINGS = bindings("logs")
    AUTO_FOCUS = "#logs-view"
    SELF_REPORTED: ClassVar[frozenset[str]] = frozenset(
        {"logs-follow", "logs-recheck", "logs-save"}
    )

    class LinesArrived(Message):
        """New lines wait in ``mailbox``."""

        def __init__(self, mailbox: Mailbox[tuple[str, str]]) -> None:
            super().__init__()
            self.mailbox = mailbox

    @dataclass
    class FollowStarted(Message):
        mailbox: Mailbox[tuple[str, str]]
        role: str
        started_at: str  # the container's start time: a change means it was restarted

    @dataclass
    class FollowEnded(Message):
        mailbox: Mailbox[tuple[str, str]]
        role: str
        last: str  # the stamp of its last line: the all-services view puts the note after it

    @dataclass
    class FollowFailed(Message):
        mailbox: Mailbox[tuple[str, str]]
        role: str
        text: str

    @dataclass
    class Restarted(Message):
        role: str

    def __init__(self) -> None:
        super().__init__()
        self.role = "inference"
        self.lines: deque[str] = deque(maxlen=MAX_LINES)
        self.dropped = 0  # lines the containers wrote faster than the pane could take them
        self.following = False
        self.paused = False
        self.held = 0  # lines that arrived while paused
        self._stamps: deque[str] = deque(maxlen=MAX_LINES)  # the lines' stamps (all services)
        self._offset = time.localtime().tm_gmtoff
        self._handles: dict[str, StreamHandle[LogSource]] = {}
        self._mailbox: Mailbox[tuple[str, str]] | None = None
        self._started_at: dict[str, str] = {}
        self._live: set[str] = set()  # roles whose stream is open now
        self._recheck: Timer | None = None
        self._take_timer: Timer | None = None
        self._rest: list[tuple[str, str]] = []  # taken, left for the loop's next turns
        self._taken_at = float("-inf")
        self._take_every = TAKE_S
        self._state = ""  # what the status line says about the stream
        self._problem = ""
        self._scrolled_off = False  # following stopped because the user scrolled up
        self._status_text = ""  # what the status line shows now

    # --- layout -------------------------------------------------------------------------

    @property
    def buffer_lines(self) -> int:
        return self.settings.log_buffer_lines

    def tab_roles(self) -> list[str]:
        return [*service_roles(self.settings), ALL]

    def compose_body(self) -> ComposeResult:
        with Vertical(id="logs"):
            yield Tabs(
                *(Tab(role, id=f"logs-tab-{role}") for role in self.tab_roles()), id="logs-tabs"
            )
            yield Static("", id="logs-status", markup=False)
            yield LogView(max_lines=self.buffer_lines, id="logs-view")
            yield Static("", id="logs-empty", classes="empty-state", markup=False)
            yield Input(placeholder="Search… (Enter keeps it, n/N jump, Esc clears)", id=SEARCH_ID)
            yield Input(
                placeholder="Show only lines matching… (Enter keeps it, Esc clears)", id=FILTER_ID
            )

    def on_mount(self) -> None:
        self.query_one(f"#{SEARCH_ID}").display = False
        self.query_one(f"#{FILTER_ID}").display = False
        self.query_one("#logs-empty").display = False
        self.lines = deque(maxlen=self.pane_limit())

    def pane_limit(self) -> int:
        return self.buffer_lines * len(self.shown_roles())

    # --- visibility ---------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.start_following()

    def on_screen_suspend(self) -> None:
        self.stop_following()

    def on_unmount(self) -> None:
        self.stop_following()

    # --- following ----------------------------------------------------------------------

    def shown_roles(self) -> list[str]:
        return service_roles(self.settings) if self.role == ALL else [self.role]

    def start_following(self) -> None:
        """Open the shown services' logs from their last LOG_TAIL lines."""
        self.stop_following()
        limit = self.pane_limit()
        self.lines = deque(maxlen=limit)
        self._stamps = deque(maxlen=limit)
        self.dropped = self.held = self.probes_hidden = 0
        self.reset_matches()
        log = self.log_view
        log.max_lines = limit
        log.clear()
        log.set_search(self.compiled(self.search), -1)
        mailbox: Mailbox[tuple[str, str]] = Mailbox(
            self, lambda: self.LinesArrived(mailbox), limit=limit
        )
        self._mailbox = mailbox
        self._problem = ""
        self._state = "connecting…"
        self.show_empty("")
        roles = self.shown_roles()
        width = max(len(role) for role in roles)
        engine = self.llm_app.engine
        for role in roles:
            handle: StreamHandle[LogSource] = StreamHandle()
            self.llm_app.track_stream(handle)
            self._handles[role] = handle
            prefix = role_prefix(role, width) if self.role == ALL else ""
            self.follow(engine, role, prefix, handle, mailbox)
        self.show_status()

    def stop_following(self) -> None:
        if self._recheck is not None:
            self._recheck.stop()
            self._recheck = None
        if self._take_timer is not None:
            self._take_timer.stop()
            self._take_timer = None
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
        self._live.clear()
        self._mailbox = None
        self._rest.clear()
        self.following = False
        for worker in self.workers:
            if worker.group in ("logs-follow", "logs-recheck"):
                worker.cancel()

    @work(thread=True, exit_on_error=False, group="logs-follow")
    def follow(
        self,
        engine: StackEngine,
        role: str,
        prefix: str,
        handle: StreamHandle[LogSource],
        mailbox: Mailbox[tuple[str, str]],
    ) -> None:
        try:
            started_at = next((s.started_at for s in engine.status() if s.role == role), "")
            container = engine.container_for(role)
        except EngineUnavailable as error:
            fix = f"\n\n→ {error.fix}" if error.fix else ""
            self.post_message(self.FollowFailed(mailbox, role, f"{error.message}{fix}"))
            return
        except LlmTuiError as error:
            if "does not exist" in error.message:
                text = f"{role} is not running: its container does not exist.\n\n{START_HINT}"
            else:
                text = error.message + (f"\n\n→ {error.fix}" if error.fix else "")
            self.post_message(self.FollowFailed(mailbox, role, text))
            return
        source = self.llm_app.services.follow_logs(container)
        if not handle.attach(source):
            return
        self.post_message(self.FollowStarted(mailbox, role, started_at))
        reopen = partial(self.llm_app.services.follow_logs, container, tail=BACKLOG)
        last = pump(source, reopen, handle, mailbox, role, prefix, self._offset)
        if last is not None and not handle.closed:
            self.post_message(self.FollowEnded(mailbox, role, last))

    def on_logs_screen_follow_started(self, message: FollowStarted) -> None:
        if message.mailbox is self._mailbox:
            self._started_at[message.role] = message.started_at
            self._live.add(message.role)
            self.following = True
            self._state = ""
            self.show_empty("")
            self.show_status()

    def on_logs_screen_lines_arrived(self, message: LinesArrived) -> None:
        if message.mailbox is not self._mailbox:
            return  # lines of a stream closed since
        self._take_soon()

    def _take_soon(self, due: bool = False) -> None:
        wait = self._taken_at + self._take_every - time.monotonic()
        if wait > 0 and not due:
            if self._take_timer is None:  # what arrives meanwhile waits in the mailbox
                take = partial(self._take_soon, due=True)
                self._take_timer = self.set_timer(wait, take, name="logs-take")
            return
        if due:
            self._take_timer = None
        self._taken_at = time.monotonic()
        self._rest.extend(self._drain())
        if len(self._rest) > TAKE_TURN:
            self.run_worker(self._take_in_turns(), group="logs-take", exclusive=True)
        else:
            self.take_lines()

    async def _take_in_turns(self) -> None:
        """Write what was taken TAKE_TURN lines at a time, letting the loop turn between:
        on a machine busy with the flood itself each millisecond of the loop's work takes
        several, and the app answers keys and draws between two pieces of a take."""
        with self.log_view.drawing_held():  # one frame for the take, after its last piece
            while self._rest:
                piece = self._rest[:TAKE_TURN]
                del self._rest[:TAKE_TURN]
                self._write_items(piece)
                if self._rest:
                    await asyncio.sleep(0)

    def take_lines(self) -> None:
        """Write what waits in the mailbox, and what a take left for later turns, now."""
        self._rest.extend(self._drain())
        items, self._rest = self._rest, []
        self._write_items(items)

    def _drain(self) -> list[tuple[str, str]]:
        """The mailbox's lines (stamp, text), those of all services in the order they were
        written; a note first that says how many were dropped to make room."""
        if self._mailbox is None:
            return []
        items, dropped = self._mailbox.drain()
        self._take_every = FLOOD_TAKE_S if len(items) >= BACKLOG else TAKE_S
        if dropped:
            self.dropped += dropped
            items.insert(0, (items[0][0] if items else "", dropped_note(dropped, self.role)))
        if self.role == ALL and len(self._handles) > 1:  # pieces of it go in in order
            return in_order(items, self._stamps[-1] if self._stamps else "")
        return items

    def _write_items(self, items: list[tuple[str, str]]) -> None:
        if not items:
            return
        if self.role == ALL and len(self._handles) > 1:
            self.merge(items)
        else:
            self.add_lines(list(map(second, items)))

    def merge(self, items: list[tuple[str, str]]) -> None:
        """All services: lines in the order they were written, whichever stream brought them.

        Each stream's lines come in order, but the streams' tails arrive one after the other,
        so lines older than the pane's newest are merged in where they belong. Only while the
        pane is young (the tails): later the streams are live, and a line that arrives a few
        milliseconds late is not worth redrawing the pane.
        """
        if not items:
            return
        newest = self._stamps[-1] if self._stamps else ""
        items = in_order(items, newest)
        if items[0][0] >= newest or len(self.lines) > MERGE_LIMIT:
            self.add_lines(list(map(second, items)), list(map(first, items)))
            return
        self._stamps, self.lines = merged_in(self._stamps, self.lines, items)
        if self.paused:
            self.held += len(items)
        else:
            self.refilter()
        self.show_status()

    def add_lines(self, lines: Sequence[str], stamps: Sequence[str] | None = None) -> None:
        self.rolling_out(len(lines))
        self.lines.extend(lines)
        if self.role == ALL:  # kept beside the lines: `merge` orders by them
            newest = self._stamps[-1] if self._stamps else ""
            self._stamps.extend(stamps if stamps is not None else [newest] * len(lines))
        if self.paused:
            self.held += len(lines)
        else:
            self.write(lines)
        self.show_status()

    def on_logs_screen_follow_ended(self, message: FollowEnded) -> None:
        if message.mailbox is not self._mailbox:
            return
        self.take_lines()  # the stream's last lines before the note that it stopped
        self._live.discard(message.role)
        if self.role == ALL and len(self._handles) > 1:
            self.merge([(message.last, stopped_note(message.role))])
        else:
            self.add_lines([stopped_note(message.role)])
        if not self._live:
            self.following = False
            self._state = "stopped"
        self.show_status()
        self.schedule_recheck()

    def on_logs_screen_follow_failed(self, message: FollowFailed) -> None:
        if message.mailbox is not self._mailbox:
            return
        self.take_lines()
        if self._live:  # the other services still stream: say it in the pane, not instead
            self.add_lines([f"── {message.role}: {message.text.splitlines()[0]} ──"])
        else:
            self._state = "not available"
            self._problem = message.text
            self.show_empty(message.text)
        self.show_status()
        self.schedule_recheck()

    def schedule_recheck(self) -> None:
        if self._recheck is None and self.is_current:
            self._recheck = self.set_timer(RECHECK_S, self.check_restarted)

    def check_restarted(self) -> None:
        self._recheck = None
        if self.is_current:
            waiting = [role for role in self.shown_roles() if role not in self._live]
            if waiting:
                self.watch_for_restart(self.llm_app.engine, waiting, dict(self._started_at))

    @work(thread=True, exclusive=True, exit_on_error=False, group="logs-recheck")
    def watch_for_restart(
        self, engine: StackEngine, roles: list[str], started_at: dict[str, str]
    ) -> None:
        for status in engine.status():
            if (
                status.role in roles
                and status.state == "running"
                and status.started_at != started_at.get(status.role, "")
            ):
                self.post_message(self.Restarted(status.role))
                return

    def on_logs_screen_restarted(self, message: Restarted) -> None:
        if message.role in self.shown_roles() and self.is_current:
            self.start_following()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "logs-recheck" and worker.is_finished:
            # Nothing new yet (or the engine is away): look again in a while.
            if self.is_current and len(self._live) < len(self.shown_roles()):
                self.schedule_recheck()
        elif worker.group == "logs-follow" and event.state is WorkerState.ERROR:
            if worker.is_cancelled:
                return
            self._live.clear()
            self.following = False
            self._state = "failed"
            self.show_status()
            self.show_empty(f"Reading the {self.role} logs failed: {worker.error}")
            self.schedule_recheck()
        elif worker.group == "logs-save" and event.state is WorkerState.ERROR:
            self.llm_app.report_worker_error(worker, title="Could not save the logs")

    # --- services -----------------------------------------------------------------------

    def select_service(self, role: str) -> None:
        """Show ``role``'s logs (``all``: every service); the Dashboard's l lands here."""
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

    def action_clear_logs(self) -> None:
        self._stamps.clear()
        super().action_clear_logs()

    def settings_changed(self, settings: Settings) -> None:
        tabs = self.query_one(Tabs)
        wanted = self.tab_roles()
        have = [(tab.id or "").removeprefix("logs-tab-") for tab in tabs.query(Tab)]
        if have != wanted:
            tabs.clear()
            for role in wanted:
                tabs.add_tab(Tab(role, id=f"logs-tab-{role}"))
            if self.role not in wanted:
                self.role = wanted[0]
            tabs.active = f"logs-tab-{self.role}"
        self.start_following()  # STACK_NAME, LOG_BUFFER_LINES or the containers changed
