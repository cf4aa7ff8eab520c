"""A short-lived Docker Engine of a test's own, to stop and start under a running app.

The shared test engine (scripts/dockerd) must never go away under other tests, so a test
that takes the engine away starts this one: its own socket, exec-root, pidfile and data
root in a temp folder; a bridge of its own and no iptables (the shared engine owns docker0
and the firewall rules; `--bridge=none` is no way out: dockerd then deletes docker0 from
the host, under the shared engine), and its containers run with ``network_mode="none"``;
vfs storage (a small busybox image only). Images come from the shared engine (`docker save | load`).
Needs root and dockerd; otherwise the test skips (fails under CI=true).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.tiers import unavailable

START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0


class OwnDockerd:
    def __init__(self) -> None:
        if os.geteuid() != 0:
            unavailable("a second dockerd", "starting one needs root")
        if shutil.which("dockerd") is None:
            unavailable("a second dockerd", "dockerd is not installed (apt-get install docker.io)")
        if shutil.which("ip") is None:
            unavailable("a second dockerd", "ip is not installed (apt-get install iproute2)")
        # A short path: unix socket paths are limited to ~100 characters.
        self.folder = Path(tempfile.mkdtemp(prefix="llmtui-d-", dir="/tmp"))
        self.socket = self.folder / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None
        suffix = os.urandom(3)
        self.bridge = f"ltd{suffix.hex()}"  # interface names: 15 characters at most
        self.bridge_address = f"10.213.{suffix[0]}.1/24"
        self._bridge_made = False

    def make_bridge(self) -> None:
        if self._bridge_made:
            return
        for command in (
            ["ip", "link", "add", self.bridge, "type", "bridge"],
            ["ip", "addr", "add", self.bridge_address, "dev", self.bridge],
            ["ip", "link", "set", self.bridge, "up"],
        ):
            subprocess.run(command, check=True, capture_output=True)
            self._bridge_made = True

    def start(self) -> None:
        self.make_bridge()
        log = (self.folder / "dockerd.log").open("ab")
        self.process = subprocess.Popen(
            [
                "dockerd",
                "--data-root", str(self.folder / "data"),
                "--exec-root", str(self.folder / "exec"),
                "--pidfile", str(self.folder / "dockerd.pid"),
                "-H", self.host,
                f"--bridge={self.bridge}", "--iptables=false", "--ip6tables=false",
                "--storage-driver=vfs",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        end = time.monotonic() + START_DEADLINE_S
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > end:
                tail = (self.folder / "dockerd.log").read_text(errors="replace")[-2000:]
                self.stop()
                unavailable("a second dockerd", f"it did not start:\n{tail}")
            time.sleep(0.1)

    def answers(self) -> bool:
        import docker

        try:
            client = docker.DockerClient(base_url=self.host, timeout=2)
        except Exception:
            return False
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, timeout=30)

    def load_image(self, source: Any, tag: str) -> None:
        """Copy ``tag`` from ``source`` (the shared engine's client) into this engine."""
        data = b"".join(source.images.get(tag).save(named=True))
        client = self.client()
        try:
            client.images.load(data)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM, as `systemctl stop docker` does; it stops its containers first."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def remove(self) -> None:
        self.stop()
        if self._bridge_made:
            subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)
            self._bridge_made = False
        shutil.rmtree(self.folder, ignore_errors=True)
