"""Each fault of a remote engine provoked for real: one clear line, the fix, nothing lost.

The host is unreachable (its sshd stopped), its host key is unknown, its shell has no
docker CLI, the SSH link drops in the middle of a stream (logs, the gateway forward, the
engine's own client: each reconnects), its disk fills up during a download (a small tmpfs
on the host, filled while the download is held), and it has no NVIDIA runtime.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakehub import FakeHub, make_payload
from tests.support.remote_host import RemoteHost
from tests.support.remote_stack import RemoteStack, hub_with_models

pytestmark = pytest.mark.engine

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def hub(remote_host: RemoteHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    hub = hub_with_models(remote_host, tmp_path_factory.mktemp("hub"))
    yield hub
    hub.stop()


@pytest.fixture
def stack(remote_host: RemoteHost, hub: FakeHub, tmp_path: Path) -> Iterator[RemoteStack]:
    made = RemoteStack(remote_host, tmp_path, "ssh", HF_ENDPOINT=hub.url)
    try:
        yield made
    finally:
        made.cleanup()


def one_line_failure(result: Any, *fragments: str) -> None:
    """Exit 1, and after any progress lines: the reason on one line, then the fix."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    error = result.stderr[result.stderr.find("llm-tui: error: ") :]
    assert error.startswith("llm-tui: error: "), result.stderr
    assert len(error.splitlines()) == 2 and error.splitlines()[1].startswith("  fix: "), error
    for fragment in fragments:
        assert fragment in error, error


def test_host_unreachable(stack: RemoteStack, remote_host: RemoteHost) -> None:
    remote_host.stop_sshd()
    try:
        result = stack.cli("status", check=False, timeout=60)
        one_line_failure(
            result, f"cannot reach {remote_host.address} over ssh", "Connection refused"
        )
        doctor = json.loads(stack.cli("doctor", "--json", check=False).stdout)
        reach = next(c for c in doctor if c["name"] == "reach")
        assert reach["status"] == "fail" and reach["fix"]
    finally:
        remote_host.start_sshd()
    assert stack.cli("status").returncode == 0


def kept_login(env: dict[str, str]) -> str:
    """The control socket the ssh client keeps a login open on, for this HOME and host."""
    from stack.engine.direct_api import ssh_command
    from stack.engine.endpoint import resolve_endpoint

    command = ssh_command(resolve_endpoint(env), env)
    assert command is not None
    return next(p.partition("=")[2] for p in command if p.startswith("ControlPath="))


def test_a_second_status_reuses_the_first_login(
    stack: RemoteStack, remote_host: RemoteHost
) -> None:
    """The login stays open a minute after `status` ends, and the next `status` goes
    through it: it still answers with the host's SSH listener gone, which no new login
    could. Another HOME (other keys, other known hosts) never borrows it."""
    first = stack.cli("status", "--json")
    socket_path = kept_login(stack.engine_environment())
    check = subprocess.run(["ssh", "-S", socket_path, "-O", "check", "host"], capture_output=True)
    assert check.returncode == 0, check.stderr
    assert remote_host.sshd is not None
    listener = remote_host.sshd
    listener.kill()  # the listener only: open connections are their own processes
    listener.wait(timeout=10)
    try:
        second = stack.cli("status", "--json", check=False)
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout) == json.loads(first.stdout)
        stranger = stack.cli("status", check=False, HOME=str(remote_host.home_without_host_key))
        assert stranger.returncode == 1  # its own login, refused: nothing listens
    finally:
        subprocess.run(["ssh", "-S", socket_path, "-O", "exit", "host"], capture_output=True)
        remote_host.sshd = None
        remote_host.start_sshd()
    assert stack.cli("status").returncode == 0


def test_unknown_host_key_is_refused_not_accepted(
    stack: RemoteStack, remote_host: RemoteHost
) -> None:
    stranger = str(remote_host.home_without_host_key)
    result = stack.cli("status", check=False, HOME=stranger)
    one_line_failure(result, "host key", "is not known", "ssh -p 2222 root@")
    # Nothing was written to known_hosts: an unknown key is never accepted silently.
    assert (remote_host.home_without_host_key / ".ssh" / "known_hosts").read_text() == ""
    doctor = json.loads(stack.cli("doctor", "--json", check=False, HOME=stranger).stdout)
    check = next(c for c in doctor if c["name"] == "host key")
    assert check["status"] == "fail" and "ssh -p 2222" in check["fix"]


def test_host_without_the_docker_cli(stack: RemoteStack, remote_host: RemoteHost) -> None:
    bare = str(remote_host.home_without_docker)
    result = stack.cli("status", check=False, HOME=bare)
    one_line_failure(result, "accepts SSH but cannot run Docker there", "not on the host's PATH")
    doctor = json.loads(stack.cli("doctor", "--json", check=False, HOME=bare).stdout)
    check = next(c for c in doctor if c["name"] == "remote docker")
    assert check["status"] == "fail" and "dial-stdio" in check["fix"]


