"""A tuning meets the running stack: the VRAM it may use, and writing and applying it.

Shared by `llm-tui tune` and the TUI, so both measure and apply the same way. NVML's free
memory, read while the stack runs, leaves out what the stack's own llama-server holds;
a tuned stack replaces that process, so its memory counts as free again (measured per
process where the driver says; otherwise the reading is said to be low).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from stack.models.tune import held_by
from stack.settings import Settings
from stack.units import GiB, format_size

if TYPE_CHECKING:
    from stack.cancel import CancelToken
    from stack.engine import ServiceStatus
    from stack.gpu import FreeVram, GpuSample

INFERENCE_ROLES = ("inference", "inference-code")


class _Engine(Protocol):
    settings: Settings

    def status(self) -> list[ServiceStatus]: ...

    def up(
        self,
        *,
        wait: bool = ...,
        progress: Callable[[str], None] = ...,
        timeout: float | None = ...,
        cancel: CancelToken | None = ...,
    ) -> object: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class FreeForTuning:
    """What a tuning may use, in bytes (None: no GPU reading), and how it was measured."""

    free: int | None
    note: str
    running: bool  # the stack runs: applying recreates inference


def running_inference(statuses: Sequence[ServiceStatus]) -> list[ServiceStatus]:
    return [s for s in statuses if s.role in INFERENCE_ROLES and s.state == "running"]


def stack_statuses(engine: _Engine) -> list[ServiceStatus]:
    """The stack's containers; none when no engine answers (nothing can be running)."""
    from stack.errors import LlmTuiError

    try:
        return engine.status()
    except LlmTuiError:
        return []


def free_for_tuning(
    vram_gib: float | None,
    statuses: Sequence[ServiceStatus],
    *,
    read_gpus: Callable[[], list[GpuSample]] | None = None,
    container_of: Callable[[int], str | None] | None = None,
) -> FreeForTuning:
    """``--vram`` when given, else NVML's free memory plus what our llama-server holds."""
    running = bool(running_inference(statuses))
    if vram_gib is not None:
        return FreeForTuning(int(vram_gib * GiB), f"{vram_gib:g} GiB (--vram)", running)
    from stack.gpu import GpuUnavailable, container_of_pid, read_free_vram
    from stack.gpu import read_gpus as nvml_gpus

    read = read_gpus or nvml_gpus
    try:
        samples = read()
    except GpuUnavailable:
        samples = []
    memory = read_free_vram(lambda: samples)
    if memory.free is None:
        return FreeForTuning(None, memory.note, running)
    ours = [s.container_id for s in running_inference(statuses) if s.gpu and s.container_id]
    if not ours:
        return FreeForTuning(memory.free, memory.note, running)
    held = held_by(samples, ours, container_of or container_of_pid)
    if not held:
        return FreeForTuning(
            memory.free,
            f"{memory.note}, without what the running llama-server holds (the driver does not "
            "say per process): stop the stack first (`llm-tui down`) or pass --vram GIB",
            running,
        )
    return FreeForTuning(
        memory.free + held,
        f"{format_size(memory.free + held)} on {memory.gpu_name}, counting the "
        f"{format_size(held)} the running llama-server holds (it is replaced)",
        running,
    )


def free_for_a_model(
    engine: _Engine,
    read_gpus: Callable[[], list[GpuSample]] | None = None,
    container_of: Callable[[int], str | None] | None = None,
) -> FreeVram:
    """The VRAM a model to be served may use: NVML's free memory plus what the stack's own
    llama-server holds, since serving a model replaces it (else the model being served
    would read "does not fit" against the memory it holds itself). The engine is asked
    only when there is a GPU reading."""
    from stack.gpu import FreeVram, read_free_vram
    from stack.gpu import read_gpus as nvml_gpus

    read = functools.cache(read_gpus or nvml_gpus)  # one NVML reading serves both steps
    memory = read_free_vram(read)
    if memory.free is None:
        return memory
    statuses = stack_statuses(engine)
    measured = free_for_tuning(None, statuses, read_gpus=read, container_of=container_of)
    return FreeVram(measured.free, measured.note, memory.gpu_name)


def apply_tuning(
    settings: Settings,
    changes: Mapping[str, str],
    *,
    write: Callable[[Settings, Mapping[str, str]], Settings],
    engine_for: Callable[[Settings], _Engine],
    running: bool,
    progress: Callable[[str], None],
    cancel: CancelToken | None = None,
    on_written: Callable[[Settings], object] | None = None,
) -> Settings:
    """Write ``changes`` to `.env`; when the stack runs, bring it in line.

    `Engine.up` recreates only the containers whose settings changed: PARALLEL, CTX_SIZE,
    KV_CACHE_TYPE and GPU_LAYERS are inference flags, so the gateway keeps running.
    ``on_written`` hears of the new settings before the stack is touched (a cancelled
    recreate still leaves them written).
    """
    new = write(settings, changes)
    if on_written is not None:
        on_written(new)
    if running:
        progress("applying to the running stack (only inference is recreated)")
        engine = engine_for(new)
        try:
            engine.up(progress=progress, cancel=cancel)
        finally:
            engine.close()
    return new
