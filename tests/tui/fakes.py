"""Small fakes for the app's seams (`tui.services.Services`): engine, logs, GPU, chat, clock.

They record what the app asked for and answer with canned results, so Pilot tests can
assert on both sides. Anything that would block (an event stream, a log stream, a slow
answer) blocks on a `threading.Event` the test controls, never on time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from stack.cancel import Cancelled, CancelToken
from stack.chat import ChatDelta, ChatError
from stack.doctor import Check
from stack.engine import ServiceStatus, UpResult
from stack.engine.errors import EngineError
from stack.engine.events import StackEvent
from stack.engine.logs import LogLine
from stack.gpu import GpuSample, GpuSampler, GpuUnavailable, MetricsUnavailable, Throughput
from stack.settings import Settings, set_setting
from tui.services import ChatStreamer, EventSource, LogSource, Services, StackEngine

GIB = 2**30
# How long a hold lasts if the test never releases it: a bound on a leaked thread (so the
# test process can end), far beyond any test; releasing is what the tests wait for.
HOLD_S = 120.0
POLL_S = 0.01  # how often a hold looks at its cancel token
NO_DRIVER = (
    "no NVIDIA driver found (libnvidia-ml is missing); install the NVIDIA driver, "
    "or on WSL2 update the Windows NVIDIA driver"
)
FROZEN_GPU = GpuSample(
    index=0,
    name="NVIDIA GeForce RTX 4050 Laptop GPU",
    memory_total=6 * GIB,
    memory_used=int(4.3 * GIB),
    utilization=63,
    temperature=61,
    power_watts=28.4,
    power_limit_watts=80.0,
)


def hold(release: threading.Event, cancel: CancelToken | None, what: str) -> None:
    """Wait for ``release`` the way the engine waits for a model: polling ``cancel``, so
    cancelling ends the wait at once with `Cancelled`."""
    end = time.monotonic() + HOLD_S
    while not release.wait(POLL_S):
        if cancel is not None:
            cancel.check(what)
        if time.monotonic() > end:
            return


def running(role: str, stack: str = "llm-tui", **changes: Any) -> ServiceStatus:
    """A healthy running service as `Engine.status()` reports it."""
    ports = {
        "inference": ("127.0.0.1:8001->8080/tcp",),
        "api-gateway": ("127.0.0.1:8000->4000/tcp",),
    }
    base = ServiceStatus(
        role=role,
        name=f"{stack}-{role}",
        state="running",
        health="healthy",
        image="ghcr.io/berriai/litellm:v1.106.2"
        if role == "api-gateway"
        else "ghcr.io/ggml-org/llama.cpp:server-cuda-b6000",
        model="" if role == "api-gateway" else "Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf",
        ports=ports.get(role, ()),
        gpu=role != "api-gateway",
        started_at="2025-01-01T10:00:00.000000000Z",
        uptime_s=3723.0,
        container_id=f"id-{role}",
    )
    return replace(base, **changes)


def missing(role: str, stack: str = "llm-tui") -> ServiceStatus:
    return ServiceStatus(role=role, name=f"{stack}-{role}", state="missing", health="")


def stopped_stack() -> list[ServiceStatus]:
    return [missing("inference"), missing("api-gateway")]


def running_stack() -> list[ServiceStatus]:
    return [running("inference"), running("api-gateway")]


class FakeStream:
    """An iterable that yields ``items`` and then, if ``hold``, waits until closed."""

    def __init__(self, items: Iterable[Any] = (), *, hold: bool = False) -> None:
        self.items = list(items)
        self.hold = hold
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            if self.closed.is_set():
                return
            yield item
        if self.hold:
            self.closed.wait(timeout=HOLD_S)

    def batches(self) -> Iterator[Any]:
        return iter(self)

    def close(self) -> None:
        self.closed.set()


@dataclass
class FakeContainer:
    role: str
    name: str


@dataclass
class FakeEngine:
    """Canned statuses; up/down/restart/swap record their calls and change the statuses."""

    given_settings: Settings | None = None  # what `factory` was called with
    statuses: list[ServiceStatus] = field(default_factory=stopped_stack)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    progress_lines: Sequence[str] = (
        "starting llm-tui-inference",
        "llm-tui-inference: loading model",
        "llm-tui-inference ready",
        "starting llm-tui-api-gateway",
        "llm-tui-api-gateway ready",
    )
    error: Exception | None = None  # raised by up/down/restart/swap
    status_error: Exception | None = None  # raised by status/container_for/events
    events_list: list[StackEvent] = field(default_factory=list)
    hold_events: bool = False
    release: threading.Event | None = None  # up/restart/swap wait for it when set
    streams: list[FakeStream] = field(default_factory=list)
    status_calls: int = 0
    closed: threading.Event = field(default_factory=threading.Event)
    cancelled: list[str] = field(default_factory=list)  # operations a cancel stopped
    returned: threading.Event = field(default_factory=threading.Event)  # one has returned

    def factory(self, settings: Settings) -> FakeEngine:
        """What `Services.make_engine` gets: this one engine, with the app's settings."""
        self.given_settings = settings
        return self

    @property
    def settings(self) -> Settings:
        assert self.given_settings is not None, "the app has not built its engine yet"
        return self.given_settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        self.given_settings = settings

    def _work(self, name: str, progress: Any, cancel: CancelToken | None, *args: Any) -> None:
        self.calls.append((name, *args))
        try:
            for line in self.progress_lines:
                progress(line)
            if self.release is not None:
                try:
                    hold(self.release, cancel, f"{name} (loading the model)")
                except Cancelled:
                    self.cancelled.append(name)
                    raise
            if self.error is not None:
                raise self.error
        finally:
            self.returned.set()

    def up(
        self,
        *,
        wait: bool = True,
        progress: Any = print,
        timeout: Any = None,
        cancel: CancelToken | None = None,
    ) -> UpResult:
        self._work("up", progress, cancel)
        created = tuple(s.name for s in self.statuses if s.state != "running")
        kept = tuple(s.name for s in self.statuses if s.state == "running")
        self.statuses = [running(s.role) for s in self.statuses]
        return UpResult(created=created, kept=kept, recreated=())

    def down(
        self,
        *,
        remove_network: bool = False,
        progress: Any = print,
        cancel: CancelToken | None = None,
    ) -> list[str]:
        self.calls.append(("down",))
        progress("removing llm-tui-inference")
        if self.error is not None:
            raise self.error
        removed = [s.name for s in self.statuses if s.state != "missing"]
        self.statuses = [missing(s.role) for s in self.statuses]
        return removed

    def restart(
        self,
        role: str,
        *,
        wait: bool = True,
        progress: Any = print,
        cancel: CancelToken | None = None,
    ) -> None:
        self._work("restart", progress, cancel, role)

    def status(self) -> list[ServiceStatus]:
        self.status_calls += 1
        if self.status_error is not None:
            raise self.status_error
        return list(self.statuses)

    def swap(
        self,
        model: str,
        role: str = "chat",
        *,
        wait: bool = True,
        progress: Any = print,
        cancel: CancelToken | None = None,
    ) -> None:
        self._work("swap", progress, cancel, model, role)
        key = "CHAT_MODEL" if role == "chat" else "CODE_MODEL"
        self.settings = set_setting(self.settings, key, model)

    def container_for(self, role: str) -> FakeContainer:
        if self.status_error is not None:
            raise self.status_error
        status = next((s for s in self.statuses if s.role == role), None)
        if status is None or status.state == "missing":
            raise EngineError(
                f"llm-tui-{role} does not exist", fix="start the stack (`llm-tui up`)"
            )
        return FakeContainer(role, status.name)

    def close(self) -> None:
        self.closed.set()

    def events(self) -> FakeStream:
        if self.status_error is not None:
            raise self.status_error
        stream = FakeStream(self.events_list, hold=self.hold_events)
        self.events_list = []
        self.streams.append(stream)
        return stream


