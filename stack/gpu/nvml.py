"""NVIDIA GPU readings through NVML (`nvidia-ml-py`, imported as `pynvml`).

NVML is imported only when asked for, and every failure becomes a plain reason: no driver
(`NVMLError_LibraryNotFound`), no GPU, a metric a GPU does not support (that one metric is
None, shown as N/A), or a GPU that fell off the bus (`GPU_IS_LOST`: that GPU is marked
lost, the others keep reporting). ``nvml`` may be injected; the tests load the real
`pynvml` against a small fake `libnvidia-ml.so.1` (tests/support/fake_nvml) instead.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

# pynvml's constants, repeated so that nothing here imports it before it is needed.
TEMPERATURE_GPU = 0
CLOCK_GRAPHICS = 0
CLOCK_MEM = 2


@dataclass(frozen=True)
class GpuProcess:
    """A process holding GPU memory, as NVML names it: a host PID."""

    pid: int
    used_bytes: int | None  # None where the driver does not say (WDDM on WSL2)


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
    clock_graphics_mhz: int | None = None
    clock_memory_mhz: int | None = None
    clock_graphics_max_mhz: int | None = None
    # Compute and graphics processes; None when NVML cannot list them on this system.
    processes: tuple[GpuProcess, ...] | None = None
    lost: bool = False  # GPU_IS_LOST: fell off the bus; only a reset or reboot brings it back
    error: str = ""  # NVML failed on this GPU in another way (said in its panel)

    @property
    def memory_free(self) -> int:
        return max(0, self.memory_total - self.memory_used)


class GpuUnavailable(Exception):
    """NVML cannot be used here; the message says why and what to do."""


class _Lost(Exception):
    """GPU_IS_LOST from any call on one GPU."""


def _load_nvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise GpuUnavailable("nvidia-ml-py is not installed") from exc
    module: ModuleType = pynvml
    return module


def _error_named(nvml: ModuleType, exc: BaseException, *names: str) -> bool:
    return any(
        isinstance(cls, type) and isinstance(exc, cls)
        for cls in (getattr(nvml, name, None) for name in names)
    )


class Nvml:
    """An initialised NVML session; ``close()`` (or ``with``) shuts it down.

    One session serves many samples: the dashboard keeps one open while it samples, since
    `nvmlInit` opens the driver's device files each time.
    """

    def __init__(self, nvml: ModuleType | None = None) -> None:
        self._nvml = nvml or _load_nvml()
        self._names: dict[int, str] = {}
        self._closed = False
        try:
            self._nvml.nvmlInit()
        except Exception as exc:
            raise GpuUnavailable(_explain(self._nvml, exc)) from None
        self.driver_version = _decode(self._optional(self._nvml.nvmlSystemGetDriverVersion))

    def __enter__(self) -> Nvml:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):  # a driver gone already: nothing to shut
                self._nvml.nvmlShutdown()

    def _optional(self, call: Any | None, *args: Any) -> Any:
        """A metric's value, or None when this GPU/driver cannot tell; GPU_IS_LOST raises.

        Any other error (NOT_SUPPORTED, NO_PERMISSION, an entry point an old driver lacks)
        is N/A for this one metric: the rest of the GPU's readings still show.
        """
        if call is None:
            return None
        try:
            return call(*args)
        except Exception as exc:
            if _error_named(self._nvml, exc, "NVMLError_GpuIsLost"):
                raise _Lost() from None
            return None

    def _required(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except Exception as exc:
            if _error_named(self._nvml, exc, "NVMLError_GpuIsLost"):
                raise _Lost() from None
            raise

    def sample(self) -> list[GpuSample]:
        """Every GPU now. Raises GpuUnavailable when NVML itself fails (not one GPU)."""
        nvml = self._nvml
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception as exc:
            raise GpuUnavailable(_explain(nvml, exc)) from None
        samples = []
        for index in range(count):
            try:
                samples.append(self._sample_one(index))
            except _Lost:
                name = self._names.get(index, "")
                samples.append(GpuSample(index, name, 0, 0, None, None, None, None, lost=True))
            except Exception as exc:
                name = self._names.get(index, "")
                error = f"NVML failed on GPU {index}: {_nvml_text(exc)}"
                samples.append(GpuSample(index, name, 0, 0, None, None, None, None, error=error))
        return samples

    def _sample_one(self, index: int) -> GpuSample:
        nvml = self._nvml
        handle = self._required(nvml.nvmlDeviceGetHandleByIndex, index)
        name = self._names.get(index) or _decode(self._required(nvml.nvmlDeviceGetName, handle))
        self._names[index] = name
        memory = self._required(nvml.nvmlDeviceGetMemoryInfo, handle)
        rates = self._optional(nvml.nvmlDeviceGetUtilizationRates, handle)
        temperature = self._optional(nvml.nvmlDeviceGetTemperature, handle, TEMPERATURE_GPU)
        power = self._optional(nvml.nvmlDeviceGetPowerUsage, handle)
        limit = self._optional(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        graphics = self._optional(getattr(nvml, "nvmlDeviceGetClockInfo", None), handle, 0)
        memory_clock = self._optional(
            getattr(nvml, "nvmlDeviceGetClockInfo", None), handle, CLOCK_MEM
        )
        graphics_max = self._optional(
            getattr(nvml, "nvmlDeviceGetMaxClockInfo", None), handle, CLOCK_GRAPHICS
        )
        return GpuSample(
            index=index,
            name=name,
            memory_total=int(memory.total),
            memory_used=int(memory.used),
            utilization=int(rates.gpu) if rates is not None else None,
            temperature=_int(temperature),
            power_watts=power / 1000 if power is not None else None,
            power_limit_watts=limit / 1000 if limit else None,
            clock_graphics_mhz=_int(graphics),
            clock_memory_mhz=_int(memory_clock),
            clock_graphics_max_mhz=_int(graphics_max) or None,
            processes=self._processes(handle),
        )

    def _processes(self, handle: Any) -> tuple[GpuProcess, ...] | None:
        """Compute and graphics processes, one entry per PID (None: NVML cannot list them)."""
        nvml = self._nvml
        found: dict[int, int | None] = {}
        answered = False
        for call in (
            "nvmlDeviceGetComputeRunningProcesses",
            "nvmlDeviceGetGraphicsRunningProcesses",
        ):
            listing = self._optional(getattr(nvml, call, None), handle)
            if listing is None:
                continue
            answered = True
            for process in listing:
                used = getattr(process, "usedGpuMemory", None)
                pid = int(process.pid)
                # A process that is both (a CUDA app drawing) is listed twice: count it once.
                if used is not None or pid not in found:
                    found[pid] = int(used) if used is not None else found.get(pid)
        if not answered:
            return None
        return tuple(GpuProcess(pid, used) for pid, used in found.items())


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _decode(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml_text(exc: BaseException) -> str:
    try:
        return str(exc) or type(exc).__name__
    except Exception:  # pynvml's __str__ asks the library, which may be gone
        return type(exc).__name__


def _explain(nvml: ModuleType, exc: Exception) -> str:
    if _error_named(nvml, exc, "NVMLError_LibraryNotFound"):
        return (
            "no NVIDIA driver found (libnvidia-ml is missing); install the NVIDIA driver, "
            "or on WSL2 update the Windows NVIDIA driver"
        )
    if _error_named(nvml, exc, "NVMLError_DriverNotLoaded"):
        return "the NVIDIA driver is not loaded; reboot or load the nvidia kernel module"
    if _error_named(nvml, exc, "NVMLError_NoPermission"):
        return "no permission to use the NVIDIA driver; run as a user that may open /dev/nvidia*"
    if _error_named(nvml, exc, "NVMLError_GpuIsLost"):
        return "the GPU fell off the bus (GPU_IS_LOST); reset it or reboot"
    return f"NVML failed: {_nvml_text(exc)}"


def open_nvml(nvml: ModuleType | None = None) -> Nvml:
    """A session to sample from, kept open. Raises GpuUnavailable with the reason."""
    return Nvml(nvml)


def read_gpus(nvml: ModuleType | None = None) -> list[GpuSample]:
    """One reading of every GPU. Raises GpuUnavailable with the reason."""
    with Nvml(nvml) as session:
        return session.sample()
