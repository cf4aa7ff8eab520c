"""Container logs as clean lines: buffered across chunks, decoded safely, escapes stripped.

Docker's log stream arrives in chunks that are not line-aligned; a line may also be split
inside a multi-byte UTF-8 character. `LineSplitter` reassembles lines; `LogFollower` wraps
the stream (`stack.engine.log_stream`) so another thread can cancel it with `close()`, and
goes on after a dropped connection to a remote engine.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

# Re-exported: the byte-level readers are part of what this module offers.
from stack.engine.log_stream import close_stream as close_stream
from stack.engine.log_stream import dechunk as dechunk
from stack.engine.log_stream import demultiplex as demultiplex
from stack.engine.log_stream import stream_logs

# CSI/OSC and other terminal escape sequences: log text is shown as plain text, never as
# instructions to the user's terminal.
_ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\\\)"  # OSC ... BEL or ST
    rb"|\x1b[@-Z\\\\-_]"  # other two-byte escapes
)
# C0 controls but tab, DEL, and the C1 range (U+0080-U+009F: 8-bit CSI, OSC, … which some
# terminals obey): none of them is text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A line longer than this is cut into pieces of this size: a container that never writes a
# newline cannot grow our buffer (or the pane) without bound.
MAX_LINE_BYTES = 64 * 1024


class LogLine(NamedTuple):
    """One log line (a tuple: cheap to build at hundreds of thousands a second)."""

    text: str
    timestamp: str = ""  # RFC 3339 from the engine, when asked for


def clean(raw: bytes) -> str:
    """One line of raw log bytes as safe plain text."""
    return _CONTROL.sub("", _ESCAPES.sub(b"", raw).decode("utf-8", "replace"))


class LineSplitter:
    """Feed byte chunks, get complete lines; ``flush()`` returns a final partial line.

    Work is done per chunk, not per line (one decode, one regex pass when escapes are
    present), which keeps a flooding container well above 100k lines/s. A partial line is
    kept as a list of pieces (no quadratic re-copying) and never grows past
    ``max_line`` bytes: a longer one is emitted in pieces of that size.
    """

    def __init__(self, *, timestamps: bool = False, max_line: int = MAX_LINE_BYTES) -> None:
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._timestamps = timestamps
        self._max_line = max_line
        self._too_long = re.compile(b"[^\n]{%d}" % (max_line + 1))

    def feed(self, chunk: bytes) -> list[LogLine]:
        cut = chunk.rfind(b"\n")
        if cut < 0:
            self._pending.append(chunk)
            self._pending_size += len(chunk)
            return self._overflow()
        data = chunk[:cut]
        if self._pending:
            data = b"".join([*self._pending, data])
            self._pending, self._pending_size = [], 0
        rest = chunk[cut + 1 :]
        if rest:
            self._pending, self._pending_size = [rest], len(rest)
        return self._lines(self._cut_long(data)) + self._overflow()

    def flush(self) -> list[LogLine]:
        if not self._pending:
            return []
        raw = b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        return self._lines(self._cut_long(raw))

    def _overflow(self) -> list[LogLine]:
        """A partial line past ``max_line``: emit all of it but the tail, in pieces."""
        if self._pending_size <= self._max_line:
            return []
        data = b"".join(self._pending)
        keep = len(data) % self._max_line
        head, tail = data[: len(data) - keep], data[len(data) - keep :]
        self._pending, self._pending_size = ([tail], len(tail)) if tail else ([], 0)
        return self._lines(self._cut_long(head))

    def _cut_long(self, block: bytes) -> bytes:
        """Newlines inserted into lines longer than ``max_line`` (rare: only then)."""
        size = self._max_line
        if len(block) <= size or not self._too_long.search(block):
            return block
        pieces = []
        for line in block.split(b"\n"):
            pieces += [line[i : i + size] for i in range(0, len(line), size)] or [b""]
        return b"\n".join(pieces)

    def _lines(self, block: bytes) -> list[LogLine]:
        # Splitting at b"\n" first keeps multi-byte characters whole.
        if b"\x1b" in block:
            block = _ESCAPES.sub(b"", block)
        text = block.decode("utf-8", "replace")
        if _CONTROL.search(text):
            text = _CONTROL.sub("", text)
        if self._timestamps:
            return [
                LogLine(rest, stamp)
                for stamp, _, rest in (line.partition(" ") for line in text.split("\n"))
            ]
        return [LogLine(line) for line in text.split("\n")]


def split_batches(chunks: Iterable[bytes], *, timestamps: bool = False) -> Iterator[list[LogLine]]:
    """Complete lines, one list per chunk (what a log pane writes in one go)."""
    splitter = LineSplitter(timestamps=timestamps)
    for chunk in chunks:
        lines = splitter.feed(chunk)
        if lines:
            yield lines
    last = splitter.flush()
    if last:
        yield last


def split_lines(chunks: Iterable[bytes], *, timestamps: bool = False) -> Iterator[LogLine]:
    for batch in split_batches(chunks, timestamps=timestamps):
        yield from batch


RECONNECT_WINDOW_S = 60.0  # how long a dropped connection is retried before giving up
RECONNECT_PAUSE_S = 0.5


def since_value(stamp: str) -> str:
    """An RFC 3339 timestamp from the engine as the ``since`` it accepts ("secs.nanos")."""
    from datetime import datetime

    main, _, rest = stamp.rstrip("Z").partition(".")
    digits = "".join(ch for ch in rest if ch.isdigit())[:9].ljust(9, "0")
    seconds = int(datetime.fromisoformat(main + "+00:00").timestamp())
    return f"{seconds}.{digits}"


class LogFollower:
    """Iterate a container's log lines; ``close()`` from any thread stops the iteration.

    On an engine reached over the network (ssh://, tcp://) a stream can also end because
    the connection dropped while the container kept running. Then the follower connects
    again (``reconnect``, by default a new client for the same engine) and goes on from
    the last line it gave, with nothing lost or repeated; it gives up with an
    `EngineUnavailable` after `RECONNECT_WINDOW_S` of failed tries.
    """

    def __init__(
        self,
        container: Any,
        *,
        follow: bool = True,
        tail: int | str = "all",
        since: Any = None,
        timestamps: bool = True,
        reconnect: Callable[[], Any] | None = None,
    ) -> None:
        self.container = container
        self._follow = follow
        self._timestamps = timestamps
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._reconnect = reconnect
        self._own_client: Any = None
        self._resumable = follow and (reconnect is not None or _networked(container))
        # Timestamps are asked for whenever a resume may be needed: they say where to go on.
        self._stamped = timestamps or self._resumable
        self._last = ""  # the timestamp of the last line given
        self._at_last = 0  # lines given with that timestamp
        params: dict[str, Any] = {
            "stdout": 1,
            "stderr": 1,
            "follow": int(follow),
            "timestamps": int(self._stamped),
            "tail": tail,
        }
        if since is not None:
            params["since"] = int(since.timestamp()) if hasattr(since, "timestamp") else since
        self._params = params
        self._chunks, self._cancel = stream_logs(container, params)

    def batches(self) -> Iterator[list[LogLine]]:
        """Lines in batches as they arrive; ends when the container stops or on close()."""
        skip: tuple[str, int] | None = None
        while True:
            try:
                for batch in split_batches(self._chunks, timestamps=self._stamped):
                    if self._closed.is_set():
                        return
                    if skip is not None:
                        batch, skip = _after(batch, skip)
                    out = self._note(batch)
                    if out:
                        yield out
            except Exception:
                if self._closed.is_set():
                    return
                if not self._resumable:
                    raise
            else:
                # A clean end is the container stopping, except over SSH, where a dropped
                # connection ends the SDK's stream quietly too: its transport says which.
                if self._closed.is_set() or not self._resumable or not self._dropped():
                    return
            if self._closed.is_set() or not self._resume():
                return
            skip = (self._last, self._at_last)

    def _note(self, batch: list[LogLine]) -> list[LogLine]:
        if self._stamped and batch:
            last = batch[-1].timestamp
            same = 0
            for line in reversed(batch):
                if line.timestamp != last:
                    break
                same += 1
            if last == self._last:
                self._at_last += same
            elif last:
                self._last, self._at_last = last, same
        if self._stamped and not self._timestamps:
            return [LogLine(line.text) for line in batch]
        return batch

    def _dropped(self) -> bool:
        from stack.engine.connection import client_is_alive

        client = getattr(self.container, "client", None)
        return client is not None and not client_is_alive(client)

    def _resume(self) -> bool:
        """After the stream ended: True when it was re-opened (the container still runs)."""
        from stack.engine.connection import EngineUnavailable

        deadline = time.monotonic() + RECONNECT_WINDOW_S
        problem: Exception | None = None
        while not self._closed.is_set():
            try:
                container = self._fresh_container()
                if container.status not in ("running", "restarting", "paused"):
                    # It stopped: what it wrote after our last line, then the end.
                    self._reopen(container, follow=False)
                    self._resumable = False
                    return True
                self._reopen(container, follow=True)
                return True
            except Exception as exc:
                problem = exc
                if _gone(exc):
                    return False
                if not _connection_trouble(exc):
                    raise
            if time.monotonic() > deadline:
                name = getattr(self.container, "name", "the container")
                raise EngineUnavailable(
                    f"lost the connection to the engine while following {name}'s logs "
                    f"and could not reconnect for {RECONNECT_WINDOW_S:.0f} s ({problem})",
                    fix="check the network and the host; `llm-tui logs -f` goes on from there",
                ) from None
            self._closed.wait(RECONNECT_PAUSE_S)
        return False

    def _fresh_container(self) -> Any:
        try:
            self.container.reload()  # the same client still works (a quiet end)
            return self.container
        except Exception as exc:
            if _gone(exc):
                raise
        if self._reconnect is not None:
            container = self._reconnect()
        else:
            from stack.engine.connection import connect, endpoint_of

            if self._own_client is not None:
                with contextlib.suppress(Exception):
                    self._own_client.close()
            self._own_client = connect(endpoint=endpoint_of(self.container.client))
            container = self._own_client.containers.get(self.container.id)
        self.container = container
        return container

    def _reopen(self, container: Any, *, follow: bool) -> None:
        params = {**self._params, "follow": int(follow), "tail": "all"}
        if self._last:
            params["since"] = since_value(self._last)
        with self._lock:
            if self._closed.is_set():
                raise RuntimeError("closed")
            self._chunks, self._cancel = stream_logs(container, params)

    def __iter__(self) -> Iterator[LogLine]:
        for batch in self.batches():
            yield from batch

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            cancel = self._cancel
        cancel()
        if self._own_client is not None:
            with contextlib.suppress(Exception):
                self._own_client.close()


def _after(
    batch: list[LogLine], seen: tuple[str, int]
) -> tuple[list[LogLine], tuple[str, int] | None]:
    """``batch`` without what was given before a resume: lines older than the last one,
    and as many as were given with its timestamp. None once past it.
    """
    last, count = seen
    limit = _stamp_key(last)
    for index, line in enumerate(batch):
        key = _stamp_key(line.timestamp)
        if key < limit:
            continue
        if key == limit and count > 0:
            count -= 1
            continue
        return batch[index:], None
    return [], (last, count)


def _stamp_key(stamp: str) -> tuple[int, int]:
    """A timestamp as numbers (the engine trims trailing zeros, so text does not sort)."""
    try:
        seconds, _, nanos = since_value(stamp).partition(".")
        return int(seconds), int(nanos)
    except ValueError:
        return (0, 0)


def _networked(container: Any) -> bool:
    """Whether ``container`` is reached over a network (a connection that can drop)."""
    from stack.engine.connection import endpoint_of

    client = getattr(container, "client", None)
    if client is None or getattr(client, "llm_tui_endpoint", None) is None:
        api = getattr(client, "api", None)
        url = str(getattr(api, "base_url", ""))
        return url.startswith(("http+docker://ssh", "https://", "http://")) and not url.startswith(
            "http+docker://localhost"
        )
    return endpoint_of(client).transport in ("ssh", "tls", "tcp")


def _connection_trouble(exc: BaseException) -> bool:
    """A failure of the link to the engine (worth a retry), not of our own code."""
    names = {f"{cls.__module__}.{cls.__name__}" for cls in type(exc).__mro__}
    return isinstance(exc, OSError | EOFError) or any(
        name.startswith(("requests.", "urllib3.", "paramiko.", "docker.errors."))
        or name == "stack.engine.connection.EngineUnavailable"
        for name in names
    )


def _gone(exc: Exception) -> bool:
    """The container itself is gone (removed): nothing to follow any more."""
    return type(exc).__name__ == "NotFound"
