"""GPU readings: NVML, who holds the memory, llama-server's tokens/s, and free VRAM.

    nvml           one NVML session: every GPU's metrics (N/A per metric, lost GPUs)
    processes      GPU processes → our containers through /proc/<pid>/cgroup
    llama_metrics  llama-server's /metrics counters → tokens/s
    sampler        one reading per tick, with history for the charts

Import from here (``from stack.gpu import read_gpus, GpuSample``). NVML itself is imported
only when a reading is asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stack.gpu.llama_metrics import LlamaMetrics, MetricsUnavailable, Throughput
from stack.gpu.nvml import GpuProcess, GpuSample, GpuUnavailable, Nvml, open_nvml, read_gpus
from stack.gpu.processes import ContainerUsage, container_id_in_cgroup, container_of_pid
from stack.gpu.sampler import GpuReader, GpuReading, GpuSampler, History, ServiceTarget

__all__ = [
    "ContainerUsage",
    "FreeVram",
    "GpuProcess",
    "GpuReader",
    "GpuReading",
    "GpuSample",
    "GpuSampler",
    "GpuUnavailable",
    "History",
    "LlamaMetrics",
    "MetricsUnavailable",
    "Nvml",
    "ServiceTarget",
    "Throughput",
    "container_id_in_cgroup",
    "container_of_pid",
    "open_nvml",
    "read_free_vram",
    "read_gpus",
]


@dataclass(frozen=True)
class FreeVram:
    """What a fit is measured against: GPU 0's free memory, or why there is no reading."""

    free: int | None  # bytes; None when no GPU could be read
    note: str  # "5.62 GiB free on RTX 4050 Laptop GPU", or why there is no reading
    gpu_name: str = ""


def read_free_vram(read: Callable[[], list[GpuSample]] = read_gpus) -> FreeVram:
    """Free VRAM on GPU 0, as NVML reports it (what the desktop holds is already taken off).

    The one reader the CLI and the TUI share, so both show the same number; ``read`` is
    `read_gpus` unless a caller (the TUI's injected services, a test) passes its own.
    """
    from stack.units import format_size, short_gpu_name

    try:
        gpus = read()
    except GpuUnavailable:
        return FreeVram(None, "no GPU: fit unknown")
    usable = [gpu for gpu in gpus if not gpu.lost and not gpu.error]
    if not usable:
        return FreeVram(None, "no GPU: fit unknown")
    first = usable[0]
    return FreeVram(
        first.memory_free,
        f"{format_size(first.memory_free)} free on {short_gpu_name(first.name)}",
        first.name,
    )
