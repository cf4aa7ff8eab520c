"""VRAM by container: the fake NVML library lists real test containers' host PIDs, and the
real pynvml, /proc/<pid>/cgroup and `Engine.status()` attribute them to our services.

On a machine with a GPU the same mapping runs against the real driver in
tests/unit/test_gpu_real_driver.py (a container there would need the NVIDIA runtime).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.engine import Engine
from stack.engine.plan import LABEL_ROLE, LABEL_STACK
from stack.gpu.targets import service_targets
from stack.settings import load_settings
from tests.support.docker_engine import BUSYBOX_IMAGE, EngineSandbox, require_engine, require_images
from tests.support.fake_nvml import GIB, FakeGpu, GpuProbe, nvml_script, run_app_probe
from tests.tui.conftest import write_env

pytestmark = pytest.mark.engine


class Containers:
    """Busybox containers named and labelled as a stack's services, and one that is not ours."""

    def __init__(self, sandbox: EngineSandbox, stack: str) -> None:
        self.stack = stack
        self.ours = {
            role: sandbox.start(
                BUSYBOX_IMAGE,
                ["sleep", "600"],
                name=f"{stack}-{role}",
                labels={LABEL_STACK: stack, LABEL_ROLE: role},
                network_mode="none",
            )
            for role in ("inference", "api-gateway")
        }
        self.foreign = sandbox.start(BUSYBOX_IMAGE, ["sleep", "600"], network_mode="none")
        for container in (*self.ours.values(), self.foreign):
            container.reload()

    def pid(self, container: Any) -> int:
        return int(container.attrs["State"]["Pid"])  # a host PID, as NVML reports it


@pytest.fixture
def containers() -> Iterator[Containers]:
    client = require_engine()
    require_images(client, BUSYBOX_IMAGE)
    with EngineSandbox(client) as sandbox:
        yield Containers(sandbox, "gpu" + uuid.uuid4().hex[:8])
    client.close()


def test_vram_is_attributed_to_our_containers_through_cgroups(
    tmp_path: Path, containers: Containers
) -> None:
    env_file = write_env(tmp_path, STACK_NAME=containers.stack, GPU="none")
    statuses = Engine(load_settings(env_file)).status()  # the real engine names the ids
    targets = service_targets(statuses)
    assert {t.role for t in targets} == {"inference", "api-gateway"}
    script = nvml_script(tmp_path)
    inference = containers.pid(containers.ours["inference"])
    script.write(
        [
            FakeGpu(
                compute_processes=[
                    (inference, int(3.5 * GIB)),
                    (containers.pid(containers.foreign), GIB),  # a container, not ours
                    (os.getpid(), GIB // 4),  # a host process
                ]
            )
        ]
    )
    options = {"targets": [t.__dict__ for t in targets], "wsl": False}
    with GpuProbe(script, options) as probe:
        reading = probe.tick()
    usage = reading["usage"]
    assert isinstance(usage, dict)
    assert usage["0"] == {
        "by_role": {"inference": int(3.5 * GIB)},
        "others": GIB + GIB // 4,
        "other_count": 2,
        "note": "",
    }
    assert reading["unknown_containers"] is True  # the foreign one: the app asks again


def test_the_gpu_screen_names_the_container_holding_the_memory(
    tmp_path: Path, containers: Containers
) -> None:
    env_file = write_env(tmp_path, STACK_NAME=containers.stack, GPU="none", CHAT_MODEL="")
    (tmp_path / "models").mkdir()
    script = nvml_script(tmp_path)
    script.write(
        [
            FakeGpu(
                memory_used=5 * GIB,
                compute_processes=[
                    (containers.pid(containers.ours["inference"]), int(4.1 * GIB)),
                    (containers.pid(containers.foreign), GIB // 2),
                ],
            )
        ]
    )
    shown = run_app_probe(script, env_file, {"DOCKER_HOST": os.environ.get("DOCKER_HOST", "")})
    usage = str(shown["usage"])
    assert "VRAM by container: inference 4.10 GiB" in usage
    assert "other process 512 MiB (1)" in usage
    assert "inference 4.10 GiB" in str(shown["panel"])  # the dashboard's panel too
