"""NVIDIA GPU readings through NVML (`nvidia-ml-py`, imported as `pynvml`).

NVML is imported only when asked for, and every failure becomes a plain reason: no driver
(`NVMLError_LibraryNotFound`), no GPU, or a metric a GPU does not support (shown as N/A).
``nvml`` may be injected (tests use a fake module, since no GPU exists there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class GpuSample:
    index: int
    name: str
    memory_total: int  # bytes
    memory_used: int
    utilization: int | None  # percent; None where the GPU does not report it
    temperature: int | None  # °C
    power_watts: float | None
    power_limit_watts: float | None

    @property
    def memory_free(self) -> int:
        return max(0, self.memory_total - self.memory_used)


class GpuUnavailable(Exception):
    """NVML cannot be used here; the message says why and what to do."""


def _load_nvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise GpuUnavailable("nvidia-ml-py is not installed") from exc
    module: ModuleType = pynvml
    return module


def _optional(call: Any, *args: Any) -> Any:
    """A metric's value, or None when this GPU/driver does not support it."""
    try:
        return call(*args)
    except Exception:
        return None


class Nvml:
    """An initialised NVML session; ``close()`` (or ``with``) shuts it down."""

    def __init__(self, nvml: ModuleType | None = None) -> None:
        self._nvml = nvml or _load_nvml()
        try:
            self._nvml.nvmlInit()
        except Exception as exc:
            raise GpuUnavailable(_explain(self._nvml, exc)) from None
        self.driver_version = _decode(_optional(self._nvml.nvmlSystemGetDriverVersion))

    def __enter__(self) -> Nvml:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        _optional(self._nvml.nvmlShutdown)

    def sample(self) -> list[GpuSample]:
        nvml = self._nvml
        samples = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            rates = _optional(nvml.nvmlDeviceGetUtilizationRates, handle)
            temperature = _optional(nvml.nvmlDeviceGetTemperature, handle, 0)
            power = _optional(nvml.nvmlDeviceGetPowerUsage, handle)
            limit = _optional(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
            samples.append(
                GpuSample(
                    index=index,
                    name=_decode(nvml.nvmlDeviceGetName(handle)),
                    memory_total=int(memory.total),
                    memory_used=int(memory.used),
                    utilization=int(rates.gpu) if rates is not None else None,
                    temperature=int(temperature) if temperature is not None else None,
                    power_watts=power / 1000 if power is not None else None,
                    power_limit_watts=limit / 1000 if limit is not None else None,
                )
            )
        return samples


def _decode(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _explain(nvml: ModuleType, exc: Exception) -> str:
    not_found = getattr(nvml, "NVMLError_LibraryNotFound", None)
    if not_found is not None and isinstance(exc, not_found):
        return (
            "no NVIDIA driver found (libnvidia-ml is missing); install the NVIDIA driver, "
            "or on WSL2 update the Windows NVIDIA driver"
        )
    driver = getattr(nvml, "NVMLError_DriverNotLoaded", None)
    if driver is not None and isinstance(exc, driver):
        return "the NVIDIA driver is not loaded; reboot or load the nvidia kernel module"
    return f"NVML failed: {exc}"


def read_gpus(nvml: ModuleType | None = None) -> list[GpuSample]:
    """One reading of every GPU. Raises GpuUnavailable with the reason."""
    with Nvml(nvml) as session:
        return session.sample()


@dataclass(frozen=True)
class FreeVram:
    """What a fit is measured against: GPU 0's free memory, or why there is no reading."""

    free: int | None  # bytes; None when no GPU could be read
    note: str  # "5.62 GiB free on NVIDIA …", or why there is no reading
    gpu_name: str = ""


def read_free_vram(read: Callable[[], list[GpuSample]] = read_gpus) -> FreeVram:
    """Free VRAM on GPU 0, as NVML reports it (what the desktop holds is already taken off).

    The one reader the CLI and the TUI share, so both show the same number; ``read`` is
    `read_gpus` unless a caller (the TUI's injected services, a test) passes its own.
    """
    from stack.units import format_size

    try:
        gpus = read()
    except GpuUnavailable:
        return FreeVram(None, "no GPU: fit unknown")
    if not gpus:
        return FreeVram(None, "no GPU: fit unknown")
    first = gpus[0]
    return FreeVram(
        first.memory_free, f"{format_size(first.memory_free)} free on {first.name}", first.name
    )
