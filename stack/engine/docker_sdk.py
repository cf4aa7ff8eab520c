"""The Docker SDK, imported without its SSH transport unless the engine is over SSH.

docker-py imports its SSH adapter whenever paramiko is installed (docker[ssh] installs it),
and paramiko brings invoke and more: ~0.25 s on every `llm-tui status` against a local
socket, most of that command's time. So the first import hides paramiko (docker then skips
its adapter, as it does when paramiko is missing), and the adapter is loaded and handed to
docker-py the first time an ``ssh://`` engine is used in that process.
"""

from __future__ import annotations

import sys
from types import ModuleType


def load(ssh: bool) -> ModuleType:
    """The ``docker`` package, able to reach an ``ssh://`` engine when ``ssh``."""
    if "docker" not in sys.modules and not ssh and "paramiko" not in sys.modules:
        sys.modules["paramiko"] = None  # type: ignore[assignment]  # import → ImportError
        try:
            import docker
        finally:
            if sys.modules.get("paramiko", False) is None:
                del sys.modules["paramiko"]
    import docker

    if ssh:
        enable_ssh()
    return docker


def enable_ssh() -> None:
    """Give docker-py the SSH adapter it skipped when it was imported without paramiko."""
    import docker.api.client as api_client
    import docker.transport as transport

    if not hasattr(api_client, "SSHHTTPAdapter"):
        from docker.transport.sshconn import SSHHTTPAdapter

        api_client.SSHHTTPAdapter = SSHHTTPAdapter  # type: ignore[attr-defined]
        transport.SSHHTTPAdapter = SSHHTTPAdapter  # type: ignore[misc]
