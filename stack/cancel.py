"""Cancelling blocking work from another thread: a token that waits poll and streams obey.

The TUI runs Docker, HTTP and file work in thread workers; quitting must not wait for a
model load (up to LOAD_TIMEOUT), an image pull or a chat answer to finish. Each such call
takes ``cancel: CancelToken | None``: waits use ``token.wait(interval)`` instead of
``time.sleep``, and a blocking stream registers ``on_cancel(stream.close)`` so cancelling
unblocks the reading thread at once. Cancelled work raises `Cancelled`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from stack.errors import LlmTuiError


class Cancelled(LlmTuiError):
    """The work was cancelled (the app is quitting, or the user stopped it)."""

    def __init__(self, what: str = "the operation") -> None:
        super().__init__(f"{what} was cancelled")


class CancelToken:
    """Set once, from any thread; every callback registered runs exactly once."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], object]] = {}
        self._next = 0

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = list(self._callbacks.values()), {}
        for callback in callbacks:
            # A stream that is already closed may complain; cancelling must not.
            with contextlib.suppress(Exception):
                callback()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; True (at once) when cancelled."""
        return self._event.wait(timeout)

    def check(self, what: str = "the operation") -> None:
        if self._event.is_set():
            raise Cancelled(what)

    def on_cancel(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Run ``callback`` on cancel (at once if already cancelled); returns an unregister."""
        with self._lock:
            if not self._event.is_set():
                key = self._next
                self._next += 1
                self._callbacks[key] = callback

                def unregister() -> None:
                    with self._lock:
                        self._callbacks.pop(key, None)

                return unregister
        with contextlib.suppress(Exception):
            callback()
        return lambda: None


def sleep(cancel: CancelToken | None, seconds: float, what: str = "the operation") -> None:
    """``time.sleep`` that raises `Cancelled` as soon as ``cancel`` is set."""
    if cancel is None:
        import time

        time.sleep(seconds)
        return
    if cancel.wait(seconds):
        raise Cancelled(what)


@contextlib.contextmanager
def closing_on_cancel(cancel: CancelToken | None, close: Callable[[], object]) -> Iterator[None]:
    """Within the block, cancelling calls ``close`` (unblocking a read in this thread)."""
    if cancel is None:
        yield
        return
    unregister = cancel.on_cancel(close)
    try:
        yield
    finally:
        unregister()
