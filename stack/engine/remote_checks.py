"""`llm-tui doctor` for an engine on another machine: each step of reaching it, with its fix.

In order, stopping at the first that fails (the rest cannot be asked then): the host
answers on its SSH port (or its TLS port), its SSH host key is already known, the login
works and the host has the docker CLI that docker[ssh] runs (``docker system
dial-stdio``), the engine's API is new enough, it has the NVIDIA runtime, the images are
there, the models are on that host, and this machine can reach the gateway.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from stack.engine.connection import (
    EngineUnavailable,
    check_ssh_reachable,
    connect,
    probe_dial_stdio,
    ssh_target,
)
from stack.engine.endpoint import Endpoint, resolve_endpoint
from stack.settings import Settings

if TYPE_CHECKING:
    from stack.doctor import Check

MIN_API = (1, 40)  # GPU device requests


def remote_checks(settings: Settings, endpoint: Endpoint | None = None) -> list[Check]:
    from stack.doctor import Check, Status, check_images

    target = endpoint or resolve_endpoint()
    checks = [Check("engine", Status.OK, f"{target.label} ({target.url}, from {target.source})")]
    reached = _reach(target)
    checks += reached
    if any(c.status is Status.FAIL for c in reached):
        return checks
    try:
        client = connect(endpoint=target)
    except EngineUnavailable as exc:
        return [*checks, Check("docker", Status.FAIL, exc.message, exc.fix or "")]
    try:
        version = client.version()
        info = client.info()
        checks.append(_api_check(target, version))
        checks.append(_nvidia_check(settings, target, info))
        checks.append(check_images(settings, client))
        checks += _models_checks(settings, client)
    except Exception as exc:
        checks.append(Check("docker", Status.FAIL, f"the engine on {target.label} failed: {exc}"))
    finally:
        client.close()
    checks.append(_gateway_check(settings, target))
    return checks


def _reach(target: Endpoint) -> list[Check]:
    from stack.doctor import Check, Status

    if target.transport != "ssh":
        host, port = target.hostname, target.port or (2376 if target.transport == "tls" else 2375)
        try:
            with socket.create_connection((host, port), timeout=5):
                pass
        except OSError as exc:
            return [
                Check(
                    "reach",
                    Status.FAIL,
                    f"nothing answers on {host}:{port} ({exc.strerror or exc})",
                    "check that the host is on and dockerd listens there (`-H tcp://…:2376 "
                    "--tlsverify`), and DOCKER_HOST / the context",
                )
            ]
        return [Check("reach", Status.OK, f"{host}:{port} answers")]
    try:
        check_ssh_reachable(target, 5.0)
    except EngineUnavailable as exc:
        return [Check("reach", Status.FAIL, exc.message, exc.fix or "")]
    host, port, user, _ = ssh_target(target)
    checks = [Check("reach", Status.OK, f"SSH answers on {host}:{port}")]
    known = _host_key_known(host, port)
    login = f"{user + '@' if user else ''}{host}"
    if not known:
        checks.append(
            Check(
                "host key",
                Status.FAIL,
                f"the SSH host key of {host}:{port} is not in ~/.ssh/known_hosts "
                "(llm-tui never accepts an unknown key)",
                f"connect once with `ssh -p {port} {login}` and accept the key after checking "
                "its fingerprint",
            )
        )
        return checks
    checks.append(Check("host key", Status.OK, "known (~/.ssh/known_hosts)"))
    reason = probe_dial_stdio(target)
    if reason:
        checks.append(
            Check(
                "remote docker",
                Status.FAIL,
                reason,
                "install Docker on that host; docker[ssh] runs `docker system dial-stdio` "
                "there, so its `docker` CLI must be on the PATH of non-interactive logins "
                f"(`ssh -p {port} {login} docker version`)",
            )
        )
        return checks
    checks.append(Check("remote docker", Status.OK, "`docker system dial-stdio` runs there"))
    return checks


def _host_key_known(host: str, port: int) -> bool:
    """Whether ~/.ssh/known_hosts holds a key for the host (hashed entries too)."""
    import os

    import paramiko

    try:
        keys = paramiko.HostKeys(os.path.expanduser("~/.ssh/known_hosts"))
    except OSError:
        return False
    return keys.lookup(host if port == 22 else f"[{host}]:{port}") is not None


def _api_check(target: Endpoint, version: dict[str, Any]) -> Check:
    from stack.doctor import Check, Status

    api = str(version.get("ApiVersion", "0"))
    detail = f"Docker Engine {version.get('Version', '?')} (API {api}) on {target.name}"
    try:
        numbers = tuple(int(part) for part in api.split(".")[:2])
    except ValueError:
        numbers = (0, 0)
    if numbers < MIN_API:
        return Check(
            "docker",
            Status.FAIL,
            detail + f": too old, llm-tui needs API {'.'.join(map(str, MIN_API))} (Docker 19.03+)",
            "upgrade Docker on that host",
        )
    return Check("docker", Status.OK, detail)


def _nvidia_check(settings: Settings, target: Endpoint, info: dict[str, Any]) -> Check:
    from stack.doctor import Check, Status

    if "nvidia" in (info.get("Runtimes") or {}):
        return Check("nvidia", Status.OK, f"NVIDIA container runtime on {target.name}")
    if settings.gpu == "none":
        return Check("nvidia", Status.OK, f"not needed (GPU=none); {target.name} has none")
    return Check(
        "nvidia",
        Status.FAIL if settings.gpu != "auto" else Status.WARN,
        f"{target.name} has no NVIDIA container runtime: "
        + ("inference would run on its CPU" if settings.gpu == "auto" else "GPU=" + settings.gpu)
        + " cannot get a GPU",
        "install nvidia-container-toolkit on that host and restart its Docker "
        "(`nvidia-ctk runtime configure --runtime=docker`), or set GPU=none",
    )


def _models_checks(settings: Settings, client: Any) -> list[Check]:
    from stack.doctor import Check, Status
    from stack.engine.remote_models import RemoteModels
    from stack.errors import LlmTuiError
    from stack.units import format_size

    models = RemoteModels(client, settings)
    wanted = [m for m in (settings.chat_model, settings.code_model) if m]
    try:
        problems, free = models.check(wanted)
    except LlmTuiError as error:
        return [Check("models", Status.FAIL, error.message, error.fix or "")]
    checks: list[Check] = []
    if not wanted:
        checks.append(
            Check(
                "models",
                Status.WARN,
                f"CHAT_MODEL is not set (models live in {models.where})",
                "download one (`llm-tui pull REPO QUANT` downloads it there) and pick it",
            )
        )
    else:
        bad = [(m, p, h) for m, (p, h) in problems.items() if p is not None or h]
        if bad:
            model, problem, header = bad[0]
            checks.append(
                Check(
                    "models",
                    Status.FAIL,
                    f"{model}: {problem.message if problem else header}",
                    problem.fix if problem else "download it again (`llm-tui pull`)",
                )
            )
        else:
            checks.append(Check("models", Status.OK, f"serving {wanted[0]} from {models.where}"))
    gib = free / 2**30
    checks.append(
        Check(
            "disk",
            Status.WARN if gib < 5 else Status.OK,
            f"{format_size(free)} free for models in {models.where}",
            "free some space there, or set REMOTE_MODELS_DIR to a bigger disk" if gib < 5 else "",
        )
    )
    return checks


def _gateway_check(settings: Settings, target: Endpoint) -> Check:
    from stack.doctor import Check, Status, port_is_free
    from stack.engine.forward import gateway_route

    route = gateway_route(settings, target)
    if route.kind == "none":
        return Check("gateway", Status.WARN, route.detail, "set BIND_ADDRESS=0.0.0.0")
    if route.kind == "ssh-forward" and not port_is_free("127.0.0.1", settings.api_gateway_port):
        return Check(
            "gateway",
            Status.OK,
            f"{route.url}: port {settings.api_gateway_port} here is taken (a forward already "
            "open, or another program: `ss -ltnp`)",
        )
    return Check("gateway", Status.OK, f"{route.url} {route.detail}")
