"""The dashboard's GPU line: name, utilisation, VRAM, temperature and power per GPU.

While active it samples NVML every SAMPLE_S in a thread worker, the next sample scheduled
when the last has landed. Without a driver it shows the reason once and stops asking
(until it is activated again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual import work
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from stack.gpu import GpuSample, GpuUnavailable

SAMPLE_S = 1.0

BAR_WIDTH = 8
VENDOR_WORDS = ("NVIDIA ", "GeForce ")
GIB = 2**30


def bar(fraction: float, width: int = BAR_WIDTH) -> Content:
    """``████▌·····`` in the colour that says how full it is."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    colour = (
        "$text-success" if fraction < 0.7 else "$text-warning" if fraction < 0.9 else "$text-error"
    )
    return Content.assemble((text, colour), ("·" * (width - len(text)), "$text-muted"))


def short_name(name: str) -> str:
    """``NVIDIA GeForce RTX 4050 Laptop GPU`` → ``RTX 4050 Laptop GPU``: room for numbers."""
    for word in VENDOR_WORDS:
        name = name.replace(word, "")
    return name.strip() or "GPU"


def gpu_line(sample: GpuSample) -> Content:
    parts: list[Content | tuple[str, str] | str] = [
        (f"GPU {sample.index} ", "bold"),
        short_name(sample.name),
    ]
    if sample.utilization is not None:
        parts += ["  util ", bar(sample.utilization / 100), f" {sample.utilization:>3}%"]
    else:
        parts += [("  util N/A", "$text-muted")]
    used, total = sample.memory_used / GIB, sample.memory_total / GIB
    fraction = sample.memory_used / sample.memory_total if sample.memory_total else 0.0
    parts += ["  VRAM ", bar(fraction), f" {used:.1f}/{total:.1f} GiB"]
    if sample.temperature is not None:
        parts += [f"  {sample.temperature}°C"]
    if sample.power_watts is not None:
        limit = f"/{sample.power_limit_watts:.0f}" if sample.power_limit_watts else ""
        parts += [f"  {sample.power_watts:.0f}{limit} W"]
    return Content.assemble(*parts)


class GpuStrip(Static):
    """One line per GPU, or one dim line saying why there is none."""

    @dataclass
    class Sampled(Message, bubble=False):
        samples: list[GpuSample]

    @dataclass
    class Missing(Message, bubble=False):
        reason: str

    def __init__(self, read: Callable[[], list[GpuSample]], *, id: str | None = None) -> None:
        super().__init__(Content.styled("GPU  reading…", "$text-muted"), id=id)
        self._read = read
        self.active = False
        self._missing = False
        self._timer: Timer | None = None

    def on_mount(self) -> None:
        self.border_title = "GPU"

    def activate(self) -> None:
        self.active, self._missing = True, False
        self.sample()

    def deactivate(self) -> None:
        self.active = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def sample(self) -> None:
        self._timer = None
        if self.active and not self._missing:
            self.read_gpus(self._read)

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpu")
    def read_gpus(self, read: Callable[[], list[GpuSample]]) -> None:
        try:
            samples = read()
        except GpuUnavailable as error:
            self.post_message(self.Missing(str(error)))
        else:
            self.post_message(self.Sampled(samples))

    def on_gpu_strip_sampled(self, message: Sampled) -> None:
        self.show(message.samples)

    def on_gpu_strip_missing(self, message: Missing) -> None:
        self._missing = True  # no driver does not come back by itself: stop asking
        self.show_unavailable(message.reason)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "gpu" or not event.worker.is_finished:
            return
        if event.state is WorkerState.ERROR:
            self._missing = True
            self.show_unavailable(f"NVML failed: {event.worker.error}")
        if self.active and not self._missing and self._timer is None:
            self._timer = self.set_timer(SAMPLE_S, self.sample)

    def show(self, samples: Sequence[GpuSample]) -> None:
        self.set_class(False, "-unavailable")
        if not samples:
            self.show_unavailable("NVML found no GPU (check `nvidia-smi`)")
            return
        self.update(Content("\n").join(gpu_line(sample) for sample in samples))

    def show_unavailable(self, reason: str) -> None:
        self.set_class(True, "-unavailable")
        self.update(Content.assemble(("GPU  ", "bold"), (reason, "$text-muted")))
