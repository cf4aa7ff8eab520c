"""GPU readings through the real `pynvml` against the fake `libnvidia-ml.so.1` (C).

Each test runs the code under test in a process that loads the fake library through
LD_LIBRARY_PATH (`GpuProbe`), so pynvml's ctypes calls, struct layouts and error classes
are the real ones. The cgroup and WSL logic is tested on real files beside them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.gpu import GpuProcess, container_id_in_cgroup, container_of_pid
from stack.gpu.processes import explain_processes, is_wsl, usage_by_container
from tests.support.fake_nvml import (
    GIB,
    GPU_IS_LOST,
    NOT_SUPPORTED,
    FakeGpu,
    GpuProbe,
    NvmlScript,
    nvml_script,
)

CONTAINER = "3f" * 32
OTHER = "a1" * 32


@pytest.fixture
def script(tmp_path: Path) -> NvmlScript:
    return nvml_script(tmp_path, log=True)


@pytest.fixture
def probe(script: NvmlScript) -> Iterator[GpuProbe]:
    with GpuProbe(script) as running:
        yield running


def gpus_of(reading: dict[str, object]) -> list[dict[str, object]]:
    gpus = reading["gpus"]
    assert isinstance(gpus, list)
    return gpus


def test_values_come_through_pynvml_ctypes(script: NvmlScript, probe: GpuProbe) -> None:
    script.write(
        [
            FakeGpu(
                name="NVIDIA GeForce RTX 4050 Laptop GPU",
                memory_total=6 * GIB,
                memory_used=int(4.5 * GIB),
                utilization=87,
                temperature=72,
                power_mw=61_250,
                power_limit_mw=80_000,
                clock_graphics=2_130,
                clock_memory=8_001,
                max_clock_graphics=2_505,
            ),
            FakeGpu(name="NVIDIA H100 80GB HBM3", memory_total=80 * GIB, memory_used=GIB),
        ]
    )
    first, second = probe.read()  # type: ignore[misc]
    assert first == {
        "index": 0,
        "name": "NVIDIA GeForce RTX 4050 Laptop GPU",
        "memory_total": 6 * GIB,
        "memory_used": int(4.5 * GIB),
        "utilization": 87,
        "temperature": 72,
        "power_watts": 61.25,
        "power_limit_watts": 80.0,
        "clock_graphics_mhz": 2_130,
        "clock_memory_mhz": 8_001,
        "clock_graphics_max_mhz": 2_505,
        "processes": [],
        "lost": False,
        "error": "",
    }
    assert second["name"] == "NVIDIA H100 80GB HBM3" and second["memory_total"] == 80 * GIB


def test_an_unsupported_metric_is_none_for_that_metric_only(
    script: NvmlScript, probe: GpuProbe
) -> None:
    script.write(
        [
            FakeGpu(
                temperature=NOT_SUPPORTED,
                power_mw=NOT_SUPPORTED,
                power_limit_mw=NOT_SUPPORTED,
                clock_memory=None,  # left out of the script: NOT_SUPPORTED too
                compute_processes=NOT_SUPPORTED,
                graphics_processes=NOT_SUPPORTED,
            )
        ]
    )
    (gpu,) = probe.read()  # type: ignore[misc]
    assert gpu["temperature"] is None and gpu["power_watts"] is None
    assert gpu["power_limit_watts"] is None and gpu["clock_memory_mhz"] is None
    assert gpu["processes"] is None  # the driver cannot list them: said, not "none"
    assert gpu["utilization"] == 63 and gpu["clock_graphics_mhz"] == 1_800


def test_a_lost_gpu_is_marked_and_the_others_keep_reporting(
    script: NvmlScript, probe: GpuProbe
) -> None:
    script.write([FakeGpu(name="first"), FakeGpu(name="second")])
    assert [gpu["lost"] for gpu in gpus_of(probe.tick())] == [False, False]
    script.write([FakeGpu(name="first", lost=True), FakeGpu(name="second", utilization=12)])
    lost, fine = gpus_of(probe.tick())
    assert lost["lost"] is True and lost["name"] == "first"  # the name seen before
    assert fine["lost"] is False and fine["utilization"] == 12
    reading = probe.tick()
    history = reading["history"]
    assert isinstance(history, dict)
    assert history["0.util"] == [63, None, None]  # a gap in the chart, not a made-up line
    assert history["1.util"] == [63, 12, 12]


def test_one_metric_answering_gpu_is_lost_marks_the_gpu(
    script: NvmlScript, probe: GpuProbe
) -> None:
    script.write([FakeGpu(temperature=GPU_IS_LOST)])
    (gpu,) = gpus_of(probe.tick())
    assert gpu["lost"] is True


def test_a_driver_that_is_not_loaded_is_explained(script: NvmlScript, probe: GpuProbe) -> None:
    script.write([FakeGpu()], init="DRIVER_NOT_LOADED")
    answer = probe.read()
    assert answer["error"] == (
        "GpuUnavailable: the NVIDIA driver is not loaded; reboot or load the nvidia kernel module"
    )
    reading = probe.tick()
    assert reading["gpus"] == [] and "driver is not loaded" in str(reading["problem"])


def test_the_sampler_keeps_one_session_across_ticks(script: NvmlScript, probe: GpuProbe) -> None:
    for _ in range(3):
        assert len(gpus_of(probe.tick())) == 1
    calls = script.calls()
    assert calls.count("nvmlInitWithFlags") == 1
    assert calls.count("nvmlDeviceGetMemoryInfo") == 3
    assert "nvmlShutdown" not in calls


def test_processes_with_no_memory_figure_say_why(script: NvmlScript, probe: GpuProbe) -> None:
    script.write([FakeGpu(compute_processes=[(os.getpid(), None)])])
    reading = probe.tick()
    (gpu,) = gpus_of(reading)
    assert gpu["processes"] == [{"pid": os.getpid(), "used_bytes": None}]
    usage = reading["usage"]
    assert isinstance(usage, dict)
    assert "no memory per process" in usage["0"]["note"]


# --- cgroups and platforms (real files) --------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"0::/system.slice/docker-{CONTAINER}.scope\n",
        f"0::/docker/{CONTAINER}\n",
        f"12:pids:/docker/{CONTAINER}\n4:memory:/docker/{CONTAINER}\n0::/\n",
        f"0::/kubepods/burstable/pod1/cri-containerd-{CONTAINER}.scope\n",
        f"0::/machine.slice/libpod-{CONTAINER}.scope/container\n",
    ],
)
def test_container_ids_in_every_cgroup_layout(text: str) -> None:
    assert container_id_in_cgroup(text) == CONTAINER


def test_a_host_process_has_no_container() -> None:
    assert container_id_in_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n") is None
    assert container_of_pid(os.getpid()) is None  # this test runs on the host
    assert container_of_pid(2**22 + 12345) is None  # no such process


def test_processes_are_summed_by_role_and_the_rest_together(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for pid, cid in ((101, CONTAINER), (102, CONTAINER), (103, OTHER)):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cgroup").write_text(f"0::/docker/{cid}\n")
    processes = [
        GpuProcess(101, 3 * GIB),
        GpuProcess(102, GIB),
        GpuProcess(103, GIB // 2),
        GpuProcess(104, GIB // 4),  # on the host (no /proc entry here)
    ]
    by_role, others, count = usage_by_container(
        processes, {CONTAINER[:12]: "inference"}, lambda pid: container_of_pid(pid, proc)
    )
    assert by_role == {"inference": 4 * GIB}
    assert (others, count) == (GIB // 2 + GIB // 4, 2)


def test_wsl_and_hidden_pids_are_explained(tmp_path: Path) -> None:
    kernel = tmp_path / "sys" / "kernel"
    kernel.mkdir(parents=True)
    (kernel / "osrelease").write_text("5.15.167.4-microsoft-standard-WSL2\n")
    assert is_wsl(tmp_path)
    (kernel / "osrelease").write_text("6.8.0-45-generic\n")
    assert not is_wsl(tmp_path)
    listed = [GpuProcess(4242, GIB)]
    assert "WDDM" in explain_processes(listed, wsl=True, visible=lambda pid: True)
    hidden = explain_processes(listed, wsl=False, visible=lambda pid: False)
    assert "Docker Desktop" in hidden and "--pid=host" in hidden
    assert explain_processes(listed, wsl=False, visible=lambda pid: True) == ""
    assert "does not list" in explain_processes(None, wsl=False, visible=lambda pid: True)
