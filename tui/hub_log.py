"""`huggingface_hub`'s log lines routed to a screen while it exists, not to the terminal."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable

from textual.message import Message
from textual.message_pump import MessagePump

HUB_LOGGER = "huggingface_hub"


class HubLogRoute(logging.Handler):
    """`huggingface_hub`'s warnings ("Retrying in 2s") as messages to the screen.

    The library logs to stderr through a handler of its own, which would write over the
    terminal the TUI draws on: while the screen exists this route takes its place.
    """

    def __init__(self, screen: MessagePump, notice: Callable[[str], Message]) -> None:
        super().__init__(logging.WARNING)
        self._screen = weakref.ref(screen)  # the logger outlives no screen through us
        self._notice = notice
        self._lock = threading.Lock()  # the search and the listing workers both install
        self._saved: tuple[list[logging.Handler], bool] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        screen = self._screen()
        if screen is not None:
            screen.post_message(self._notice(record.getMessage()))  # from any thread

    def install(self) -> None:
        """Called in a worker: importing the library adds its stderr handler, set aside here."""
        from huggingface_hub.utils import logging as hub_logging  # noqa: F401

        logger = logging.getLogger(HUB_LOGGER)
        with self._lock:
            if self._saved is None:
                others = [h for h in logger.handlers if not isinstance(h, HubLogRoute)]
                self._saved = (others, logger.propagate)
                for handler in list(logger.handlers):
                    logger.removeHandler(handler)
                logger.addHandler(self)
                logger.propagate = False

    def uninstall(self) -> None:
        """Put the library's own logging back (the TUI no longer draws)."""
        logger = logging.getLogger(HUB_LOGGER)
        with self._lock:
            if self._saved is None:
                return
            handlers, propagate = self._saved
            self._saved = None
            logger.removeHandler(self)
            if not logger.handlers:  # no other screen routes it now
                for handler in handlers:
                    logger.addHandler(handler)
                logger.propagate = propagate
