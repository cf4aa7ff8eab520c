"""The GPU sampler: one reading per tick, kept as history for the charts.

Each `GpuSampler.sample()` reads every GPU through one NVML session kept open, maps the
GPU's processes to our containers, and reads each inference server's tokens/s. Nothing
here runs on its own: the caller (the TUI's one sampler worker) decides when to tick, so
polls never overlap and stop when nothing shows them.

History is a ring per series ("0.util", "tokens.inference", …) of (time, value) points,
value None where a reading was missing, so a chart shows a gap rather than a made-up line.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from stack.gpu.llama_metrics import LlamaMetrics, MetricsUnavailable, Throughput
from stack.gpu.nvml import GpuSample, GpuUnavailable, open_nvml
from stack.gpu.processes import (
    ContainerUsage,
    container_of_pid,
    explain_processes,
    is_wsl,
    pid_visible,
    usage_by_container,
)

HISTORY_POINTS = 600  # 10 minutes at the default 1 s; the charts show the last 5
REOPEN_S = 30.0  # how often to try NVML again after it could not start (no driver)


class GpuReader(Protocol):
    """An open NVML session (`stack.gpu.Nvml`), or a test's stand-in."""

    def sample(self) -> list[GpuSample]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ServiceTarget:
    """A running service the sampler attributes memory and tokens to."""

    role: str
    container_id: str
    metrics_url: str = ""  # llama-server's base URL; "" for services without /metrics


@dataclass(frozen=True)
class GpuReading:
    """One tick: every GPU, who holds its memory, and each server's tokens/s."""

    time: float
    gpus: tuple[GpuSample, ...] = ()
    problem: str = ""  # why there is no GPU reading at all ("" when there is)
    usage: Mapping[int, ContainerUsage] = field(default_factory=dict)  # by GPU index
    throughput: Mapping[str, Throughput] = field(default_factory=dict)  # by role
    throughput_notes: Mapping[str, str] = field(default_factory=dict)  # role → why none
    # A GPU process runs in a container the targets do not name: ask the engine again.
    unknown_containers: bool = False


class History:
    """Bounded (time, value) rings, one per series."""

    def __init__(self, points: int = HISTORY_POINTS) -> None:
        self.points = points
        self._series: dict[str, deque[tuple[float, float | None]]] = {}

    def add(self, key: str, when: float, value: float | None) -> None:
        ring = self._series.get(key)
        if ring is None:
            ring = self._series[key] = deque(maxlen=self.points)
        ring.append((when, value))

    def series(self, key: str) -> list[tuple[float, float | None]]:
        """A copy (made at once, so the sampler's thread may append meanwhile)."""
        ring = self._series.get(key)
        return list(ring) if ring is not None else []

    def latest(self, key: str) -> float | None:
        ring = self._series.get(key)
        return ring[-1][1] if ring else None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._series))

    def clear(self) -> None:
        self._series.clear()


def gpu_series(sample: GpuSample) -> dict[str, float | None]:
    """What each GPU contributes to the history, by series name."""
    lost = sample.lost or bool(sample.error)
    values: dict[str, float | None] = {
        "util": sample.utilization,
        "mem": sample.memory_used if not lost else None,
        "temp": sample.temperature,
        "power": sample.power_watts,
        "clock": sample.clock_graphics_mhz,
        "clock_mem": sample.clock_memory_mhz,
    }
    return {name: None if lost else value for name, value in values.items()}


class GpuSampler:
    """Samples on demand; keeps the NVML session and one metrics reader per server."""

    def __init__(
        self,
        open_gpus: Callable[[], GpuReader] = open_nvml,
        *,
        container_of: Callable[[int], str | None] = container_of_pid,
        visible: Callable[[int], bool] = pid_visible,
        wsl: bool | None = None,
        metrics: Callable[[str], LlamaMetrics] = LlamaMetrics,
        history_points: int = HISTORY_POINTS,
    ) -> None:
        self._open = open_gpus
        self._container_of = container_of
        self._visible = visible
        self._wsl = is_wsl() if wsl is None else wsl
        self._metrics_factory = metrics
        self._session: GpuReader | None = None
        self._problem = ""
        self._retry_at = 0.0
        self._metrics: dict[str, LlamaMetrics] = {}
        self.history = History(history_points)

    def sample(self, now: float, targets: Sequence[ServiceTarget] = ()) -> GpuReading:
        gpus, problem = self._read_gpus(now)
        roles = {t.container_id: t.role for t in targets if t.container_id}
        usage: dict[int, ContainerUsage] = {}
        unknown = False
        for gpu in gpus:
            for name, value in gpu_series(gpu).items():
                self.history.add(f"{gpu.index}.{name}", now, value)
            note = explain_processes(gpu.processes, wsl=self._wsl, visible=self._visible)
            if gpu.processes is None or gpu.lost:
                usage[gpu.index] = ContainerUsage({}, 0, 0, note)
                continue
            by_role, others, count = usage_by_container(gpu.processes, roles, self._container_of)
            usage[gpu.index] = ContainerUsage(by_role, others, count, note)
            for name in by_role:
                self.history.add(f"{gpu.index}.mem.{name}", now, by_role[name])
            unknown = unknown or any(
                (cid := self._container_of(p.pid)) is not None and cid not in roles
                for p in gpu.processes
            )
        throughput, notes = self._read_throughput(now, targets)
        return GpuReading(
            time=now,
            gpus=tuple(gpus),
            problem=problem,
            usage=usage,
            throughput=throughput,
            throughput_notes=notes,
            unknown_containers=unknown and bool(roles),
        )

    def _read_gpus(self, now: float) -> tuple[list[GpuSample], str]:
        if self._session is None:
            if now < self._retry_at:
                return [], self._problem
            try:
                self._session = self._open()
            except GpuUnavailable as error:
                self._problem = str(error)
                self._retry_at = now + REOPEN_S
                return [], self._problem
            self._problem = ""
        try:
            gpus = self._session.sample()
        except GpuUnavailable as error:
            # NVML itself failed (the driver went away): start again on the next tick.
            self._close_session()
            self._problem = str(error)
            return [], self._problem
        if not gpus:
            return [], "NVML found no GPU (check `nvidia-smi`)"
        return gpus, ""

    def _read_throughput(
        self, now: float, targets: Sequence[ServiceTarget]
    ) -> tuple[dict[str, Throughput], dict[str, str]]:
        throughput: dict[str, Throughput] = {}
        notes: dict[str, str] = {}
        wanted = {t.role: t.metrics_url for t in targets if t.metrics_url}
        for role in list(self._metrics):
            if self._metrics[role].base_url != wanted.get(role):
                self._metrics.pop(role).close()
        for role, url in wanted.items():
            reader = self._metrics.get(role)
            if reader is None:
                reader = self._metrics[role] = self._metrics_factory(url)
            try:
                throughput[role] = reader.rate(now)
            except MetricsUnavailable as error:
                notes[role] = str(error)
                self.history.add(f"tokens.{role}", now, None)
                continue
            self.history.add(f"tokens.{role}", now, throughput[role].generated)
        return throughput, notes

    def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):  # a driver gone already
                session.close()

    def close(self) -> None:
        self._close_session()
        for reader in self._metrics.values():
            reader.close()
        self._metrics.clear()
