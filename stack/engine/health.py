"""Waiting for a service to answer, and saying why one that was starting is gone.

The host polls the service itself (llama-server's `/health`, LiteLLM's liveliness) rather
than trusting the container's healthcheck, which lags by its interval; a container that
stops meanwhile fails the wait at once, with its exit code and last log lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from stack.cancel import CancelToken, closing_on_cancel
from stack.cancel import sleep as cancellable_sleep
from stack.engine.errors import EngineError
from stack.engine.exits import exit_words
from stack.engine.gateway import INFERENCE_CONTAINER_PORT
from stack.engine.plan import ServiceSpec, host_for
from stack.settings import Settings

if TYPE_CHECKING:
    from docker.models.containers import Container

HEALTH_POLL_S = 0.1
ENGINE_HEALTH_POLL_S = 0.25  # each poll is a request to a remote engine
GATEWAY_TIMEOUT_S = 120.0


def gateway_base(settings: Settings) -> str:
    """Where this host reaches the gateway (no /v1)."""
    return f"http://{host_for(settings.bind_address)}:{settings.api_gateway_port}"


def inference_url(settings: Settings, spec: ServiceSpec, container: Container | None) -> str:
    """How the host reaches llama-server: its published port, else its network IP."""
    if spec.ports:
        _, address, port = spec.ports[0]
        return f"http://{host_for(address)}:{port}"
    ip = ""
    if container is not None:
        networks = container.attrs.get("NetworkSettings", {}).get("Networks", {})
        ip = (networks.get(settings.stack_name) or {}).get("IPAddress", "")
    return f"http://{ip or spec.name}:{INFERENCE_CONTAINER_PORT}"


def wait_until_healthy(
    spec: ServiceSpec,
    url: str,
    *,
    find: Callable[[str], Container | None],
    timeout: float,
    progress: Callable[[str], None],
    cancel: CancelToken | None = None,
) -> None:
    """Poll ``url`` until it answers 200; raise EngineError if the container dies first."""
    import httpx

    deadline = time.monotonic() + timeout
    last_state = ""
    with httpx.Client(timeout=2.0) as http, closing_on_cancel(cancel, http.close):
        while True:
            container = find(spec.name)
            if container is None:
                raise EngineError(f"{spec.name} disappeared while starting")
            if container.status not in ("running", "created"):
                raise died_error(container)
            state = ""
            try:
                response = http.get(url)
                if response.status_code == 200:
                    progress(f"{spec.name} ready")
                    return
                state = "loading model" if response.status_code == 503 else ""
            except (httpx.HTTPError, RuntimeError):
                # RuntimeError: the client was closed by a cancel from another thread.
                if cancel is not None:
                    cancel.check(f"waiting for {spec.name}")
                state = "starting"
            if state and state != last_state:
                progress(f"{spec.name}: {state}")
                last_state = state
            if time.monotonic() > deadline:
                raise EngineError(
                    f"{spec.name} was not ready after {timeout:.0f} s",
                    fix=f"look at its logs (`llm-tui logs {spec.role}`)",
                )
            cancellable_sleep(cancel, HEALTH_POLL_S, f"waiting for {spec.name}")


def wait_until_engine_says_healthy(
    spec: ServiceSpec,
    *,
    find: Callable[[str], Container | None],
    timeout: float,
    progress: Callable[[str], None],
    cancel: CancelToken | None = None,
) -> None:
    """Wait for the container's own healthcheck (a remote engine: its ports are there).

    This machine cannot reach a remote host's loopback ports or its container network, so
    the engine's healthcheck (every 2 s, see `plan`) is the answer; a container that stops
    meanwhile fails the wait at once, as locally.
    """
    deadline = time.monotonic() + timeout
    last_state = ""
    while True:
        container = find(spec.name)
        if container is None:
            raise EngineError(f"{spec.name} disappeared while starting")
        if container.status not in ("running", "created"):
            raise died_error(container)
        health = (container.attrs.get("State", {}).get("Health") or {}).get("Status", "")
        if health == "healthy" or (not health and spec.healthcheck is None):
            progress(f"{spec.name} ready")
            return
        state = "loading model" if spec.role != "api-gateway" else "starting"
        if health == "unhealthy":
            state = "not answering its healthcheck yet"
        if state != last_state:
            progress(f"{spec.name}: {state}")
            last_state = state
        if time.monotonic() > deadline:
            raise EngineError(
                f"{spec.name} was not ready after {timeout:.0f} s",
                fix=f"look at its logs (`llm-tui logs {spec.role}`)",
            )
        cancellable_sleep(cancel, ENGINE_HEALTH_POLL_S, f"waiting for {spec.name}")


def died_error(container: Container) -> EngineError:
    """A service that stopped while starting: exit code or OOM, and its last log lines."""
    container.reload()
    state = container.attrs.get("State", {})
    code = state.get("ExitCode")
    oom = bool(state.get("OOMKilled"))
    tail = container.logs(tail=20).decode("utf-8", "replace").strip()
    reason = exit_words(code, oom)
    return EngineError(
        f"{container.name} stopped while starting: {reason}\n--- last log lines ---\n{tail}",
        fix="a smaller model, fewer GPU_LAYERS or a smaller CTX_SIZE may help"
        if oom
        else "check the model file and the log lines above",
    )
