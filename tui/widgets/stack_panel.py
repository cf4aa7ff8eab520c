"""The Dashboard's stack panel: gateway and models, then one card per service, kept current.

Two loops feed it while it is active (the screen activates it while it shows):

* the status poll: `engine.status()` every POLL_S, or every QUIET_POLL_S while the event
  stream is open (it reports every change, so the poll is only a safety net and keeps
  uptimes current); the next poll is scheduled when the previous one has finished, so
  they never overlap;
* the engine's event stream: a container dying or turning healthy asks for a poll at once
  (and a death the user did not ask for is announced).

A failing poll (no engine) is shown in place, with its fix, and retried every RETRY_S.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from stack.engine.exits import exit_words
from stack.errors import LlmTuiError
from stack.settings import Settings
from tui.mailbox import StreamHandle
from tui.services import EventSource, StackEngine
from tui.widgets.service_card import ServiceCard, service_roles

if TYPE_CHECKING:
    from stack.engine import ServiceStatus
    from stack.engine.events import StackEvent
    from tui.app import LlmTuiApp

NO_MODEL = "none — press 2 to pick one"
POLL_S = 2.0  # status poll while the engine answers but no event stream is open yet
QUIET_POLL_S = 30.0  # while the event stream is open: events ask for polls themselves
RETRY_S = 5.0  # while it does not
# Exit codes of a container stopped on purpose (SIGTERM through init; 0): no alarm.
QUIET_EXITS = (0, 143)


def stack_summary(settings: Settings) -> Content:
    """Gateway URL and models, one labelled line each."""
    rows = [
        ("Gateway", settings.gateway_url),
        ("Chat model", settings.chat_model or NO_MODEL),
    ]
    if settings.engine_remote:
        # Which machine this drives ("gpu-box over ssh"), and how its gateway is reached.
        from stack.engine.forward import remote_summary

        engine, gateway = remote_summary(settings)
        rows[0:1] = [("Engine", engine), ("Gateway", gateway)]
    if settings.has_code_model:
        rows.append(("Code model", settings.code_model))
    width = max(len(label) for label, _ in rows) + 2
    lines = [Content.assemble((label.ljust(width), "bold"), value) for label, value in rows]
    return Content("\n").join(lines)


def panel_title(statuses: Sequence[ServiceStatus] | None, problem: str = "") -> str:
    if problem:
        return "Stack — Docker unavailable"
    if statuses is None:
        return "Stack — checking…"
    running = sum(status.state == "running" for status in statuses)
    if running == 0:
        return "Stack — stopped (u starts it)"
    return f"Stack — {running} of {len(statuses)} running"


class StackPanel(Vertical):
    """Summary, problem line and service cards; ``statuses`` is None until the first poll."""

    @dataclass
    class Changed(Message):
        """A poll answered (the screen adjusts what depends on the stack's state)."""

        statuses: list[ServiceStatus]

    @dataclass
    class Polled(Message, bubble=False):
        statuses: list[ServiceStatus]

    @dataclass
    class PollFailed(Message, bubble=False):
        message: str
        fix: str

    @dataclass
    class EventArrived(Message, bubble=False):
        event: StackEvent

    def __init__(self, settings: Settings, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._settings = settings
        self.statuses: list[ServiceStatus] | None = None
        self.engine_problem = ""
        self.active = False
        self._polling = False
        self._poll_again = False
        self._poll_timer: Timer | None = None
        self._events: StreamHandle[EventSource] | None = None
        self._events_worker: Worker[None] | None = None
        # Containers whose death was announced: once each, from the event or, when the
        # stream missed it (reopened meanwhile), from the next poll.
        self._announced: set[str] = set()

    @property
    def llm_app(self) -> LlmTuiApp:
        return cast("LlmTuiApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static(stack_summary(self._settings), id="stack-summary", markup=False)
        yield Static("", id="stack-notice", markup=False)
        with Horizontal(id="service-cards"):
            for index, role in enumerate(service_roles(self._settings)):
                yield ServiceCard(role, first=index == 0)

    def on_mount(self) -> None:
        self.border_title = panel_title(None)
        self.query_one("#stack-notice").display = False

    # --- the loops run only while active ------------------------------------------------

    def activate(self) -> None:
        self.active = True
        self.poll_now()

    def deactivate(self) -> None:
        self.active = False
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        self._poll_again = False
        self._stop_events()

    def on_unmount(self) -> None:
        self.deactivate()

    def settings_changed(self, settings: Settings) -> None:
        renamed = settings.stack_name != self._settings.stack_name
        self._settings = settings
        self.query_one("#stack-summary", Static).update(stack_summary(settings))
        if renamed:
            self._stop_events()  # other containers to watch; the next poll opens a stream
        self.poll_now()

    # --- status poll --------------------------------------------------------------------

    def poll_now(self) -> None:
        """Poll at once, or right after the poll in flight."""
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        if self._polling:
            self._poll_again = True
            return
        if not self.active:
            return
        self._polling = True
        self.poll_status(self.llm_app.engine)

    @work(thread=True, exclusive=True, exit_on_error=False, group="stack-status")
    def poll_status(self, engine: StackEngine) -> None:
        try:
            statuses = engine.status()
        except LlmTuiError as error:
            self.post_message(self.PollFailed(error.message, error.fix or ""))
        except Exception as error:
            # The engine went away mid-session (a dropped socket, an API error): show it
            # in place and keep polling; it usually comes back.
            self.post_message(self.PollFailed(f"the Docker Engine failed: {error}", ""))
        else:
            self.post_message(self.Polled(statuses))

    def _poll_finished(self) -> None:
        self._polling = False
        if self._poll_again:
            self._poll_again = False
            self.poll_now()
        elif self.active:
            if self.engine_problem:
                delay = RETRY_S
            else:
                delay = QUIET_POLL_S if self._events is not None else POLL_S
            self._poll_timer = self.set_timer(delay, self.poll_now)

    def on_stack_panel_polled(self, message: Polled) -> None:
        before = {s.name: s.state for s in self.statuses or []}
        for status in message.statuses:
            if status.state == "running":
                self._announced.discard(status.name)
            elif before.get(status.name) == "running" and status.state == "exited":
                self.announce_death(status.name, status.exit_code)
        self.statuses = message.statuses
        self.engine_problem = ""
        self.show_statuses()
        self.post_message(self.Changed(message.statuses))
        if self._events is None and self.active:
            self._start_events()

    def on_stack_panel_poll_failed(self, message: PollFailed) -> None:
        self.engine_problem = message.message
        notice = self.query_one("#stack-notice", Static)
        lines = [Content.styled(f"✗ {message.message}", "$text-error")]
        if message.fix:
            lines.append(Content.styled(f"→ {message.fix}", "$text-accent"))
        notice.update(Content("\n").join(lines))
        notice.display = True
        self.query_one("#service-cards").display = False
        self.border_title = panel_title(None, message.message)

    def show_statuses(self) -> None:
        statuses = self.statuses or []
        self.query_one("#stack-notice").display = False
        cards_row = self.query_one("#service-cards", Horizontal)
        cards_row.display = True
        self.border_title = panel_title(statuses)
        by_role = {status.role: status for status in statuses}
        cards = {card.role: card for card in cards_row.query(ServiceCard)}
        wanted = list(by_role) or service_roles(self._settings)
        if list(cards) != wanted:
            focused = self.screen.focused
            selected = focused.role if isinstance(focused, ServiceCard) else None
            cards_row.remove_children()
            new = [
                ServiceCard(role, by_role.get(role), first=index == 0)
                for index, role in enumerate(wanted)
            ]
            cards_row.mount_all(new)
            for card in new:
                if card.role == selected:
                    self.call_after_refresh(card.focus)
            return
        for role, card in cards.items():
            card.status = by_role.get(role)

    # --- engine events ------------------------------------------------------------------

    def _start_events(self) -> None:
        self._events = StreamHandle[EventSource]()
        self.llm_app.track_stream(self._events)
        self._events_worker = self.follow_events(self.llm_app.engine, self._events)

    def _stop_events(self) -> None:
        if self._events is not None:
            self._events.close()
            self._events = None
        if self._events_worker is not None:
            self._events_worker.cancel()
            self._events_worker = None

    @work(thread=True, exclusive=True, exit_on_error=False, group="stack-events")
    def follow_events(self, engine: StackEngine, handle: StreamHandle[EventSource]) -> None:
        stream = engine.events()
        if not handle.attach(stream):
            return
        for event in stream:
            if handle.closed:
                return
            self.post_message(self.EventArrived(event))

    def on_stack_panel_event_arrived(self, message: EventArrived) -> None:
        event = message.event
        busy = self.llm_app.stack_operation is not None
        if event.action == "oom":
            self.notify(
                f"{event.name} ran out of memory and was killed.",
                title="Out of memory",
                severity="error",
                timeout=15,
                markup=False,
            )
        elif event.action == "die" and not busy:
            self.announce_death(event.name, event.exit_code)
        self.poll_now()

    def announce_death(self, name: str, exit_code: int | None) -> None:
        """Say once that a container stopped on its own (not one we stopped, not twice)."""
        if self.llm_app.stack_operation is not None or exit_code in (None, *QUIET_EXITS):
            return
        if name in self._announced:
            return
        self._announced.add(name)
        self.notify(
            f"{name} stopped with {exit_words(exit_code)}. Its logs say why (l on its card).",
            title="Service stopped",
            severity="error",
            timeout=15,
            markup=False,
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker, state = event.worker, event.state
        if state in (WorkerState.PENDING, WorkerState.RUNNING):
            return
        if worker.group == "stack-status":
            if state is WorkerState.ERROR:  # not expected: poll_status catches everything
                self.post_message(self.PollFailed(f"{worker.error}", ""))
            self._poll_finished()
        elif worker.group == "stack-events" and worker is self._events_worker:
            # The stream ended (the engine went away) or the worker was cancelled: close it
            # either way; the next good poll starts another. Polls are rare while events
            # flow: the next comes in POLL_S, so an engine that went away shows soon.
            self._stop_events()
            if self.active and state is not WorkerState.CANCELLED and not self._polling:
                if self._poll_timer is not None:
                    self._poll_timer.stop()
                self._poll_timer = self.set_timer(POLL_S, self.poll_now)
