"""The app's one GPU sampler: reads only while a GPU view shows, never two at once.

Views (the dashboard's GPU panel, the GPU screen) call `show(view)` when they appear and
`hide(view)` when they go; while at least one shows, one long-lived thread reads every
GPU_SAMPLE_INTERVAL seconds (NVML, /proc, llama-server's /metrics) and waits for the
next reading only once this one is done, so readings never overlap and a slow driver
delays the next rather than piling them up. While no view shows it waits on an event and
costs nothing. (One thread for the app's life, not a worker per reading: a worker's start,
state messages and end on the app's thread were a third of what an idle dashboard cost.)
Each reading goes to the views as a `Sampled` message; the history (in the sampler)
outlives the views, so a chart picks up where it was.

Which containers are ours (for VRAM per container and tokens/s) comes from the last
`Engine.status()` the dashboard's stack panel made (`note_statuses`), or from one the
reading asks for itself when that is older than TARGETS_S or a GPU process turned up in a
container it did not know.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.message_pump import MessagePump

if TYPE_CHECKING:
    from stack.engine import ServiceStatus
    from stack.gpu import GpuReading, GpuSampler, ServiceTarget
    from tui.app import LlmTuiApp
    from tui.services import StackEngine

TARGETS_S = 30.0  # how old the container list may get before a tick asks the engine
UNKNOWN_RETRY_S = 5.0  # at most this often when a process sits in an unknown container
MIN_GAP_S = 0.05


@dataclass
class Sampled(Message):
    """A tick's reading, for a view."""

    reading: GpuReading


class GpuFeed:
    def __init__(self, app: LlmTuiApp) -> None:
        self._app = app
        self._views: tuple[MessagePump, ...] = ()
        self._sampler: GpuSampler | None = None
        self._lock = threading.Lock()  # one reading at a time
        self._making = threading.Lock()  # the sampler made once (never held while reading)
        self._wanted = threading.Event()  # set while a view shows
        self._now = threading.Event()  # cuts the wait between readings short
        self._thread: threading.Thread | None = None
        self._closed = False
        self._engine: StackEngine | None = None  # the app's, handed over on its loop
        self._statuses: tuple[Any, ...] | None = None
        self._statuses_at = float("-inf")
        self._asked_at = float("-inf")
        self._addresses: dict[str, str] = {}  # container id → its IP on the stack network
        self.latest: GpuReading | None = None
        self.ticks = 0
        # For tests and `settle`: the thread is between readings with no view showing, or
        # inside one (reading, or handing the reading to the views).
        self.parked = threading.Event()
        self.reading = False
        self.paused = False  # held for good (a test's picture): no more readings

    @property
    def sampler(self) -> GpuSampler:
        with self._making:
            if self._sampler is None:
                self._sampler = self._app.services.make_gpu_sampler()
            return self._sampler

    @property
    def running(self) -> bool:
        return bool(self._views)

    @property
    def interval(self) -> float:
        return max(MIN_GAP_S, self._app.settings.gpu_sample_interval)

    def show(self, view: MessagePump) -> None:
        self._engine = self._app.engine  # built on the app's loop; the thread only uses it
        if view in self._views:
            return
        self._views = (*self._views, view)
        if self.latest is not None:
            view.post_message(Sampled(self.latest))
        if self._closed or self.paused:
            return
        if len(self._views) == 1:
            self._now.set()  # the first view after none: a fresh reading at once
        self._wanted.set()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)
            self._thread.start()

    def hide(self, view: MessagePump) -> None:
        self._views = tuple(v for v in self._views if v is not view)
        if not self._views:
            self._wanted.clear()
            self._now.set()  # park now, not at the end of the interval (up to 60 s)

    def note_statuses(self, statuses: Sequence[ServiceStatus]) -> None:
        """The stack panel polled: the containers the next reading attributes memory to."""
        self._engine = self._app.engine
        self._statuses = tuple(statuses)
        self._statuses_at = self._app.services.clock()

    def pause(self) -> None:
        self.paused = True
        self._wanted.clear()
        self._now.set()

    def close(self) -> None:
        self._views = ()
        self._closed = True
        self._wanted.set()  # let the thread see it is closed and end
        self._now.set()
        if self._thread is None:
            sampler, self._sampler = self._sampler, None
            if sampler is not None:
                threading.Thread(target=sampler.close, name="close-gpu", daemon=True).start()

    # --- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                if not self._wanted.is_set():
                    self.parked.set()
                    self._wanted.wait()
                    self.parked.clear()
                if self._closed:
                    return
                self._now.clear()
                engine = self._engine
                if engine is None:
                    return  # pragma: no cover - show() hands it over before the start
                self.reading = True
                try:
                    with self._lock:
                        reading = self._read(engine)
                    if self._wanted.is_set() and not self._closed:
                        self.latest = reading
                        self.ticks += 1
                        for view in self._views:
                            view.post_message(Sampled(reading))
                finally:
                    self.reading = False
                self._now.wait(self.interval)
        finally:
            self.parked.set()
            sampler, self._sampler = self._sampler, None
            if sampler is not None:
                sampler.close()

    def _read(self, engine: StackEngine) -> GpuReading:
        now = self._app.services.clock()
        try:
            reading = self.sampler.sample(now, self._current_targets(now, engine))
        except Exception as error:  # a driver or engine failing oddly: said, and retried
            from stack.gpu import GpuReading

            return GpuReading(time=now, problem=f"GPU reading failed: {error}")
        if reading.unknown_containers and now - self._asked_at > UNKNOWN_RETRY_S:
            self._statuses_at = float("-inf")  # a new container: ask on the next reading
        return reading

    def _current_targets(self, now: float, engine: StackEngine) -> list[ServiceTarget]:
        from stack.gpu.targets import service_targets

        if self._statuses is None or now - self._statuses_at > TARGETS_S:
            self._asked_at = now
            try:
                self._statuses = tuple(engine.status())
            except Exception:  # no engine now: keep what we knew, ask again later
                self._statuses = self._statuses or ()
            self._statuses_at = now
        statuses = self._statuses

        def address_of(role: str) -> str:
            """An unpublished llama-server's address on the stack network (looked up once)."""
            cid = next((s.container_id for s in statuses if s.role == role), "")
            if cid not in self._addresses:
                try:
                    attrs = engine.container_for(role).attrs
                except Exception:
                    attrs = {}
                networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
                found = networks.get(engine.settings.stack_name) or {}
                self._addresses[cid] = str(found.get("IPAddress", ""))
            return self._addresses[cid]

        return service_targets(statuses, address_of)
