"""Which container holds a GPU process: host PIDs mapped through `/proc/<pid>/cgroup`.

NVML names processes by host PID. A containerised process's cgroup path carries its
container's 64-hex id in every layout Docker uses:

    0::/system.slice/docker-<id>.scope        cgroup v2, systemd driver
    0::/docker/<id>                           cgroup v2, cgroupfs driver
    4:memory:/docker/<id>                     cgroup v1
    0::/…/cri-containerd-<id>.scope, libpod-<id>.scope   containerd, Podman

Inside WSL2 the driver reports no per-process memory (Windows' WDDM owns it), and with
Docker Desktop, or when llm-tui itself runs in a container, the host PIDs are not visible
here at all: `explain_processes` says which, instead of showing an empty list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stack.gpu.nvml import GpuProcess

PROC = Path("/proc")
_CONTAINER_ID = re.compile(r"(?:docker|cri-containerd|crio|libpod)[-/]([0-9a-f]{64})(?:\.scope)?")


def container_id_in_cgroup(text: str) -> str | None:
    """The container id in a `/proc/<pid>/cgroup` text, or None for a process outside one."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        match = _CONTAINER_ID.search(path)
        if match:
            return match.group(1)
    return None


def container_of_pid(pid: int, proc: Path = PROC) -> str | None:
    """The id of the container ``pid`` runs in; None outside one, or when it is not visible."""
    try:
        text = (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return None
    return container_id_in_cgroup(text)


def pid_visible(pid: int, proc: Path = PROC) -> bool:
    return (proc / str(pid)).exists()


def is_wsl(proc: Path = PROC) -> bool:
    try:
        release = (proc / "sys" / "kernel" / "osrelease").read_text().lower()
    except OSError:
        return False
    return "microsoft" in release or "wsl" in release


@dataclass(frozen=True)
class ContainerUsage:
    """GPU memory by holder: our services by role, everything else summed."""

    by_role: Mapping[str, int]  # role → bytes, e.g. {"inference": 4.1 GiB}
    others: int  # bytes held by processes that are not our containers
    other_count: int
    note: str = ""  # why per-process data is missing or incomplete ("" when complete)


def explain_processes(
    processes: Sequence[GpuProcess] | None, *, wsl: bool, visible: Callable[[int], bool]
) -> str:
    """Why NVML's process list cannot be mapped to containers here ("" when it can)."""
    if wsl:
        return (
            "WSL2: the Windows driver (WDDM) does not report memory per process, so VRAM "
            "cannot be split by container"
        )
    if processes is None:
        return "this driver does not list the processes using the GPU"
    known = [p for p in processes if p.used_bytes is not None]
    if processes and not known:
        return "the driver reports no memory per process here (WDDM or vGPU)"
    if processes and not any(visible(p.pid) for p in processes):
        return (
            "the GPU's processes are not visible from here (Docker Desktop runs containers in "
            "its own VM; inside a container, run llm-tui with --pid=host)"
        )
    return ""


def usage_by_container(
    processes: Iterable[GpuProcess],
    roles: Mapping[str, str],
    container_of: Callable[[int], str | None],
) -> tuple[dict[str, int], int, int]:
    """(bytes per role of ours, bytes of all other processes, how many other processes).

    ``roles`` maps container ids to roles (`inference`, …); ids may be given in full or as
    Docker's 12-character short form.
    """
    by_role: dict[str, int] = {}
    others = other_count = 0
    for process in processes:
        used = process.used_bytes or 0
        cid = container_of(process.pid)
        role = _role_of(cid, roles) if cid else None
        if role is None:
            others += used
            other_count += 1
        else:
            by_role[role] = by_role.get(role, 0) + used
    return by_role, others, other_count


def _role_of(container_id: str, roles: Mapping[str, str]) -> str | None:
    role = roles.get(container_id)
    if role is not None:
        return role
    for cid, candidate in roles.items():
        if cid and (container_id.startswith(cid) or cid.startswith(container_id)):
            return candidate
    return None