def test_ssh_dropped_mid_stream_everything_reconnects(
    stack: RemoteStack, remote_host: RemoteHost
) -> None:
    import httpx

    from stack.engine import Engine
    from stack.engine.connection import connect
    from stack.engine.forward import GatewayForward
    from stack.engine.logs import LogFollower

    admin = remote_host.admin()
    chatty = admin.containers.run(
        "llm-tui-test/busybox:1",
        ["sh", "-c", "i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo line $i; sleep 0.005; "
         "done; httpd -f -p 127.0.0.1:7070 -h /etc"],
        detach=True,
        init=True,
        network_mode="host",
        labels={"llm-tui.stack": stack.stack, "llm-tui.role": "inference"},
        name=f"{stack.stack}-inference",
    )  # fmt: skip
    with stack.client_env():
        client = connect()
        engine = Engine(stack.settings())
        forward = GatewayForward(client.llm_tui_endpoint, 7070, stack.gateway_port)
        try:
            follower = LogFollower(client.containers.get(chatty.id), timestamps=False)
            seen: list[int] = []
            halfway = threading.Event()

            def read() -> None:
                for line in follower:
                    seen.append(int(line.text.split()[1]))
                    if len(seen) == 150:
                        halfway.set()
                    if seen[-1] == 600:
                        return

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            assert halfway.wait(60), seen[-5:]
            assert remote_host.drop_ssh_connections() >= 1  # the link, not the container
            reader.join(120)
            follower.close()
            assert seen == list(range(1, 601))  # nothing lost, nothing twice

            # The engine's own client was dropped too: the next call connects again.
            assert {row.role for row in engine.status()} >= {"inference"}

            # The gateway forward: a request, the link dropped, a request again.
            forward.start()
            url = f"http://127.0.0.1:{stack.gateway_port}/passwd"
            assert httpx.get(url, timeout=30).status_code == 200
            assert remote_host.drop_ssh_connections() >= 1
            assert httpx.get(url, timeout=30).status_code == 200
        finally:
            forward.close()
            engine.close()
            client.close()


def test_remote_disk_full_during_a_download_keeps_the_part(
    remote_host: RemoteHost, hub: FakeHub, tmp_path: Path
) -> None:
    """The host's folder is a small tmpfs (room for the file and the downloader's 512 MiB
    margin), filled up by another writer while the download is held."""
    payload = make_payload(8 * MiB, seed=7)
    hub.add_repo("org/big-GGUF", {"big-Q4_K_M.gguf": payload})
    folder = "/srv/llm-tui-host/small-models"
    stack = RemoteStack(remote_host, tmp_path, "ssh", HF_ENDPOINT=hub.url, REMOTE_MODELS_DIR=folder)
    try:
        with remote_host.small_filesystem(folder, "560m"):
            hub.faults.hold_after_bytes = 3 * MiB
            pulling = threading.Thread(
                target=lambda: results.append(
                    stack.cli("pull", "org/big-GGUF", "Q4_K_M", "--yes", check=False)
                ),
                daemon=True,
            )
            results: list[Any] = []
            pulling.start()
            hub.wait_held(1, timeout=60)
            filler = f"{folder}/.filler"
            remote_host.run("sh", "-c", f"cat /dev/zero > {filler}", check=False)
            hub.release()
            hub.reset_faults()
            pulling.join(120)
            (result,) = results
            assert result.returncode == 1, result.stderr
            assert "Traceback" not in result.stderr
            assert "the disk is full" in result.stderr, result.stderr
            assert f"{folder} on {remote_host.address}" in result.stderr
            assert "the retry resumes from there" in result.stderr
            assert "REMOTE_MODELS_DIR" in result.stderr  # the fix names the setting there
            part = f"{folder}/big-Q4_K_M.gguf.part"
            kept = int(remote_host.run("stat", "-c", "%s", part).stdout)
            assert kept >= 3 * MiB  # what arrived is kept for the retry

            # Space again: the same command resumes from the part and verifies the sha256.
            remote_host.run("rm", "-f", filler)
            served_before = hub.bytes_served("org/big-GGUF", "big-Q4_K_M.gguf")
            stack.cli("pull", "org/big-GGUF", "Q4_K_M", "--yes")
            served = hub.bytes_served("org/big-GGUF", "big-Q4_K_M.gguf") - served_before
            assert served <= len(payload) - kept  # only the rest was fetched
            digest = remote_host.run("sha256sum", f"{folder}/big-Q4_K_M.gguf").stdout.split()[0]
            assert digest == hashlib.sha256(payload).hexdigest()
            assert not remote_host.exists(part)
    finally:
        hub.reset_faults()
        stack.cleanup()


def test_no_nvidia_runtime_on_the_host(
    remote_host: RemoteHost, hub: FakeHub, tmp_path: Path
) -> None:
    stack = RemoteStack(
        remote_host, tmp_path, "ssh", HF_ENDPOINT=hub.url, GPU="all", CHAT_MODEL="alpha-Q8_0.gguf"
    )
    try:
        stack.cli("pull", "org/alpha-GGUF", "Q8_0", "--yes")
        result = stack.cli("up", check=False)
        one_line_failure(
            result,
            f"the Docker Engine on {remote_host.address} over ssh has no NVIDIA container runtime",
            "nvidia-container-toolkit on that host",
            "GPU none",
        )
        assert stack.containers() == []  # the failed start left nothing behind
        doctor = json.loads(stack.cli("doctor", "--json", check=False).stdout)
        check = next(c for c in doctor if c["name"] == "nvidia")
        assert check["status"] == "fail" and "nvidia-container-toolkit" in check["fix"]
    finally:
        stack.cleanup()
