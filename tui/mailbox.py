"""Hand-overs between a worker thread and the app loop.

`Mailbox`: the worker `put`s items as fast as they come; the first item after a `take`
posts one message to the node, whose handler `take`s everything that piled up meanwhile.
A flood of log lines or tokens thus costs one message per screen update, not one per item.

`StreamHandle`: a stream that a worker opens (a blocking call) and reads, and that the app
loop must be able to close at any moment, even before the worker has it. Closing happens
on a short-lived thread of its own: closing a socket another thread is reading from can
block until that read returns, and the app loop must never wait on the network.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from textual.message import Message
from textual.message_pump import MessagePump

T = TypeVar("T")


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class Mailbox(Generic[T]):
    def __init__(self, node: MessagePump, wake: Callable[[], Message]) -> None:
        self._node = node
        self._wake = wake
        self._lock = threading.Lock()
        self._items: list[T] = []
        self._woken = False

    def put(self, items: Iterable[T]) -> None:
        with self._lock:
            self._items.extend(items)
            if self._woken or not self._items:
                return
            self._woken = True
        self._node.post_message(self._wake())

    def put_one(self, item: T) -> None:
        self.put((item,))

    def take(self) -> list[T]:
        with self._lock:
            items, self._items = self._items, []
            self._woken = False
        return items


class StreamHandle(Generic[C]):
    """Owns one stream across threads; `close()` from the app loop ends the worker's loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stream: C | None = None
        self.closed = False

    def attach(self, stream: C) -> bool:
        """Keep ``stream``; False (and the stream closed) if the handle was closed already."""
        with self._lock:
            if not self.closed:
                self._stream = stream
                return True
        stream.close()
        return False

    def close(self) -> None:
        with self._lock:
            self.closed = True
            stream, self._stream = self._stream, None
        if stream is not None:
            threading.Thread(target=stream.close, name="close-stream", daemon=True).start()
