"""Hand-overs between a worker thread and the app loop.

`Mailbox`: the worker `put`s items as fast as they come; the first item after a `take`
posts one message to the node, whose handler `take`s everything that piled up meanwhile.
A flood of log lines or tokens thus costs one message per screen update, not one per item.
It holds at most ``limit`` items, so a container that writes faster than the screen draws
cannot grow it without end: past the limit ``compact`` merges what waits (tokens into one
piece, progress into the newest of each kind), and what still does not fit is dropped
oldest first and counted, for the screen to say so (`drain`). A worker that would rather
wait than have its items dropped (a log stream: the engine holds what it has not sent yet)
calls `wait_below` after a `put`, and reads on once the screen has taken what waits.

`StreamHandle`: a stream that a worker opens (a blocking call) and reads, and that the app
loop must be able to close at any moment, even before the worker has it. Closing happens
on a short-lived thread of its own: closing a socket another thread is reading from can
block until that read returns, and the app loop must never wait on the network.

`cancel_soon`: cancel workers' `CancelToken`s off the app loop, for the same reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

from textual.message import Message
from textual.message_pump import MessagePump

from stack.cancel import CancelToken

T = TypeVar("T")


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


DEFAULT_LIMIT = 10_000


class Mailbox(Generic[T]):
    def __init__(
        self,
        node: MessagePump,
        wake: Callable[[], Message],
        *,
        limit: int = DEFAULT_LIMIT,
        compact: Callable[[list[T]], list[T]] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("a mailbox holds at least one item")
        self._node = node
        self._wake = wake
        self._limit = limit
        self._compact = compact
        self._lock = threading.Lock()
        self._taken = threading.Condition(self._lock)
        self._items: list[T] = []
        self._dropped = 0
        self._woken = False

    def put(self, items: Iterable[T]) -> int:
        """Add ``items``; how many wait now (at most ``limit``)."""
        with self._lock:
            self._items.extend(items)
            if len(self._items) > self._limit:
                self._shrink()
            waiting = len(self._items)
            if self._woken or not self._items:
                return waiting
            self._woken = True
        self._node.post_message(self._wake())
        return waiting

    def wait_below(self, count: int, timeout: float) -> bool:
        """Block until fewer than ``count`` items wait (the screen took them), or ``timeout``
        seconds; True if they did."""
        with self._taken:
            return self._taken.wait_for(lambda: len(self._items) < count, timeout)

    def put_one(self, item: T) -> None:
        self.put((item,))

    def _shrink(self) -> None:
        if self._compact is not None:
            self._items = self._compact(self._items)
        excess = len(self._items) - self._limit
        if excess > 0:
            del self._items[:excess]
            self._dropped += excess

    def take(self) -> list[T]:
        return self.drain()[0]

    def drain(self) -> tuple[list[T], int]:
        """What waits, and how many older items were dropped to make room for it."""
        with self._lock:
            items, self._items = self._items, []
            dropped, self._dropped = self._dropped, 0
            self._woken = False
            self._taken.notify_all()
        return items, dropped


def newest(items: list[T], key: Callable[[T], object]) -> list[T]:
    """The last item of each ``key``, in the order those came (a `compact` for progress)."""
    last = {key(item): index for index, item in enumerate(items)}
    return [items[index] for index in sorted(last.values())]


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


def cancel_soon(*tokens: CancelToken) -> None:
    """Cancel ``tokens`` on a thread of its own: a cancel closes streams, and closing a
    socket another thread reads from can wait until that read returns."""
    if not tokens:
        return

    def cancel_all() -> None:
        for token in tokens:
            token.cancel()

    threading.Thread(target=cancel_all, name="cancel-workers", daemon=True).start()
