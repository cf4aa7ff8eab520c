"""GPU readings as text: one summary line per GPU, who holds the VRAM, why something is N/A.

Shared by the dashboard's GPU panel and the GPU screen, so both say the same thing the
same way. Everything returns `Content` (styled with theme variables, never markup).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from textual.content import Content

from stack.units import format_size, short_gpu_name

if TYPE_CHECKING:
    from stack.gpu import ContainerUsage, GpuSample, Throughput

BAR_WIDTH = 8
GIB = 2**30
NO_GPU = "NVML found no GPU (check `nvidia-smi`)"


def bar(fraction: float, width: int = BAR_WIDTH) -> Content:
    """``████▌···`` in the colour that says how full it is."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    colour = (
        "$text-success" if fraction < 0.7 else "$text-warning" if fraction < 0.9 else "$text-error"
    )
    return Content.assemble((text, colour), ("·" * (width - len(text)), "$text-muted"))


def gpu_title(sample: GpuSample) -> Content:
    return Content.assemble((f"GPU {sample.index}", "bold"), " ", short_gpu_name(sample.name))


def na(what: str) -> tuple[str, str]:
    return (f"{what} N/A", "$text-muted")


def gpu_line(sample: GpuSample) -> Content:
    """``util  63%  VRAM ████▌··· 4.3/6.0 GiB  61°C  28/80 W  1800 MHz`` (N/A per metric)."""
    if sample.lost:
        return lost_text(sample)
    if sample.error:
        return Content.styled(sample.error, "$text-error")
    parts: list[Content | tuple[str, str] | str] = []
    if sample.utilization is not None:
        parts += ["util ", (f"{sample.utilization:>3}%", "bold")]
    else:
        parts += [na("util")]
    used, total = sample.memory_used / GIB, sample.memory_total / GIB
    fraction = sample.memory_used / sample.memory_total if sample.memory_total else 0.0
    parts += ["  VRAM ", bar(fraction), f" {used:.1f}/{total:.1f} GiB"]
    parts += ["  ", f"{sample.temperature}°C" if sample.temperature is not None else na("temp")]
    if sample.power_watts is not None:
        limit = f"/{sample.power_limit_watts:.0f}" if sample.power_limit_watts else ""
        parts += [f"  {sample.power_watts:.0f}{limit} W"]
    else:
        parts += ["  ", na("power")]
    if sample.clock_graphics_mhz is not None:
        parts += [f"  {sample.clock_graphics_mhz} MHz"]
    return Content.assemble(*parts)


def lost_text(sample: GpuSample) -> Content:
    name = f" ({short_gpu_name(sample.name)})" if sample.name else ""
    return Content.assemble(
        (f"GPU {sample.index}{name} is lost", "bold $text-error"),
        (
            ": it fell off the bus (GPU_IS_LOST). NVML cannot read it until it is reset "
            "(`nvidia-smi -r`) or the machine reboots; the history up to then is kept.",
            "$text-error",
        ),
    )


def usage_text(usage: ContainerUsage | None, sample: GpuSample) -> Content:
    """``VRAM by container: inference 4.10 GiB · other processes 180 MiB (2)``, or why not."""
    if usage is None or sample.lost or sample.error:
        return Content("")
    if usage.note:
        return Content.assemble(("VRAM by container: ", "bold"), (usage.note, "$text-muted"))
    parts: list[Content | tuple[str, str] | str] = [("VRAM by container: ", "bold")]
    held = [(role, size) for role, size in sorted(usage.by_role.items())]
    pieces = [
        Content.assemble((role, "$text-accent"), f" {format_size(size)}") for role, size in held
    ]
    if usage.other_count:
        plural = "process" if usage.other_count == 1 else "processes"
        pieces.append(
            Content.styled(
                f"other {plural} {format_size(usage.others)} ({usage.other_count})", "$text-muted"
            )
        )
    if not pieces:
        pieces.append(Content.styled("no process holds GPU memory", "$text-muted"))
    parts.append(Content(" · ").join(pieces))
    return Content.assemble(*parts)


def throughput_text(throughput: Mapping[str, Throughput], notes: Mapping[str, str]) -> Content:
    """``tokens/s  inference 23.4 (1 busy)``, what llama-server itself counts."""
    if not throughput and not notes:
        return Content.styled("tokens/s: no llama-server is running", "$text-muted")
    pieces = []
    for role in sorted({*throughput, *notes}):
        rate = throughput.get(role)
        if rate is None:
            pieces.append(Content.assemble((role, "$text-accent"), (" no /metrics", "$text-muted")))
            continue
        value = "…" if rate.generated is None else f"{rate.generated:.1f}"
        busy = f" ({rate.busy} busy)" if rate.busy else ""
        pieces.append(Content.assemble((role, "$text-accent"), f" {value}{busy}"))
    return Content.assemble(("tokens/s ", "bold"), Content(" · ").join(pieces))
