"""The engine reached over `ssh://` (paramiko): logs print and follow, and streams stop.

Over SSH the response's file object is a paramiko ChannelFile (no ``read1``), and the SDK
refuses to close its streams from another thread; both used to end in a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from stack.engine.logs import LogFollower
from tests.support.docker_engine import BUSYBOX_IMAGE, require_engine, require_images
from tests.support.ssh_engine import SshEngine, start_ssh_engine
from tests.support.tiers import unavailable


@pytest.fixture(scope="module")
def local() -> Iterator[Any]:
    client = require_engine()
    require_images(client, BUSYBOX_IMAGE)
    yield client
    client.close()


@pytest.fixture(scope="module")
def ssh(local: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshEngine]:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        unavailable("SSH engine", f"the test engine must be a unix socket, not {host}")
    engine = start_ssh_engine(tmp_path_factory.mktemp("ssh"), urlsplit(host).path)
    yield engine
    engine.stop()


@pytest.fixture
def remote(ssh: SshEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import docker

    monkeypatch.setenv("HOME", str(ssh.home))
    client = docker.DockerClient(base_url=ssh.docker_host, timeout=60)
    client.ping()
    yield client
    client.close()


@pytest.fixture
def container(local: Any) -> Iterator[Any]:
    made = local.containers.run(
        BUSYBOX_IMAGE,
        ["sh", "-c", "for i in 1 2 3; do echo line $i; done; while true; do sleep 1; done"],
        detach=True,
        init=True,
        network_mode="none",  # logs need no network
        labels={"llm-tui.stack": "ssh-test", "llm-tui.role": "inference"},
        name=f"ssh-test-{os.getpid()}-inference",
    )
    yield made
    made.remove(force=True)


def test_logs_follow_over_ssh_and_close_from_another_thread(remote: Any, container: Any) -> None:
    follower = LogFollower(remote.containers.get(container.id), timestamps=False)
    seen: list[str] = []
    three = threading.Event()
    done = threading.Event()

    def consume() -> None:
        for line in follower:
            seen.append(line.text)
            if len(seen) == 3:
                three.set()
        done.set()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    assert three.wait(60), f"lines over SSH: {seen}"
    assert seen == ["line 1", "line 2", "line 3"]
    follower.close()  # the container keeps running: only close() can end this
    assert done.wait(30), "close() did not end a log stream over SSH"


def test_llm_tui_logs_over_ssh_prints_lines_not_a_traceback(
    ssh: SshEngine, container: Any, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("STACK_NAME=ssh-test\nGPU=none\n")
    container.rename("ssh-test-inference")
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "--env-file", str(tmp_path / ".env"), "logs"],
        capture_output=True,
        text=True,
        timeout=120,
        env=ssh.env(),
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == ["line 1", "line 2", "line 3"]


def test_over_ssh_the_logs_are_read_directly_not_frame_by_frame(
    remote: Any, container: Any
) -> None:
    """The direct reader (3x the SDK's rate) works on paramiko's channel file too."""
    from stack.engine.log_stream import stream_logs_fast

    params = {"stdout": 1, "stderr": 1, "follow": 1, "timestamps": 0, "tail": "all"}
    fast = stream_logs_fast(remote.containers.get(container.id), params)
    assert fast is not None, "over SSH the logs fell back to the SDK's stream"
    chunks, cancel = fast
    text = b""
    while text.count(b"\n") < 3:
        text += next(chunks)
    assert text.splitlines()[:3] == [b"line 1", b"line 2", b"line 3"]
    done = threading.Event()

    def drain() -> None:
        for _ in chunks:  # blocks: the container prints nothing more
            pass
        done.set()

    threading.Thread(target=drain, daemon=True).start()
    cancel()
    assert done.wait(30), "cancel() did not end a direct log stream over SSH"
