"""What the app calls into `stack/` through: injectable, so tests can pass small fakes.

Every callable here blocks (Docker, NVML, HTTP, disk): screens call them from thread
workers only. The protocols name just what the screens use, so a fake needs no more.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stack.cancel import CancelToken
from stack.chat import ChatDelta, stream_chat
from stack.doctor import Check, run_checks
from stack.engine import Engine, ServiceStatus, UpResult
from stack.engine.events import StackEvent
from stack.engine.logs import LogFollower, LogLine
from stack.gpu import GpuSample, read_gpus
from stack.models.library import LocalModel, scan_library
from stack.settings import Settings, load_settings, set_setting

Progress = Callable[[str], None]

# How many lines a log pane loads when it opens; the rest arrive as they are written.
LOG_TAIL = 500


class EventSource(Protocol):
    """The engine's event stream: iterate it in a thread, ``close()`` it from another."""

    def __iter__(self) -> Iterator[StackEvent]: ...

    def close(self) -> None: ...


class LogSource(Protocol):
    """A container's log lines in batches; ``close()`` from any thread stops them."""

    def batches(self) -> Iterable[list[LogLine]]: ...

    def close(self) -> None: ...


class StackEngine(Protocol):
    """The part of `stack.engine.Engine` the screens drive.

    Operations take ``cancel``: the app cancels it when it quits, and the operation stops
    at once (a model load or an image pull would otherwise hold the exit for minutes).
    """

    settings: Settings

    def up(
        self,
        *,
        wait: bool = ...,
        progress: Progress = ...,
        timeout: float | None = ...,
        cancel: CancelToken | None = ...,
    ) -> UpResult: ...

    def down(
        self,
        *,
        remove_network: bool = ...,
        progress: Progress = ...,
        cancel: CancelToken | None = ...,
    ) -> list[str]: ...

    def restart(
        self,
        role: str,
        *,
        wait: bool = ...,
        progress: Progress = ...,
        cancel: CancelToken | None = ...,
    ) -> None: ...

    def status(self) -> list[ServiceStatus]: ...

    def swap(
        self,
        model: str,
        role: str = ...,
        *,
        wait: bool = ...,
        progress: Progress = ...,
        cancel: CancelToken | None = ...,
    ) -> None: ...

    def container_for(self, role: str) -> Any: ...

    def events(self) -> EventSource: ...

    def close(self) -> None:
        """Close the Docker client (a later call connects again)."""


class ChatStreamer(Protocol):
    """`stack.chat.stream_chat`: one streamed answer; ``cancel`` closes its connection."""

    def __call__(
        self,
        base_url: str,
        key: str,
        messages: list[dict[str, str]],
        *,
        model: str = ...,
        max_tokens: int | None = ...,
        cancel: CancelToken | None = ...,
    ) -> Iterator[ChatDelta]: ...


def scan_local_models(settings: Settings) -> list[LocalModel]:
    """The library in MODELS_DIR, with CHAT_MODEL / CODE_MODEL marked."""
    return scan_library(
        settings.models_dir, chat_model=settings.chat_model, code_model=settings.code_model
    )


def follow_container_logs(container: Any) -> LogSource:
    """Follow ``container``'s logs from its last LOG_TAIL lines on, with timestamps."""
    return LogFollower(container, follow=True, tail=LOG_TAIL, timestamps=True)


def make_engine(settings: Settings) -> StackEngine:
    """The real engine; it connects to Docker on first use (in a worker), not here."""
    return Engine(settings)


@dataclass(frozen=True)
class Services:
    """The blocking calls the screens make, each run in a thread worker."""

    run_checks: Callable[[Settings], list[Check]] = field(default=run_checks)
    scan_models: Callable[[Settings], list[LocalModel]] = field(default=scan_local_models)
    set_setting: Callable[[Settings, str, str], Settings] = field(default=set_setting)
    load_settings: Callable[[Path], Settings] = field(default=load_settings)
    make_engine: Callable[[Settings], StackEngine] = field(default=make_engine)
    follow_logs: Callable[[Any], LogSource] = field(default=follow_container_logs)
    read_gpus: Callable[[], list[GpuSample]] = field(default=read_gpus)
    stream_chat: ChatStreamer = field(default=stream_chat)
    # Seconds for rates (tokens/s); tests freeze it so the numbers on screen are fixed.
    clock: Callable[[], float] = field(default=time.monotonic)
