"""The raw bytes of a container's logs, read fast where the transport allows it.

`stream_logs` reads the engine's response itself (HTTP chunking, Docker's stdout/stderr
frames) where the transport's file object has ``read1`` (unix sockets, TCP, TLS) or is
paramiko's channel file (SSH: its buffer, then the channel's ``recv``), and uses the SDK's
public stream for anything else; both come with a function that ends the stream from
another thread, on every transport (`close_stream`).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_FRAME_SIZE = struct.Struct(">L")


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


def stream_logs(
    container: Any, params: dict[str, Any]
) -> tuple[Iterator[bytes], Callable[[], None]]:
    """Raw log bytes of ``container`` and a function that cancels the stream.

    Reads the engine's response directly (3x faster than the SDK's one-read-per-frame
    loop) where the transport allows it (`read1_of`); if the SDK's internals ever change,
    uses the SDK's public stream.
    """
    fast = stream_logs_fast(container, params)
    if fast is not None:
        return fast
    stream = container.logs(
        stream=True,
        follow=bool(params["follow"]),
        timestamps=bool(params["timestamps"]),
        tail=params["tail"],
        # The SDK takes a number only: a microsecond early, so no line is lost (a resume
        # drops the lines it gave already).
        since=float(params["since"]) - 1e-6
        if isinstance(params.get("since"), str)
        else (params.get("since")),
    )
    return iter(stream), lambda: close_stream(stream)


def close_stream(stream: Any) -> None:
    """Close an SDK `CancellableStream` from another thread, on every transport.

    The SDK refuses to close streams over SSH; closing the paramiko channel under the
    response ends the blocked read just the same.
    """
    try:
        stream.close()
        return
    except Exception:
        pass
    response = getattr(stream, "_response", None)
    reader = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)
    channel = getattr(reader, "channel", None)
    if channel is not None:
        with contextlib.suppress(Exception):
            channel.close()
    if response is not None:
        with contextlib.suppress(Exception):
            response.close()


def read1_of(reader: Any) -> Callable[[int], bytes]:
    """``reader.read1``: what has arrived, up to n bytes, after one wait at most.

    A paramiko ChannelFile (SSH) has no ``read1`` and its ``read(n)`` waits for all n
    bytes; what it buffered past the headers, then the channel's own ``recv``, does the
    same as ``read1``. Raises AttributeError for any other reader.
    """
    read1: Callable[[int], bytes] | None = getattr(reader, "read1", None)
    if read1 is not None:
        return read1
    channel = getattr(reader, "channel", None)
    if channel is None or not isinstance(getattr(reader, "_rbuffer", None), bytes):
        raise AttributeError("read1")

    def from_channel(size: int) -> bytes:
        buffered: bytes = reader._rbuffer
        if buffered:
            reader._rbuffer = buffered[size:]
            return buffered[:size]
        data: bytes = channel.recv(size)
        return data

    return from_channel


def stream_logs_fast(
    container: Any, params: dict[str, Any]
) -> tuple[Iterator[bytes], Callable[[], None]] | None:
    """The direct reader, or None where the transport has no ``read1`` (nothing is leaked)."""
    api = container.client.api
    try:
        url = api._url("/containers/{0}/logs", container.id)
        response = api._get(url, params=params, stream=True)
    except AttributeError:
        return None
    try:
        api._raise_for_status(response)
        reader = response.raw._fp.fp  # the buffered socket file, positioned after the headers
        read1 = read1_of(reader)
        sock = api._get_raw_response_socket(response)
    except AttributeError:
        response.close()
        return None
    except BaseException:
        response.close()
        raise
    api._disable_socket_timeout(sock)

    def read() -> bytes:
        data: bytes = read1(1 << 16)
        return data

    chunked = response.headers.get("Transfer-Encoding", "").lower() == "chunked"
    body = dechunk(read) if chunked else iter(read, b"")
    tty = bool(container.attrs.get("Config", {}).get("Tty"))

    def cancel() -> None:
        # Shut the socket down first: closing the buffered reader waits for its lock, which
        # a thread blocked in read1() on a quiet container holds until the next line.
        raw = getattr(sock, "_sock", sock)
        if raw is None:  # the response closed its socket already (the stream ended)
            response.close()
            return
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)
        if hasattr(raw, "recv_ready"):  # a paramiko channel: only close() wakes its recv()
            with contextlib.suppress(Exception):
                raw.close()
        response.close()

    return (body if tty else demultiplex(body)), cancel