@dataclass
class FakeLogs:
    """`Services.follow_logs`: canned batches per role, then open until closed."""

    batches: dict[str, list[list[LogLine]]] = field(default_factory=dict)
    hold: bool = True
    opened: list[str] = field(default_factory=list)
    tails: list[int] = field(default_factory=list)
    streams: list[FakeStream] = field(default_factory=list)
    # Batches for the streams opened again (after a skip ahead), per role.
    later: dict[str, list[list[LogLine]]] = field(default_factory=dict)

    def __call__(self, container: FakeContainer, tail: int = 500) -> FakeStream:
        self.opened.append(container.role)
        self.tails.append(tail)
        again = self.opened.count(container.role) > 1 and container.role in self.later
        batches = self.later if again else self.batches
        stream = FakeStream(batches.get(container.role, []), hold=self.hold)
        self.streams.append(stream)
        return stream


@dataclass
class FakeChat:
    """`Services.stream_chat`: yields ``pieces`` (one batch each); records every request."""

    pieces: Sequence[str] = ("Hello", " from", " the", " **local**", " model.")
    reasoning: Sequence[str] = ()  # reasoning pieces, sent before the answer
    usage: dict[str, Any] | None = None
    error: ChatError | None = None
    error_after: int | None = None  # raise ``error`` after this many pieces instead
    hold_after: int | None = None  # wait for ``release`` after this many pieces
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)  # a cancel ended one

    def __call__(
        self,
        base_url: str,
        key: str,
        messages: list[dict[str, str]],
        *,
        model: str = "local-chat",
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[list[ChatDelta]]:
        self.requests.append(
            {
                "base_url": base_url,
                "key": key,
                "messages": list(messages),
                "model": model,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "top_p": top_p,
            }
        )
        if self.error is not None and self.error_after is None:
            raise self.error
        for piece in self.reasoning:
            yield [ChatDelta("", reasoning=piece)]
        for index, piece in enumerate(self.pieces):
            if self.error is not None and index == self.error_after:
                raise self.error
            if self.hold_after is not None and index == self.hold_after:
                try:
                    hold(self.release, cancel, "the answer")  # as if the model were slow
                except Cancelled:
                    self.cancelled.set()
                    raise
            yield [ChatDelta(piece)]
        yield [ChatDelta("", "stop", self.usage)]


class FakeClock:
    """Each reading is ``step`` seconds after the last: rates and durations are fixed."""

    def __init__(self, step: float = 0.25) -> None:
        self.now = 1000.0
        self.step = step
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += self.step
            return self.now


def frozen_gpu() -> list[GpuSample]:
    return [FROZEN_GPU]


def no_gpu() -> list[GpuSample]:
    raise GpuUnavailable(NO_DRIVER)


class CallReader:
    """An open "NVML session" that answers with ``read()`` (frozen_gpu, no_gpu, …)."""

    def __init__(self, read: Callable[[], list[GpuSample]]) -> None:
        self.read = read

    def sample(self) -> list[GpuSample]:
        return self.read()

    def close(self) -> None:
        pass


@dataclass
class FakeMetrics:
    """llama-server's /metrics as the sampler reads it: fixed tokens/s per URL."""

    rates: dict[str, float] = field(default_factory=dict)  # base URL → tokens/s

    def __call__(self, base_url: str) -> FakeMetricsReader:
        return FakeMetricsReader(base_url, self.rates.get(base_url))


@dataclass
class FakeMetricsReader:
    base_url: str
    rate_value: float | None

    def rate(self, now: float) -> Throughput:
        if self.rate_value is None:
            raise MetricsUnavailable(f"{self.base_url}/metrics: connection refused")
        return Throughput(self.rate_value, 0.0, 1 if self.rate_value else 0)

    def close(self) -> None:
        pass


def fake_gpu_sampler(
    gpus: Callable[[], list[GpuSample]],
    *,
    metrics: FakeMetrics | None = None,
    containers: dict[int, str] | None = None,
    wsl: bool = False,
) -> GpuSampler:
    """A sampler over Python fakes: GPUs from ``gpus``, PIDs → container ids from a dict."""
    known = containers or {}
    return GpuSampler(
        open_gpus=lambda: CallReader(gpus),
        container_of=known.get,
        visible=lambda pid: True,
        wsl=wsl,
        metrics=metrics or FakeMetrics(),  # type: ignore[arg-type]
    )


def fake_services(
    checks: Sequence[Check],
    *,
    engine: FakeEngine | None = None,
    logs: FakeLogs | None = None,
    chat: FakeChat | None = None,
    gpus: Any = no_gpu,
    **more: Any,
) -> Services:
    """Services wired to fakes (the real `.env` writer and library scan are kept)."""
    engine = engine or FakeEngine()
    more.setdefault("make_gpu_sampler", lambda: fake_gpu_sampler(gpus))
    more.setdefault("first_run_guide", False)
    return Services(
        run_checks=lambda settings: list(checks),
        make_engine=engine.factory,
        follow_logs=logs or FakeLogs(),
        read_gpus=gpus,
        stream_chat=chat or FakeChat(),
        clock=FakeClock(),
        **more,
    )


if TYPE_CHECKING:
    # mypy checks that each fake can stand in for what it replaces (tui.services).
    _engine: StackEngine = FakeEngine()
    _events: EventSource = FakeStream()
    _logs: LogSource = FakeStream()
    _follow: Callable[[Any], LogSource] = FakeLogs()
    _chat: ChatStreamer = FakeChat()
    _make_engine: Callable[[Settings], StackEngine] = FakeEngine().factory
