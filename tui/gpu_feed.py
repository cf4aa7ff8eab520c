"""The app's one GPU sampler: ticks only while a GPU view shows, never two at once.

Views (the dashboard's GPU panel, the GPU screen) call `show(view)` when they appear and
`hide(view)` when they go; while at least one shows, a tick runs every
GPU_SAMPLE_INTERVAL seconds. A tick is one short thread worker (NVML, /proc, llama-server's
/metrics); the next is scheduled only when it has finished, so ticks never overlap, and a
slow driver delays the next tick rather than piling them up. Each reading goes to the
views as a `GpuFeed.Sampled` message; the history (in the sampler) outlives the views, so
a chart picks up where it was.

Which containers are ours (for VRAM per container and tokens/s) comes from the last
`Engine.status()` the dashboard's stack panel made (`note_statuses`), or from one the tick
asks for itself when that is older than TARGETS_S or a GPU process turned up in a
container it did not know.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message
from textual.message_pump import MessagePump
from textual.timer import Timer

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
        self._timer: Timer | None = None
        self._ticking = False
        self._lock = threading.Lock()
        self._statuses: tuple[Any, ...] | None = None
        self._statuses_at = float("-inf")
        self._asked_at = float("-inf")
        self._addresses: dict[str, str] = {}  # container id → its IP on the stack network
        self.latest: GpuReading | None = None
        self.ticks = 0

    @property
    def sampler(self) -> GpuSampler:
        if self._sampler is None:
            self._sampler = self._app.services.make_gpu_sampler()
        return self._sampler

    @property
    def running(self) -> bool:
        return bool(self._views)

    def show(self, view: MessagePump) -> None:
        if view in self._views:
            return
        self._views = (*self._views, view)
        if self.latest is not None:
            view.post_message(Sampled(self.latest))
        if len(self._views) == 1 and not self._ticking:
            self._tick()

    def hide(self, view: MessagePump) -> None:
        self._views = tuple(v for v in self._views if v is not view)
        if not self._views and self._timer is not None:
            self._timer.stop()
            self._timer = None

    def note_statuses(self, statuses: Sequence[ServiceStatus]) -> None:
        """The stack panel polled: the containers the next tick attributes memory to."""
        self._statuses = tuple(statuses)
        self._statuses_at = self._app.services.clock()

    def close(self) -> None:
        self._views = ()
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            threading.Thread(target=sampler.close, name="close-gpu", daemon=True).start()

    # --- ticks --------------------------------------------------------------------------

    def _tick(self) -> None:
        self._timer = None
        if not self._views or self._ticking:
            return
        self._ticking = True
        loop = asyncio.get_running_loop()
        # The next tick is scheduled from the worker's thread, in the app's context (its
        # timers and workers need to know their app).
        context = contextvars.copy_context()
        engine = self._app.engine  # built on the app loop; the worker only uses it
        self._app.run_worker(
            lambda: self._sample(loop, context, engine),
            name="gpu sample",
            group="gpu-sample",
            thread=True,
            exit_on_error=False,
        )

    def _sample(
        self, loop: asyncio.AbstractEventLoop, context: contextvars.Context, engine: StackEngine
    ) -> None:
        try:
            with self._lock:
                reading = self._read(engine)
            self.latest = reading
            self.ticks += 1
            for view in self._views:
                view.post_message(Sampled(reading))
        finally:
            loop.call_soon_threadsafe(context.run, self._ticked)

    def _read(self, engine: StackEngine) -> GpuReading:
        now = self._app.services.clock()
        try:
            reading = self.sampler.sample(now, self._current_targets(now, engine))
        except Exception as error:  # a driver or engine failing oddly: said, and retried
            from stack.gpu import GpuReading

            return GpuReading(time=now, problem=f"GPU reading failed: {error}")
        if reading.unknown_containers and now - self._asked_at > UNKNOWN_RETRY_S:
            self._statuses_at = float("-inf")  # a new container: ask on the next tick
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

    def _ticked(self) -> None:
        self._ticking = False
        if not self._views or not self._app.is_running:
            return
        interval = max(MIN_GAP_S, self._app.settings.gpu_sample_interval)
        self._timer = self._app.set_timer(interval, self._tick, name="gpu-tick")
