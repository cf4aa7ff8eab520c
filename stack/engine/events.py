"""Docker events of our containers as `StackEvent`s (start, die with exit code, oom, health).

`Engine.events()` opens the stream; another thread may `close()` it to end the iteration.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stack.engine.plan import LABEL_ROLE, LABEL_STACK


@dataclass(frozen=True)
class StackEvent:
    action: str  # create | start | die | oom | kill | stop | destroy | health
    name: str
    role: str
    exit_code: int | None = None
    health: str = ""
    time: float = 0.0


INTERESTING_ACTIONS = {"create", "start", "die", "oom", "kill", "stop", "destroy", "restart"}
# The engine matches "health_status" against "health_status: healthy" and the like.
EVENT_FILTER = frozenset({*INTERESTING_ACTIONS, "health_status"})


def parse_event(raw: dict[str, Any]) -> StackEvent | None:
    action = str(raw.get("Action") or raw.get("status") or "")
    attributes = (raw.get("Actor") or {}).get("Attributes") or {}
    health = ""
    if action.startswith("health_status"):
        health = action.split(":", 1)[1].strip()
        action = "health"
    elif action not in INTERESTING_ACTIONS:
        return None
    code = attributes.get("exitCode")
    return StackEvent(
        action=action,
        name=str(attributes.get("name", "")),
        role=str(attributes.get(LABEL_ROLE, "")),
        exit_code=int(code) if code is not None and str(code).isdigit() else None,
        health=health,
        time=float(raw.get("timeNano", 0)) / 1e9 or float(raw.get("time", 0)),
    )


class EventStream:
    """Iterate `StackEvent`s; ``close()`` from another thread ends the iteration."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._closed = False

    def __iter__(self) -> Iterator[StackEvent]:
        try:
            for raw in self._stream:
                event = parse_event(raw)
                if event is not None:
                    yield event
        except Exception:
            if not self._closed:
                raise

    def close(self) -> None:
        from stack.engine.logs import close_stream

        self._closed = True
        close_stream(self._stream)


def open_events(client: Any, stack_name: str, since: datetime | None = None) -> EventStream:
    """The event stream of one stack's containers, filtered by the engine: each health
    probe is an exec whose events (every 2 s per container) would otherwise wake us."""
    stream = client.events(
        decode=True,
        since=since,
        filters={
            "type": "container",
            "label": f"{LABEL_STACK}={stack_name}",
            "event": sorted(EVENT_FILTER),
        },
    )
    return EventStream(stream)
