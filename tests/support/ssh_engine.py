"""The test Docker Engine reached over SSH, as a user with a GPU box would reach theirs.

A private `sshd` on 127.0.0.1 with a generated host key; its only authorised key is forced
to run `docker system dial-stdio` against the engine's socket (what the Docker SDK's SSH
transport expects on the far side). The client side is a HOME with `.ssh/id_ed25519` and a
`known_hosts` line, so paramiko (docker[ssh]) connects with nothing else configured.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import free_port
from tests.support.tiers import unavailable

SSHD = "/usr/sbin/sshd"


@dataclass
class SshEngine:
    docker_host: str  # ssh://root@127.0.0.1:PORT
    home: Path  # a HOME whose .ssh reaches it
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        """The environment a client process needs to use this engine over SSH."""
        return {**os.environ, "HOME": str(self.home), "DOCKER_HOST": self.docker_host}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return Path(f"{path}.pub").read_text().strip()


def start_ssh_engine(root: Path, engine_socket: str) -> SshEngine:
    """sshd in front of ``engine_socket`` (a unix socket path); stop() it when done."""
    docker_cli = shutil.which("docker")
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        unavailable("sshd", "openssh-server is not installed (scripts/test installs it)")
    if docker_cli is None:
        unavailable("docker CLI", "the far side of SSH needs `docker system dial-stdio`")
    if os.geteuid() != 0:
        unavailable("sshd", "a private sshd on this machine needs root")
    server, client_home = root / "sshd", root / "client-home"
    server.mkdir(parents=True)
    (client_home / ".ssh").mkdir(parents=True, mode=0o700)
    host_public = _keygen(server / "host_ed25519")
    client_public = _keygen(client_home / ".ssh" / "id_ed25519")
    command = f"{docker_cli} -H unix://{engine_socket} system dial-stdio"
    (server / "authorized_keys").write_text(f'command="{command}",restrict {client_public}\n')
    port = free_port()
    (server / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {server / 'host_ed25519'}\n"
        f"AuthorizedKeysFile {server / 'authorized_keys'}\nPidFile {server / 'sshd.pid'}\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nLogLevel ERROR\n"
    )
    key_type, key = host_public.split()[:2]
    (client_home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {key_type} {key}\n")
    # sshd refuses to start without its privilege-separation folder.
    Path("/run/sshd").mkdir(exist_ok=True)
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(server / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=(server / "sshd.log").open("wb"),
    )
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            unavailable("sshd", (server / "sshd.log").read_text() or "exited at start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                unavailable("sshd", f"nothing listens on 127.0.0.1:{port}")
            time.sleep(0.02)
    return SshEngine(f"ssh://root@127.0.0.1:{port}", client_home, process)
