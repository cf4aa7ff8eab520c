"""What the app calls into `stack/` through: injectable, so tests can pass small fakes.

Every callable here blocks (Docker, NVML, HTTP, disk): screens call them from thread
workers only. The protocols name just what the screens use, so a fake needs no more.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stack.cancel import CancelToken
from stack.settings import Settings, load_settings, set_setting, set_settings

if TYPE_CHECKING:
    from stack.chat import ChatDelta
    from stack.chat.store import ConversationStore
    from stack.clients import Probe
    from stack.doctor import Check
    from stack.engine import ServiceStatus, UpResult
    from stack.engine.events import StackEvent
    from stack.engine.logs import LogLine
    from stack.gpu import GpuSample, GpuSampler
    from stack.models.library import LocalModel

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
    """`stack.chat.stream_chat_batches`: one streamed answer, the deltas of each network
    read together; ``cancel`` closes its connection."""

    def __call__(
        self,
        base_url: str,
        key: str,
        messages: list[dict[str, str]],
        *,
        model: str = ...,
        max_tokens: int | None = ...,
        temperature: float | None = ...,
        top_p: float | None = ...,
        cancel: CancelToken | None = ...,
    ) -> Iterator[list[ChatDelta]]: ...


# The real calls import their modules when first called, in the worker that makes them:
# the engine, docker, httpx and the chat client stay out of the app's start-up.


def run_checks(settings: Settings) -> list[Check]:
    from stack.doctor import run_checks as run

    return run(settings)


def check_connection(*args: Any, **kwargs: Any) -> list[Probe]:
    from stack.clients import check_connection as check

    return check(*args, **kwargs)


def stream_chat_batches(*args: Any, **kwargs: Any) -> Iterator[list[ChatDelta]]:
    from stack.chat import stream_chat_batches as stream

    return stream(*args, **kwargs)


def conversation_store() -> ConversationStore:
    from stack.chat.store import ConversationStore

    return ConversationStore()


def read_gpus() -> list[GpuSample]:
    from stack.gpu import read_gpus as read

    return read()


def make_gpu_sampler() -> GpuSampler:
    from stack.engine.remote_gpu import engine_gpu_sampler

    # A remote engine's GPUs are read on its host; this machine's NVML would describe ours.
    return engine_gpu_sampler()


def scan_local_models(settings: Settings) -> list[LocalModel]:
    """The library (MODELS_DIR, or a remote engine's host), CHAT_MODEL / CODE_MODEL marked."""
    from stack.engine.remote_models import scan_models

    return scan_models(settings)


def follow_container_logs(container: Any, tail: int = LOG_TAIL) -> LogSource:
    """Follow ``container``'s logs from its last ``tail`` lines on, with timestamps."""
    from stack.engine.logs import LogFollower

    return LogFollower(container, follow=True, tail=tail, timestamps=True)


def make_engine(settings: Settings) -> StackEngine:
    """The real engine; it connects to Docker on first use (in a worker), not here.

    It keeps a remote engine's gateway reachable here (an SSH forward) while it polls.
    """
    from stack.engine import Engine

    return Engine(settings, forward=True)


@dataclass(frozen=True)
class Services:
    """The blocking calls the screens make, each run in a thread worker."""

    run_checks: Callable[[Settings], list[Check]] = field(default=run_checks)
    scan_models: Callable[[Settings], list[LocalModel]] = field(default=scan_local_models)
    set_setting: Callable[[Settings, str, str], Settings] = field(default=set_setting)
    set_settings: Callable[[Settings, Mapping[str, str]], Settings] = field(default=set_settings)
    # The Connect screen's test: the gateway's three calls, through its URL and key.
    check_connection: Callable[..., list[Probe]] = field(default=check_connection)
    load_settings: Callable[[Path], Settings] = field(default=load_settings)
    make_engine: Callable[[Settings], StackEngine] = field(default=make_engine)
    follow_logs: Callable[..., LogSource] = field(default=follow_container_logs)
    read_gpus: Callable[[], list[GpuSample]] = field(default=read_gpus)
    # The GPU charts' sampler (one NVML session, kept open while the charts show).
    make_gpu_sampler: Callable[[], GpuSampler] = field(default=make_gpu_sampler)
    stream_chat: ChatStreamer = field(default=stream_chat_batches)
    # Where conversations are kept ($XDG_DATA_HOME/llm-tui/conversations by default).
    conversation_store: Callable[[], ConversationStore] = field(default=conversation_store)
    # Seconds for rates (tokens/s); tests freeze it so the numbers on screen are fixed.
    clock: Callable[[], float] = field(default=time.monotonic)
    # The guided setup opens on a first run (no model anywhere); tests turn it off.
    first_run_guide: bool = True
