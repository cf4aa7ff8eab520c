"""Textual's terminal driver, with an input thread that sleeps until there is input.

Textual 8.2.8's `LinuxDriver` (every POSIX terminal) reads keys on a thread that wakes
ten times a second whether or not anything was typed: `select` with a 0.1 s timeout, so
that it notices the app stopping and so that a lone Escape becomes a key once no sequence
follows it. That is ~0.2 % of a core for an app left open doing nothing, as much as the
dashboard's own idle work.

`QuietLinuxDriver` reads the same way (the same parser, decoder and messages) but waits
with no timeout unless the parser holds a partial escape sequence (then exactly until its
deadline), and the app stopping wakes it through a pipe. Quitting is as quick as before.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from codecs import getincrementaldecoder
from typing import Any

from textual._parser import ParseError
from textual._time import get_time
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver


class WakingEvent(threading.Event):
    """The driver's exit event: setting it also wakes the input thread's wait."""

    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self._wake_fd = wake_fd

    def set(self) -> None:
        super().set()
        with contextlib.suppress(OSError):  # full (awake already) or closed (no thread)
            os.write(self._wake_fd, b"x")


class QuietLinuxDriver(LinuxDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)  # a full pipe is awake already
        self.exit_event = WakingEvent(self._wake_w)

    def close(self) -> None:
        super().close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run_input_thread(self) -> None:
        fileno, wake_r = self.fileno, self._wake_r
        selector = selectors.SelectSelector()
        selector.register(fileno, selectors.EVENT_READ)
        selector.register(wake_r, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")().decode

        def timeout() -> float | None:
            """None while no partial sequence waits; else the time left to its deadline."""
            deadline = parser._timeout_time
            return None if deadline is None else max(0.0, deadline - get_time())

        def process(ready: list[tuple[selectors.SelectorKey, int]]) -> None:
            for key, mask in ready:
                if key.fd == wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 64)
                elif mask & selectors.EVENT_READ:
                    data = decode(os.read(fileno, 1024 * 4))
                    if not data:
                        break  # stdin piped and at its end
                    for event in parser.feed(data):
                        self.process_message(event)
            for event in parser.tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                process(selector.select(timeout()))
            selector.unregister(fileno)
            selector.unregister(wake_r)
        finally:
            selector.close()
            try:
                for _ in parser.feed(""):
                    pass
            except (EOFError, ParseError):
                pass
