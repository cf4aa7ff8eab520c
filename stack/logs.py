"""Container logs as clean lines: buffered across chunks, decoded safely, escapes stripped.

Docker's log stream arrives in chunks that are not line-aligned; a line may also be split
inside a multi-byte UTF-8 character. `LineSplitter` reassembles lines; `follow_logs` wraps
the SDK stream so another thread can cancel it with `close()`.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

# CSI/OSC and other terminal escape sequences: log text is shown as plain text, never as
# instructions to the user's terminal.
_ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\\\)"  # OSC ... BEL or ST
    rb"|\x1b[@-Z\\\\-_]"  # other two-byte escapes
)
_FRAME_SIZE = struct.Struct(">L")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


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
    present), which keeps a flooding container well above 100k lines/s.
    """

    def __init__(self, *, timestamps: bool = False) -> None:
        self._buffer = b""
        self._timestamps = timestamps

    def feed(self, chunk: bytes) -> list[LogLine]:
        data = self._buffer + chunk if self._buffer else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            self._buffer = data
            return []
        self._buffer = data[cut + 1 :]
        return self._lines(data[:cut])

    def flush(self) -> list[LogLine]:
        if not self._buffer:
            return []
        raw, self._buffer = self._buffer, b""
        return self._lines(raw)

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


def dechunk(read: Callable[[], bytes]) -> Iterator[bytes]:
    """HTTP/1.1 chunked transfer decoding over a byte source, one batch per read.

    The engine flushes every log line as its own HTTP chunk; decoding whole reads at
    once (instead of one socket read per chunk) is what makes log following fast.
    """
    buffer = b""
    while True:
        data = read()
        if not data:
            return
        buffer += data
        pieces: list[bytes] = []
        offset = 0
        while True:
            end = buffer.find(b"\r\n", offset)
            if end < 0:
                break
            size = int(buffer[offset:end].split(b";", 1)[0] or b"0", 16)
            if size == 0:
                if pieces:
                    yield b"".join(pieces)
                return
            start = end + 2
            if len(buffer) < start + size + 2:
                break
            pieces.append(buffer[start : start + size])
            offset = start + size + 2
        buffer = buffer[offset:]
        if pieces:
            yield b"".join(pieces)


def demultiplex(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Docker's stdout/stderr frames (8-byte header: stream, size) → payload bytes."""
    buffer = b""
    for block in blocks:
        buffer += block
        payloads: list[bytes] = []
        offset = 0
        while len(buffer) - offset >= 8:
            (size,) = _FRAME_SIZE.unpack_from(buffer, offset + 4)
            if len(buffer) - offset - 8 < size:
                break
            payloads.append(buffer[offset + 8 : offset + 8 + size])
            offset += 8 + size
        buffer = buffer[offset:]
        if payloads:
            yield b"".join(payloads)


def _stream_logs(
    container: Any, params: dict[str, Any]
) -> tuple[Iterator[bytes], Callable[[], None]]:
    """Raw log bytes of ``container`` and a function that cancels the stream.

    Reads the engine's response directly (3x faster than the SDK's one-read-per-frame
    loop); if the SDK's internals ever change, falls back to its public stream.
    """
    try:
        return _stream_logs_fast(container, params)
    except AttributeError:
        stream = container.logs(
            stream=True,
            follow=bool(params["follow"]),
            timestamps=bool(params["timestamps"]),
            tail=params["tail"],
            since=params.get("since"),
        )
        return iter(stream), stream.close


def _stream_logs_fast(
    container: Any, params: dict[str, Any]
) -> tuple[Iterator[bytes], Callable[[], None]]:
    api = container.client.api
    response = api._get(api._url("/containers/{0}/logs", container.id), params=params, stream=True)
    api._raise_for_status(response)
    sock = api._get_raw_response_socket(response)
    api._disable_socket_timeout(sock)
    reader = response.raw._fp.fp  # the buffered socket file, positioned after the headers

    def read() -> bytes:
        data: bytes = reader.read1(1 << 16)
        return data

    chunked = response.headers.get("Transfer-Encoding", "").lower() == "chunked"
    body = dechunk(read) if chunked else iter(read, b"")
    tty = bool(container.attrs.get("Config", {}).get("Tty"))

    def cancel() -> None:
        # Shut the socket down first: closing the buffered reader waits for its lock, which
        # a thread blocked in read1() on a quiet container holds until the next line.
        raw = getattr(sock, "_sock", sock)
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)
        response.close()

    return (body if tty else demultiplex(body)), cancel


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
        params: dict[str, Any] = {
            "stdout": 1,
            "stderr": 1,
            "follow": int(follow),
            "timestamps": int(timestamps),
            "tail": tail,
        }
        if since is not None:
            params["since"] = int(since.timestamp()) if hasattr(since, "timestamp") else since
        self._chunks, self._cancel = _stream_logs(container, params)
        self._timestamps = timestamps
        self._closed = threading.Event()

    def batches(self) -> Iterator[list[LogLine]]:
        """Lines in batches as they arrive; ends when the container stops or on close()."""
        try:
            for batch in split_batches(self._chunks, timestamps=self._timestamps):
                if self._closed.is_set():
                    return
                yield batch
        except Exception:
            if not self._closed.is_set():
                raise

    def __iter__(self) -> Iterator[LogLine]:
        for batch in self.batches():
            yield from batch

    def close(self) -> None:
        self._closed.set()
        self._cancel()
