"""A "GPU box" on this machine: a Docker Engine that cannot see the client's files or ports.

What a laptop user reaches over SSH or TLS, built from real parts:

* its own network namespace, joined to this machine by a veth pair (the client is
  ``10.213.N.1``, the host ``10.213.N.2``): the host's loopback, its published ports and
  its own containers are its own, as on another machine;
* its own mount namespace, with tmpfs over the client's folders (``/tmp``, ``/work``,
  ``/root``, ``/home``): a bind mount of a client path silently becomes an empty folder
  there, exactly as on a real remote engine;
* a second `dockerd` in it (data-root cached per slot under LLM_TUI_CACHE, so the test
  images are loaded with ``docker save | docker load`` once), on a unix socket only the host
  sees and on ``tcp://10.213.N.2:2376`` with ``--tlsverify`` and certificates made here;
* `sshd` in it, whose only keys are forced to run ``docker system dial-stdio`` (and may open
  port forwards to the host's own loopback, for the gateway); one more key has no docker CLI
  on its PATH, for the "remote docker missing" fault.

The client side is a HOME with ``.ssh`` (key, known_hosts) and ``.docker`` contexts
(``gpu-box`` over SSH, ``gpu-tls`` over TLS). Everything needs root, ``ip`` (iproute2),
``nsenter``/``unshare`` (util-linux), sshd and dockerd; a missing part skips (CI: fails).

Up to `SLOTS` hosts run at once on one machine (each session takes a free slot by lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.tiers import unavailable

SLOTS = 8
SSH_PORT = 2222
TLS_PORT = 2376
RUN = "/srv/llm-tui-host"  # the host's own folder (a tmpfs only the host sees)
SOCKET = f"{RUN}/run/docker.sock"
DOCKER_CLI = shutil.which("docker") or "/usr/bin/docker"
CACHE = Path(os.environ.get("LLM_TUI_CACHE", Path.home() / ".cache" / "llm-tui-test"))
HIDDEN = ("/tmp", "/work", "/root", "/home", "/var/tmp")
NO_DOCKER_COMMAND = "env PATH=/nonexistent docker system dial-stdio"


@dataclass
class RemoteHost:
    slot: int
    netns: str
    address: str  # the host, as the client reaches it
    client_address: str  # the client, as the host reaches it
    root: Path  # client-side working folder (logs, keys, certs)
    home: Path  # a client HOME whose .ssh and .docker reach the host
    certs: Path  # the client's TLS files (ca.pem, cert.pem, key.pem)
    dockerd: subprocess.Popen[bytes]
    lock_fd: int
    sshd: subprocess.Popen[bytes] | None = None
    _admin: Any = field(default=None, repr=False)

    # --- how a client reaches it ------------------------------------------------------

    @property
    def ssh_url(self) -> str:
        return f"ssh://root@{self.address}:{SSH_PORT}"

    @property
    def tls_url(self) -> str:
        return f"tcp://{self.address}:{TLS_PORT}"

    def client_env(self, **extra: str) -> dict[str, str]:
        """A process environment with this HOME and no engine chosen yet."""
        env = {**os.environ, "HOME": str(self.home)}
        for key in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            env.pop(key, None)
        env.update(extra)
        return env

    def ssh_env(self, **extra: str) -> dict[str, str]:
        return self.client_env(DOCKER_HOST=self.ssh_url, **extra)

    @property
    def home_without_host_key(self) -> Path:
        """A HOME with the right key but an empty known_hosts."""
        return self.root / "client-home-no-known-host"

    @property
    def home_without_docker(self) -> Path:
        """A HOME whose key logs into a shell that has no docker CLI on its PATH."""
        return self.root / "client-home-no-docker"

    def tls_env(self, **extra: str) -> dict[str, str]:
        return self.client_env(
            DOCKER_HOST=self.tls_url,
            DOCKER_TLS_VERIFY="1",
            DOCKER_CERT_PATH=str(self.certs),
            **extra,
        )

    def admin(self) -> Any:
        """A Docker client for the tests' own look at the host (TLS; needs no HOME)."""
        if self._admin is None:
            import docker
            from docker.tls import TLSConfig

            tls = TLSConfig(
                client_cert=(str(self.certs / "cert.pem"), str(self.certs / "key.pem")),
                ca_cert=str(self.certs / "ca.pem"),
                verify=True,
            )
            # A fixed version: negotiating would ask before trust_env is off, and requests
            # takes REQUESTS_CA_BUNDLE over the CA given here while trust_env is on.
            self._admin = docker.DockerClient(
                base_url=self.tls_url, tls=tls, timeout=120, version="1.41"
            )
            self._admin.api.trust_env = False
        return self._admin

    # --- doing things on the host -------------------------------------------------------

    def run(
        self, *command: str, check: bool = True, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on the host (its mount and network namespaces)."""
        return subprocess.run(
            ["nsenter", "-t", str(self.dockerd.pid), "-m", "-n", "--", *command],
            check=check,
            capture_output=True,
            text=True,
            **kwargs,
        )

    def exists(self, path: str) -> bool:
        return self.run("test", "-e", path, check=False).returncode == 0

    @contextlib.contextmanager
    def small_filesystem(self, path: str, size: str) -> Iterator[str]:
        """A ``size`` tmpfs at ``path`` on the host (a disk that fills up for real)."""
        self.run("mkdir", "-p", path)
        self.run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path)
        try:
            yield path
        finally:
            self.run("umount", "-l", path, check=False)

    # --- sshd ---------------------------------------------------------------------------

    def start_sshd(self) -> None:
        if self.sshd is not None and self.sshd.poll() is None:
            return
        log = (self.root / "sshd.log").open("ab")
        # sshd refuses to start without its privilege-separation folder, which only a
        # system that has run the ssh service has (a fresh install does not).
        self.run("mkdir", "-p", "/run/sshd")
        self.sshd = subprocess.Popen(
            ["nsenter", "-t", str(self.dockerd.pid), "-m", "-n", "--", "/usr/sbin/sshd",
             "-D", "-e", "-f", f"{RUN}/conf/sshd_config"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )  # fmt: skip
        _wait_for_port(self.address, SSH_PORT, self.sshd, self.root / "sshd.log")

    def stop_sshd(self) -> None:
        """Nothing answers on the SSH port any more: the host is unreachable over SSH."""
        if self.sshd is None:
            return
        for pid in _children(self.sshd.pid, deep=True):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.sshd.terminate()
        self.sshd.wait(timeout=10)
        self.sshd = None

    def drop_ssh_connections(self) -> int:
        """Kill every open SSH connection (not the listener): a dropped link, for real.

        Returns how many were dropped.
        """
        if self.sshd is None:
            return 0
        sessions = _children(self.sshd.pid)  # nsenter execs sshd: its pid is the listener's
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(sessions)

    def ssh_connections(self) -> int:
        return len(_children(self.sshd.pid)) if self.sshd is not None else 0

    # --- the end ------------------------------------------------------------------------

    def stop(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                for container in self._admin.containers.list(all=True):
                    container.remove(force=True)
            self._admin.close()
        self.stop_sshd()
        if self.dockerd.poll() is None:
            self.dockerd.terminate()
            try:
                self.dockerd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.dockerd.kill()
                self.dockerd.wait()
        _remove_netns(self.netns, self.slot)
        os.close(self.lock_fd)


# --- starting one ------------------------------------------------------------------------


def start_remote_host(root: Path, local_client: Any, images: tuple[str, ...]) -> RemoteHost:
    """A fresh host (its data-root reused per slot) with ``images`` copied from the local engine."""
    _require_tools()
    slot, lock_fd = _take_slot()
    netns = f"llmtui-host{slot}"
    subnet = f"10.213.{slot + 40}"
    address, client_address = f"{subnet}.2", f"{subnet}.1"
    root.mkdir(parents=True, exist_ok=True)
    try:
        _remove_netns(netns, slot)
        bundle = root / "host-conf"
        home = root / "client-home"
        certs = root / "client-tls"
        _make_ssh(bundle, home, address)
        from tests.support.tls_certs import make_tls_pair

        make_tls_pair(bundle / "tls", certs, address)
        data = CACHE / f"remote-engine-{slot}"
        data.mkdir(parents=True, exist_ok=True)
        _kill_stale_dockerd(data)
        _network(netns, slot, address, client_address)
        dockerd = _start_dockerd(netns, slot, address, client_address, bundle, data, root)
    except BaseException:
        _remove_netns(netns, slot)
        os.close(lock_fd)
        raise
    host = RemoteHost(slot, netns, address, client_address, root, home, certs, dockerd, lock_fd)
    try:
        _wait_for_docker(host)
        (data / "dockerd.pid").write_text(f"{dockerd.pid}\n")
        _load_images(host, local_client, images)
        host.start_sshd()
        _make_contexts(host)
    except BaseException:
        host.stop()
        raise
    return host


def _require_tools() -> None:
    if os.geteuid() != 0:
        unavailable("remote engine", "a network and mount namespace needs root")
    for tool in ("ip", "nsenter", "unshare", "dockerd", "ssh-keygen"):
        if shutil.which(tool) is None:
            unavailable("remote engine", f"{tool} is missing (scripts/test installs it)")
    if not os.path.exists("/usr/sbin/sshd"):
        unavailable("remote engine", "openssh-server is missing (scripts/test installs it)")
    if shutil.which("docker") is None:
        unavailable("remote engine", "the docker CLI is missing (the host runs dial-stdio)")


def _take_slot() -> tuple[int, int]:
    folder = Path("/run/lock")
    folder.mkdir(parents=True, exist_ok=True)
    for slot in range(SLOTS):
        fd = os.open(folder / f"llm-tui-remote-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return slot, fd
    unavailable("remote engine", f"all {SLOTS} remote-engine slots are in use on this machine")


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return Path(f"{path}.pub").read_text().strip()


def _make_ssh(bundle: Path, home: Path, address: str) -> None:
    """The host's sshd config and keys (in ``bundle``), the client's HOME/.ssh."""
    bundle.mkdir(parents=True)
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    host_key = _keygen(bundle / "ssh_host_ed25519")
    client_key = _keygen(ssh / "id_ed25519")
    no_docker_key = _keygen(home / "no-docker-key")
    dial = f"{DOCKER_CLI} -H unix://{SOCKET} system dial-stdio"
    forward = 'port-forwarding,permitopen="127.0.0.1:*"'
    (bundle / "authorized_keys").write_text(
        f'command="{dial}",restrict,{forward} {client_key}\n'
        f'command="{NO_DOCKER_COMMAND}",restrict {no_docker_key}\n'
    )
    (bundle / "sshd_config").write_text(
        f"Port {SSH_PORT}\nListenAddress {address}\nHostKey {RUN}/conf/ssh_host_ed25519\n"
        f"AuthorizedKeysFile {RUN}/conf/authorized_keys\nPidFile {RUN}/run/sshd.pid\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nLogLevel ERROR\nMaxStartups 100\nMaxSessions 100\n"
    )
    key_type, key = host_key.split()[:2]
    known = f"[{address}]:{SSH_PORT} {key_type} {key}\n"
    (ssh / "known_hosts").write_text(known)
    # The same client without the host's key on file, and one whose key lands in a
    # shell without the docker CLI.
    stranger = home.parent / "client-home-no-known-host" / ".ssh"
    stranger.mkdir(parents=True, mode=0o700)
    for name in ("id_ed25519", "id_ed25519.pub"):
        shutil.copy2(ssh / name, stranger / name)
    (stranger / "known_hosts").write_text("")
    bare = home.parent / "client-home-no-docker" / ".ssh"
    bare.mkdir(parents=True, mode=0o700)
    shutil.copy2(home / "no-docker-key", bare / "id_ed25519")
    shutil.copy2(home / "no-docker-key.pub", bare / "id_ed25519.pub")
    (bare / "known_hosts").write_text(known)


def _network(netns: str, slot: int, address: str, client_address: str) -> None:
    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", netns)
    ip("link", "add", f"llmh{slot}", "type", "veth", "peer", "name", f"llmr{slot}", "netns", netns)
    ip("addr", "add", f"{client_address}/30", "dev", f"llmh{slot}")
    ip("link", "set", f"llmh{slot}", "up")


def _start_dockerd(
    netns: str,
    slot: int,
    address: str,
    client_address: str,
    bundle: Path,
    data: Path,
    root: Path,
) -> subprocess.Popen[bytes]:
    hidden = " ".join(HIDDEN)
    script = f"""
set -e
ip link set lo up
ip addr add {address}/30 dev llmr{slot}
ip link set llmr{slot} up
ip route add default via {client_address}
mount -t tmpfs -o size=64m,mode=0755 tmpfs /srv
mkdir -p {RUN}/data {RUN}/run {RUN}/conf
mount --bind {data} {RUN}/data
cp -a {bundle}/. {RUN}/conf/
for d in {hidden}; do if [ -d "$d" ]; then mount -t tmpfs -o mode=1777 tmpfs "$d"; fi; done
cd /
exec dockerd --data-root {RUN}/data --exec-root {RUN}/run/exec -H unix://{SOCKET} \
  -H tcp://{address}:{TLS_PORT} --tlsverify --tlscacert {RUN}/conf/tls/ca.pem \
  --tlscert {RUN}/conf/tls/cert.pem --tlskey {RUN}/conf/tls/key.pem \
  --pidfile {RUN}/run/dockerd.pid --bridge=none \
  --default-address-pool base=10.124.0.0/16,size=24
"""
    log = (root / "dockerd.log").open("ab")
    return subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{netns}", "--", "unshare", "--mount",
         "--propagation", "private", "--", "sh", "-c", script],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _wait_for_docker(host: RemoteHost) -> None:
    deadline = time.monotonic() + 60
    while True:
        if host.dockerd.poll() is not None:
            tail = (host.root / "dockerd.log").read_text(errors="replace")[-2000:]
            unavailable("remote engine", f"dockerd exited: {tail}")
        try:
            with socket.create_connection((host.address, TLS_PORT), timeout=1):
                pass
            host.admin().ping()
            return
        except Exception:
            if time.monotonic() > deadline:
                unavailable("remote engine", "its dockerd did not answer within 60 s")
            time.sleep(0.1)


def _load_images(host: RemoteHost, local: Any, images: tuple[str, ...]) -> None:
    """``docker save | docker load`` each image whose id differs on the host."""
    from docker.errors import ImageNotFound

    admin = host.admin()
    missing = []
    for tag in images:
        want = local.images.get(tag).id
        try:
            if admin.images.get(tag).id == want:
                continue
        except ImageNotFound:
            pass
        missing.append(tag)
    if not missing:
        return
    env = {**os.environ}
    saver = subprocess.Popen([DOCKER_CLI, "save", *missing], stdout=subprocess.PIPE, env=env)
    loaded = subprocess.run(
        ["nsenter", "-t", str(host.dockerd.pid), "-m", "-n", "--",
         DOCKER_CLI, "-H", f"unix://{SOCKET}", "load", "-q"],
        stdin=saver.stdout,
        capture_output=True,
        text=True,
    )  # fmt: skip
    if saver.stdout is not None:
        saver.stdout.close()
    saver.wait()
    if loaded.returncode != 0 or saver.returncode != 0:
        unavailable("remote engine", f"copying {missing} failed: {loaded.stderr.strip()}")


def _make_contexts(host: RemoteHost) -> None:
    """``gpu-box`` (ssh) and ``gpu-tls`` (tcp + TLS) contexts, with the real docker CLI."""
    env = host.client_env()
    certs = host.certs
    for name, endpoint in (
        ("gpu-box", f"host={host.ssh_url}"),
        (
            "gpu-tls",
            f"host={host.tls_url},ca={certs / 'ca.pem'},cert={certs / 'cert.pem'},"
            f"key={certs / 'key.pem'}",
        ),
    ):
        subprocess.run(
            [DOCKER_CLI, "context", "create", name, "--docker", endpoint],
            check=True,
            capture_output=True,
            env=env,
        )


def _wait_for_port(address: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            unavailable("sshd", log.read_text(errors="replace") or "exited at start")
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                unavailable("sshd", f"nothing listens on {address}:{port}")
            time.sleep(0.02)


# --- processes and namespaces ----------------------------------------------------------------


def _children(pid: int, *, deep: bool = False) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append(int(entry))
            if deep:
                found += _children(int(entry), deep=True)
    return found


def _kill_stale_dockerd(data: Path) -> None:
    """A dockerd a crashed run of this slot left behind (its pid was recorded)."""
    pidfile = data / "dockerd.pid"
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/comm").read_text().strip() == "dockerd":
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
    pidfile.unlink(missing_ok=True)


def _remove_netns(netns: str, slot: int) -> None:
    """Remove a slot's namespace and veth (what a crashed run of this slot left)."""
    if Path(f"/run/netns/{netns}").exists():
        pids = subprocess.run(
            ["ip", "netns", "pids", netns], capture_output=True, text=True
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)
    subprocess.run(["ip", "link", "del", f"llmh{slot}"], capture_output=True)


def remote_host_for_tests(root: Path) -> Iterator[RemoteHost]:
    """A host for a pytest session: skips (CI: fails) without the local engine or images."""
    from tests.support.docker_engine import (
        BUSYBOX_IMAGE,
        LITELLM_IMAGE,
        LLAMA_IMAGE,
        require_engine,
        require_images,
    )

    local = require_engine(timeout=120)
    images = (BUSYBOX_IMAGE, LLAMA_IMAGE, LITELLM_IMAGE)
    require_images(local, *images)
    host = start_remote_host(root, local, images)
    try:
        yield host
    finally:
        host.stop()
        local.close()
