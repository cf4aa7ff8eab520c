"""llm-tui driving a Docker Engine on another machine, over SSH and over TLS.

The host (tests/support/remote_host.py) has its own network and mount namespaces: it sees
none of this machine's files and its loopback ports are its own. The full path runs the
real CLI: a download into the host's models, `up`, a chat through the way the gateway is
reached (an SSH forward, or the host's address), a swap, logs followed and stopped, `down`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.engine.gateway import render_config
from stack.engine.remote_gpu import HostGpus, open_engine_gpus
from stack.gpu import GpuUnavailable
from tests.support.docker_engine import assert_same_rows
from tests.support.fakehub import FakeHub
from tests.support.remote_host import RemoteHost
from tests.support.remote_stack import KEY, RemoteStack, hub_with_models

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def hub(remote_host: RemoteHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    hub = hub_with_models(remote_host, tmp_path_factory.mktemp("hub"))
    yield hub
    hub.stop()


def make_stack(host: RemoteHost, folder: Path, via: str, hub: FakeHub, **settings: str) -> Any:
    return RemoteStack(host, folder, via, HF_ENDPOINT=hub.url, **settings)


@pytest.fixture(params=["ssh", "tls"])
def stack(
    request: pytest.FixtureRequest, remote_host: RemoteHost, hub: FakeHub, tmp_path: Path
) -> Iterator[RemoteStack]:
    extra = {}
    if request.param == "tls":
        # A TLS engine has no SSH to forward with: the gateway is published on its network.
        extra["BIND_ADDRESS"] = "0.0.0.0"
    made = make_stack(remote_host, tmp_path, request.param, hub, **extra)
    try:
        yield made
    finally:
        made.cleanup()


def follow_logs_until(stack: RemoteStack, text: str, deadline_s: float = 60) -> list[str]:
    """`llm-tui logs -f` until a line holds ``text``; then Ctrl+C, as a user stops it."""
    process = subprocess.Popen(
        stack.command("logs", "inference", "-f", "--tail", "all"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=stack.environment(),
    )
    seen: list[str] = []
    end = time.monotonic() + deadline_s
    try:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line.rstrip("\n"))
            if text in line or time.monotonic() > end:
                break
    finally:
        process.send_signal(signal.SIGINT)
        _, error = process.communicate(timeout=30)
    assert "Traceback" not in error, error
    assert process.returncode in (0, 130), error
    return seen


def test_up_download_swap_logs_chat_down(stack: RemoteStack) -> None:
    # A download lands in the host's models volume, never in this machine's folder.
    pulled = stack.cli("pull", "org/alpha-GGUF", "Q8_0", "--yes")
    assert "saved alpha-Q8_0.gguf in the volume" in pulled.stdout
    assert stack.models_on_host() == ["alpha-Q8_0.gguf"]
    assert list(stack.local_models.iterdir()) == []
    listed = json.loads(stack.cli("models", "--json").stdout)
    assert [(m["path"], m["architecture"], m["broken"]) for m in listed] == [
        ("alpha-Q8_0.gguf", "llama", "")
    ]

    # The model is named in .env though it is not on this machine.
    stack.cli("config", "set", "CHAT_MODEL", "alpha-Q8_0.gguf")
    up = stack.cli("up")
    assert "stack up: 2 started" in up.stdout
    assert f"over {stack.via}" in up.stdout
    inference, gateway = stack.container("inference"), stack.container("api-gateway")
    assert [
        (m["Type"], m["Name"], m["Destination"], m["RW"]) for m in inference.attrs["Mounts"]
    ] == [("volume", f"{stack.stack}-models", "/models", False)]
    # No bind mount for the gateway: its config was put into the container.
    assert gateway.attrs["Mounts"] == []
    code, config = gateway.exec_run(["cat", "/app/config.yaml"])
    assert code == 0 and config.decode() == render_config(stack.settings())

    with stack.client_env():
        gpus = open_engine_gpus()
        assert isinstance(gpus, HostGpus)
        try:  # this host's inference runs without the NVIDIA runtime: no nvidia-smi there
            with pytest.raises(GpuUnavailable, match="has no nvidia-smi"):
                gpus.sample()
        finally:
            gpus.shutdown()
    reached = stack.cli("connect").stdout
    how = (
        f"through an SSH forward to {stack.host.address}"
        if stack.via == "ssh"
        else "published on gpu-tls's network (0.0.0.0)"
    )
    assert f"reached         {how}" in reached
    answer = stack.cli("chat", "Tell me a story", "--max-tokens", "4")
    assert answer.stdout.strip(), answer.stderr

    stack.cli("pull", "org/beta-GGUF", "Q8_0", "--yes")
    gateway_id = gateway.id
    stack.cli("swap", "beta-Q8_0.gguf")
    assert stack.container("inference").labels["llm-tui.model"] == "beta-Q8_0.gguf"
    assert stack.container("api-gateway").id == gateway_id  # the gateway kept running
    status = stack.cli("status").stdout
    assert "beta-Q8_0.gguf" in status and f"over {stack.via}" in status.splitlines()[0]
    assert_status_read_directly_over_ssh(stack)

    lines = follow_logs_until(stack, "model loaded")
    assert any("beta-Q8_0.gguf" in line for line in lines), lines[-20:]
    assert stack.cli("chat", "Hello", "--max-tokens", "4").stdout.strip()

    stack.cli("down")
    assert stack.containers(helpers=True) == []  # helpers remove themselves, too
    assert stack.models_on_host() == ["alpha-Q8_0.gguf", "beta-Q8_0.gguf"]  # models stay


def assert_status_read_directly_over_ssh(stack: RemoteStack) -> None:
    """Over SSH a command line's `status` reads through the system ssh client (no Docker
    SDK, no paramiko) and finds what the SDK finds; TLS takes the SDK."""
    import sys

    from stack.engine import Engine
    from stack.engine.connection import connect

    script = (
        "import json, sys\n"
        "from stack.engine import Engine\n"
        "from stack.settings import load_settings\n"
        "engine = Engine(load_settings(sys.argv[1]))\n"
        "rows = engine.status()\n"
        "engine.close()\n"
        "print(json.dumps({'sdk': [m for m in ('docker', 'paramiko') if m in sys.modules],"
        " 'rows': [row.as_dict() for row in rows]}))\n"
    )
    with stack.client_env():
        engine = Engine(stack.settings(), client=connect())
        try:
            before = engine.status()
            done = subprocess.run(
                [sys.executable, "-c", script, str(stack.env_file)],
                capture_output=True,
                text=True,
                env=stack.engine_environment(),
                timeout=120,
            )
            after = engine.status()
        finally:
            engine.close()
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["sdk"] == ([] if stack.via in ("ssh", "box") else ["docker"]), answer["sdk"]
    assert len(before) == 2
    assert_same_rows(answer["rows"], before, after)


def test_doctor_checks_each_step_of_reaching_the_host(stack: RemoteStack) -> None:
    doctor = json.loads(stack.cli("doctor", "--json", check=False).stdout)
    status = {check["name"]: check["status"] for check in doctor}
    expected = {"engine": "ok", "reach": "ok", "docker": "ok", "images": "ok", "gateway": "ok"}
    if stack.via == "ssh":
        expected |= {"host key": "ok", "remote docker": "ok"}
    assert {name: status.get(name) for name in expected} == expected
    # This host has no NVIDIA runtime: with GPU=none that is fine, and said so.
    assert status["nvidia"] == "ok"
    assert "gpu" not in status  # this machine's GPU says nothing about the host's


def test_delete_and_header_fit_happen_on_the_host(
    remote_host: RemoteHost, hub: FakeHub, tmp_path: Path
) -> None:
    stack = make_stack(remote_host, tmp_path, "box", hub)
    try:
        stack.cli("pull", "org/alpha-GGUF", "Q8_0", "--yes")
        fit = stack.cli("fit", "alpha-Q8_0.gguf", "--vram", "8").stdout
        assert "alpha-Q8_0.gguf: llama" in fit
        removed = stack.cli("rm", "alpha-Q8_0.gguf", "--yes")
        assert "deleted 1 file(s)" in removed.stdout
        assert stack.models_on_host() == []
    finally:
        stack.cleanup()


def test_the_dashboard_line_names_the_engine(remote_host: RemoteHost, tmp_path: Path) -> None:
    from stack.engine.forward import remote_summary

    stack = RemoteStack(remote_host, tmp_path, "box")
    settings = stack.settings()
    assert settings.engine_remote and settings.engine_host == remote_host.address
    with stack.client_env():
        engine, gateway = remote_summary(settings)
    assert engine == f"gpu-box over ssh · models in the volume {stack.stack}-models on gpu-box"
    assert gateway == f"http://localhost:{stack.gateway_port}/v1 (via SSH forward)"
    # Connect says the same: the URL IDEs use here, and how it reaches the host.
    reached = stack.cli("connect").stdout
    assert f"OpenAI API      http://localhost:{stack.gateway_port}/v1" in reached
    assert "reached         through an SSH forward to gpu-box" in reached


def test_key_in_the_chat_path_is_required_through_the_forward(
    remote_host: RemoteHost, hub: FakeHub, tmp_path: Path
) -> None:
    """The forward carries the gateway as it is: without the key, 401 (or LiteLLM's 400)."""
    import httpx

    from stack.engine import Engine

    stack = make_stack(remote_host, tmp_path, "ssh", hub, CHAT_MODEL="alpha-Q8_0.gguf")
    try:
        stack.cli("pull", "org/alpha-GGUF", "Q8_0", "--yes")
        stack.cli("up")
        with stack.client_env():
            engine = Engine(stack.settings(), forward=True)
            try:
                engine.status()
                assert engine.forward_problem == ""
                url = f"http://127.0.0.1:{stack.gateway_port}/v1/models"
                assert httpx.get(url, timeout=30).status_code in (400, 401)
                ok = httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
                assert ok.status_code == 200
                assert {m["id"] for m in ok.json()["data"]} >= {"local-chat", "local-code"}
            finally:
                engine.close()
    finally:
        stack.cleanup()


# What the NVIDIA runtime's nvidia-smi prints for this query on an H100 (nvidia-smi 550).
H100_LINE = "0, NVIDIA H100 80GB HBM3, 81559, 4242, 37, 44, 112.50, 700.00, 1980, 2619, 1980"


def test_gpu_numbers_come_from_the_host(remote_host: RemoteHost, tmp_path: Path) -> None:
    """The GPU panels read the host's GPUs through its inference container, not this NVML."""
    from stack.engine.containers import tar_of
    from stack.engine.remote_gpu import engine_gpu_sampler
    from stack.gpu import ServiceTarget
    from tests.support.docker_engine import BUSYBOX_IMAGE

    stack = RemoteStack(remote_host, tmp_path, "ssh")
    container = None
    with stack.client_env():  # the environment of an llm-tui process driving the host
        sampler = engine_gpu_sampler()  # what the dashboard's GPU panel and screen use
        try:
            before = sampler.sample(0.0)
            assert before.gpus == () and "come from its inference container" in before.problem
            # The host has no GPU: an inference container whose nvidia-smi prints what the
            # NVIDIA runtime's prints (the one part nothing real can play here).
            container = remote_host.admin().containers.create(
                BUSYBOX_IMAGE,
                ["sleep", "600"],
                name=f"{stack.stack}-inference",
                labels={"llm-tui.stack": stack.stack, "llm-tui.role": "inference"},
            )
            script = f"#!/bin/sh\necho '{H100_LINE}'\n".encode()
            container.put_archive("/", tar_of({"usr/bin/nvidia-smi": script}, mode=0o755))
            container.start()
            target = ServiceTarget("inference", container.id, "http://10.124.0.2:8080")
            reading = sampler.sample(1.0, [target])
            assert reading.problem == ""
            [gpu] = reading.gpus
            assert (gpu.name, gpu.memory_used, gpu.utilization, gpu.power_watts) == (
                "NVIDIA H100 80GB HBM3",
                4242 * 1024 * 1024,
                37,
                112.5,
            )
            assert "not read from the engine's host" in reading.throughput_notes["inference"]
            # Without the NVIDIA runtime there is no nvidia-smi: said, with the way out.
            container.exec_run(["rm", "/usr/bin/nvidia-smi"])
            after = sampler.sample(2.0, [target])
            assert after.gpus == ()
            assert "has no nvidia-smi" in after.problem and "llm-tui doctor" in after.problem
        finally:
            sampler.close()
            if container is not None:
                container.remove(force=True)
