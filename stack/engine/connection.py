"""Connecting to the Docker Engine, with failures turned into plain answers.

`docker.from_env()` semantics: `DOCKER_HOST`, else the active Docker context (Docker
Desktop on WSL2 uses one), else the default socket; the API version is negotiated, so
older engines (Debian's 20.10 speaks 1.41) work.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from stack.errors import LlmTuiError

if TYPE_CHECKING:
    import docker


class EngineUnavailable(LlmTuiError):
    """No Docker Engine answers, or we may not talk to it."""


def connect(timeout: float = 10.0) -> docker.DockerClient:
    """A client for the engine the user's environment points at."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=int(max(1, timeout)))
        client.ping()
    except DockerException as exc:
        raise explain_connection_error(exc) from None
    return client


def explain_connection_error(exc: Exception) -> EngineUnavailable:
    text = str(exc)
    host = os.environ.get("DOCKER_HOST") or "the default socket (/var/run/docker.sock)"
    if "Permission denied" in text or "PermissionError" in text:
        return EngineUnavailable(
            f"permission denied talking to the Docker Engine at {host}",
            fix="add yourself to the docker group (`sudo usermod -aG docker $USER`, then log "
            "out and in), or point DOCKER_HOST at an engine you may use",
        )
    if "No such file" in text or "Connection refused" in text or "FileNotFoundError" in text:
        return EngineUnavailable(
            f"no Docker Engine answers at {host}",
            fix="start Docker (Docker Desktop with WSL integration on, or `sudo systemctl "
            "start docker`), or set DOCKER_HOST",
        )
    if "timed out" in text.lower() or "Read timed out" in text:
        return EngineUnavailable(
            f"the Docker Engine at {host} did not answer in time",
            fix="check that Docker is running and not stuck (restart Docker Desktop)",
        )
    return EngineUnavailable(f"cannot use the Docker Engine at {host}: {text}")
