"""What the Pilot tests share: settling, waiting for a condition, reading the screen.

`settle` waits for a state, not for time: it returns once no worker is unfinished, every
message pump of the app (the app, every screen of every mode, every installed screen and
all their widgets) waits on an empty queue with nothing scheduled, the current screen has
painted, no animation runs and the event loop has nothing ready to run. Textual's own
`pilot.pause()` guesses idleness from CPU time, which a busy machine fools.

`until` is for states that a thread outside the app (a download, a held stream) reaches.
Both give up after DEADLINE_S: that bound only turns a hang into a failure that says what
was still busy; no test passes because time ran out.

`freeze` is for pictures: settled, and every timer (and the GPU sampler's thread) paused,
so nothing the dashboard polls or a toast times out can change the screen between
`run_before` and the picture.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any

from textual.app import App
from textual.content import Content
from textual.message_pump import MessagePump
from textual.pilot import Pilot
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from tui.__main__ import LlmTuiApp
from tui.commands import MODES
from tui.widgets.chat_messages import AnswerView

SIZE = (100, 32)
DEADLINE_S = 60.0
POLL_S = 0.005  # between looks while a thread or a timer has the next move
# The screen's own refresh timer draws what changed; it must keep running for a picture.
SCREEN_UPDATE_TIMER = "screen_update"
WIDGET_FLAGS = (
    "_layout_required",
    "_repaint_required",
    "_recompose_required",
    "_refresh_styles_required",
    "_scroll_required",
)
SCREEN_FLAGS = (*WIDGET_FLAGS, "_dirty_widgets", "_callbacks")


def text(widget: Static) -> str:
    return str(widget.visual)


def screen_text(app: LlmTuiApp) -> str:
    return "\n".join(text(static) for static in app.screen.query(Static))


def answer_meta(view: AnswerView) -> str:
    """The rows under an answer's text, joined: how it ended and its numbers (they wrap
    between figures onto more rows at a narrow width)."""
    shown = view.rows_text()
    blank = len(shown) - shown[::-1].index("") if "" in shown else 0
    return " · ".join(shown[blank:])


# --- settling ---------------------------------------------------------------------------


def screens(app: App[Any]) -> list[Screen[Any]]:
    """Every screen that runs: each mode's stack and every installed screen started once."""
    found: dict[int, Screen[Any]] = {}
    for stack in app._screen_stacks.values():
        for screen in stack:
            found[id(screen)] = screen
    for installed in app._installed_screens.values():
        if isinstance(installed, Screen) and installed._task is not None:
            found[id(installed)] = installed
    return list(found.values())


def pumps(app: App[Any]) -> Iterator[MessagePump]:
    yield app
    for screen in screens(app):
        yield from screen.walk_children(with_self=True)


def pump_busy(pump: MessagePump) -> str:
    """Why ``pump`` is not idle, or "" when it waits on an empty queue."""
    if pump._closed or pump._closing:
        return ""
    if not pump._running:
        # Started (a task) but not yet running, or in the DOM and not started yet.
        return "starting" if pump._task is not None or isinstance(pump, Widget) else ""
    queue: Any = pump._message_queue  # textual._queue.Queue: a deque and an asyncio.Event
    if not queue.empty() or pump._pending_message is not None:
        return f"{queue.qsize()} messages queued"
    if pump._next_callbacks:
        return "callbacks scheduled"
    # An idle pump waits on its queue's event; one that does not is inside a handler.
    if not any(not waiter.done() for waiter in queue.ready_event._waiters):
        return "handling a message"
    if isinstance(pump, Widget) and not isinstance(pump, Screen):  # screens: see `busy`
        flags = [flag for flag in WIDGET_FLAGS if getattr(pump, flag)]
        if flags:
            return "refresh pending: " + ", ".join(flags)
    return ""


