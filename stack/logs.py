"""Container logs as clean lines: buffered across chunks, decoded safely, escapes stripped.

Docker's log stream arrives in chunks that are not line-aligned; a line may also be split
inside a multi-byte UTF-8 character. `LineSplitter` reassembles lines; `follow_logs` wraps
the SDK stream so another thread can cancel it with `close()`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# CSI/OSC and other terminal escape sequences: log text is shown as plain text, never as
# instructions to the user's terminal.
_ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\\\)"  # OSC ... BEL or ST
    rb"|\x1b[@-Z\\\\-_]"  # other two-byte escapes
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class LogLine:
    text: str
    timestamp: str = ""  # RFC 3339 from the engine, when asked for


def clean(raw: bytes) -> str:
    text = _ESCAPES.sub(b"", raw).decode("utf-8", "replace")
    return _CONTROL.sub("", text.rstrip("\r"))


class LineSplitter:
    """Feed byte chunks, get complete lines; ``flush()`` returns a final partial line."""

    def __init__(self, *, timestamps: bool = False) -> None:
        self._buffer = b""
        self._timestamps = timestamps

    def feed(self, chunk: bytes) -> list[LogLine]:
        data = self._buffer + chunk
        *complete, self._buffer = data.split(b"\n")
        return [self._line(raw) for raw in complete]

    def flush(self) -> list[LogLine]:
        if not self._buffer:
            return []
        raw, self._buffer = self._buffer, b""
        return [self._line(raw)]

    def _line(self, raw: bytes) -> LogLine:
        if self._timestamps:
            stamp, _, rest = raw.partition(b" ")
            return LogLine(clean(rest), stamp.decode("ascii", "replace"))
        return LogLine(clean(raw))


def split_lines(chunks: Iterable[bytes], *, timestamps: bool = False) -> Iterator[LogLine]:
    splitter = LineSplitter(timestamps=timestamps)
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.flush()


class LogFollower:
    """Iterate a container's log lines; ``close()`` from any thread stops the iteration."""

    def __init__(
        self,
        container: Any,
        *,
        follow: bool = True,
        tail: int | str = "all",
        since: Any = None,
        timestamps: bool = True,
    ) -> None:
        self._stream = container.logs(
            stream=True, follow=follow, tail=tail, since=since, timestamps=timestamps
        )
        self._timestamps = timestamps
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[LogLine]:
        try:
            for line in split_lines(self._stream, timestamps=self._timestamps):
                if self._closed.is_set():
                    return
                yield line
        except Exception:
            if not self._closed.is_set():
                raise

    def close(self) -> None:
        self._closed.set()
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()
