"""The reading side of the Logs screen: what a worker thread does with a container's stream.

`pump` reads one service's stream into the screen's mailbox, formatted as the pane shows
it. In a flood it waits for the pane instead of reading on (the engine keeps the lines),
and a stream the pane is SKIP_S behind starts again from its newest lines, with a note.
"""

from __future__ import annotations

import heapq
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from operator import itemgetter

from stack.engine.logs import LogLine
from tui.mailbox import Mailbox, StreamHandle
from tui.services import LogSource

# A health probe answered OK, as the gateway's access log writes it: the container's own
# healthcheck asks every 2 s, so these lines would bury the requests that matter. The Logs
# screen hides them (H shows them); a probe that failed is not matched, and shows.
PROBE = re.compile(r'"GET /health/(?:liveliness|liveness|readiness)(?:\?\S*)? HTTP/[\d.]+" 200\b')
BACKLOG = 2000  # lines waiting for the pane past which its streams wait before reading on
SKIP_S = 1.0  # a stream the pane is this far behind starts again from its newest lines


def is_probe(line: str) -> bool:
    return "/health/" in line and PROBE.search(line) is not None


def in_order(items: list[tuple[str, str]], newest: str) -> list[tuple[str, str]]:
    """(stamp, text) ``items`` by stamp; unstamped ones (rare) take ``newest``, so they
    stay where they came."""
    items.sort(key=first)
    if items and not items[0][0]:
        items = sorted(((stamp or newest, text) for stamp, text in items), key=first)
    return items


def merged_in(
    stamps: deque[str], lines: deque[str], items: list[tuple[str, str]]
) -> tuple[deque[str], deque[str]]:
    """``items`` (in order) merged by stamp into the pane's ``stamps`` and ``lines``."""
    merged = list(heapq.merge(zip(stamps, lines, strict=True), items, key=first))
    return (
        deque((stamp for stamp, _ in merged), maxlen=lines.maxlen),
        deque((text for _, text in merged), maxlen=lines.maxlen),
    )


def clock(stamp: str, offset: int) -> str:
    """``2025-01-02T13:04:05.123Z`` → ``15:04:05`` in local time (``offset`` from UTC)."""
    try:
        seconds = int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])
    except ValueError:
        return ""
    seconds = (seconds + offset) % 86400
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def format_lines(lines: Iterable[LogLine], offset: int, prefix: str = "") -> list[str]:
    """Each line as the pane shows it (local time, then the text); a flood's lines share
    their second, so its clock is worked out once per second, not per line."""
    shown: list[str] = []
    second, time_of_day = "", ""
    for text, stamp in lines:
        if not stamp:
            shown.append(f"{prefix}{text}")
            continue
        if stamp[:19] != second:
            second, time_of_day = stamp[:19], clock(stamp, offset)
        shown.append(f"{prefix}{time_of_day}  {text}")
    return shown


def role_prefix(role: str, width: int) -> str:
    return f"{role:<{width}} │ "


def stopped_note(role: str) -> str:
    return f"── {role} stopped; its logs continue here when it runs again ──"


first = itemgetter(0)  # an item's stamp (C speed: a flood sorts thousands of items a take)
second = itemgetter(1)  # its text


def dropped_note(count: int, role: str) -> str:
    return f"── {count:,} lines dropped: {role} wrote them faster than this pane could show ──"


def lateness(stamp: str) -> float:
    """Seconds between the engine stamping a line (RFC 3339) and now; 0 without a stamp."""
    try:
        return time.time() - datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0


def skipped_note(role: str) -> str:
    return f"── {role} writes faster than this pane can show: skipped to its newest lines ──"


def pump(
    source: LogSource,
    reopen: Callable[[], LogSource],
    handle: StreamHandle[LogSource],
    mailbox: Mailbox[tuple[str, str]],
    role: str,
    prefix: str,
    offset: int,
) -> str | None:
    """Read ``source`` into ``mailbox`` until it ends: the stamp of its last line ("" for
    none), or None when ``handle`` was closed meanwhile. ``reopen`` opens the stream again
    from its newest BACKLOG lines."""
    last = ""
    shown_until = ""  # after a skip ahead: lines up to this stamp are in the pane already
    # How late lines arrive: the least seen is the engine's clock against ours plus the
    # trip, so what a line's lateness exceeds it by is how far the pane is behind.
    least_late = float("inf")
    while True:
        behind = False
        for batch in source.batches():
            if handle.closed:
                return None
            if shown_until:
                batch = [line for line in batch if line.timestamp > shown_until]
                shown_until = "" if batch else shown_until
            # Formatted here, not on the app loop; the stamp orders the all-services view.
            texts = format_lines(batch, offset, prefix)
            stamps = (line.timestamp for line in batch)
            waiting = mailbox.put(zip(stamps, texts, strict=True))
            last = batch[-1].timestamp if batch else last
            late = lateness(last)
            least_late = min(least_late, late)
            if waiting < BACKLOG:
                continue
            # A flood: read on only once the pane has taken what waits. The engine
            # holds the rest meanwhile, and neither this thread nor the engine burns a
            # core on lines the pane could only drop. One that left the pane SKIP_S
            # behind starts again from its newest lines.
            if late - least_late > SKIP_S:
                behind = True
                break
            while not handle.closed and not mailbox.wait_below(BACKLOG, timeout=0.25):
                pass
        if not behind or handle.closed:
            break
        source.close()
        source = reopen()
        if not handle.attach(source):
            return None
        mailbox.put_one((last, skipped_note(role)))
        shown_until = last
    return last