def busy(app: App[Any], allow: Collection[str] = ()) -> list[str]:
    """What keeps ``app`` from being settled (empty: settled); see `settle` for ``allow``."""
    reasons = [
        f"worker {w.name!r} {w.state.name}"
        for w in app.workers
        if not w.is_finished and w.group not in allow
    ]
    feed = getattr(app, "gpu_feed", None)  # the GPU sampler's thread, inside a reading
    if feed is not None and feed.reading and "gpu-sample" not in allow:
        reasons.append("the GPU sampler is reading")
    for pump in pumps(app):
        why = pump_busy(pump)
        if why:
            reasons.append(f"{pump!r}: {why}")
    screen = app.screen
    flags = [flag for flag in SCREEN_FLAGS if getattr(screen, flag)]
    if flags:
        reasons.append(f"{screen!r} has not painted: {', '.join(flags)}")
    if app._batch_count:
        reasons.append("updates are held (batch)")
    animator = app.animator
    if animator._animations or animator._scheduled:
        reasons.append("an animation runs")
    # Thread workers hand messages over with call_soon_threadsafe: they wait here.
    ready = len(asyncio.get_running_loop()._ready)  # type: ignore[attr-defined]
    if ready:
        reasons.append(f"{ready} callbacks ready on the event loop")
    return reasons


async def settle(
    app: App[Any], *, allow: Collection[str] = (), deadline_s: float = DEADLINE_S
) -> None:
    """Return once ``app`` has nothing left to do (see the module's docstring).

    ``allow``: worker groups that may keep running, e.g. a log stream held open for the
    whole visit. Wait for what such a worker delivers with `until` first.
    """
    end = time.monotonic() + deadline_s
    while True:
        if app._exception is not None:
            raise AssertionError(f"the app failed: {app._exception!r}") from app._exception
        if not app.is_running:
            return
        reasons = busy(app, allow)
        if not reasons:
            return
        if time.monotonic() > end:
            shown = "\n  ".join(reasons[:20])
            raise AssertionError(f"the app never settled within {deadline_s:.0f} s:\n  {shown}")
        loop_has_work = any("event loop" in reason for reason in reasons) or any(
            "queued" in reason or "scheduled" in reason for reason in reasons
        )
        # Work on the loop: let it run. Otherwise a thread or a timer moves next: look again
        # shortly, without spinning the CPU that thread needs.
        await asyncio.sleep(0 if loop_has_work else POLL_S)


async def until(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Let the app run until ``condition`` holds (a thread of its own got there)."""
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"never happened within {deadline_s:.0f} s: {what}")
        await asyncio.sleep(0.01)


def live_timers(node: MessagePump) -> list[Timer]:
    """``node``'s timers that will still fire (neither stopped nor paused)."""
    return [t for t in node._timers if t._task is not None and t._active.is_set()]


async def freeze(app: App[Any], *, allow: Collection[str] = ()) -> None:
    """Settle, then pause every timer but the screen's refresh: the picture stays as is.

    ``allow``: as for `settle` (e.g. an answer held mid-stream for its picture)."""
    feed = getattr(app, "gpu_feed", None)
    if feed is not None:  # the GPU sampler's thread: no reading after this one
        feed.pause()
    await settle(app, allow=allow)
    for pump in pumps(app):
        for timer in list(pump._timers):
            if timer.name != SCREEN_UPDATE_TIMER:
                timer.pause()


# --- moving around ----------------------------------------------------------------------


async def go_to(app: LlmTuiApp, pilot: Pilot[int], mode: str) -> None:
    key = next(m.key for m in MODES if m.name == mode)
    await pilot.press(key)
    await settle(app)
    assert app.current_mode == mode


def notes(app: LlmTuiApp) -> list[tuple[str, str]]:
    """(title, message) of every notification shown so far."""
    return [(note.title, note.message) for note in app._notifications]


def edge(app: LlmTuiApp) -> str:
    """The stack panel's lower edge on the current screen: how the last operation went."""
    return Content.from_markup(app.screen.query_one("#stack-panel").border_subtitle or "").plain
