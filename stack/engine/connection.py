"""Connecting to the Docker Engine, with failures turned into plain answers.

The engine is the one `stack.engine.endpoint.resolve_endpoint` names: ``--context``, else
``DOCKER_HOST`` (unix, ``tcp://`` with TLS, ``ssh://``), else ``DOCKER_CONTEXT`` or the
current Docker context, else the default socket. The API version is negotiated, so older
engines (Debian's 20.10 speaks 1.41) work.

Over SSH (docker[ssh], paramiko) the host is first reached with a short TCP timeout (so an
unreachable host fails in seconds, not after the kernel's minutes of retries), its host key
must already be known (never accepted blindly), and a connection that fails after the login
is probed once more to tell a missing remote docker CLI from anything else. A dropped SSH
connection is noticed before the next call (`client_is_alive`) so the caller reconnects.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack.engine.docker_sdk import load as load_docker
from stack.engine.endpoint import Endpoint, resolve_endpoint
from stack.errors import LlmTuiError

if TYPE_CHECKING:
    import docker

SSH_CONNECT_TIMEOUT_S = 5.0
# The oldest API llm-tui needs (DeviceRequests: 1.40); a placeholder until negotiated.
MIN_API_VERSION = "1.41"


class EngineUnavailable(LlmTuiError):
    """No Docker Engine answers, or we may not talk to it."""


def connect(timeout: float = 10.0, endpoint: Endpoint | None = None) -> docker.DockerClient:
    """A client for the engine the user's environment points at (or ``endpoint``)."""
    target = endpoint or resolve_endpoint()
    if target.problem:
        raise EngineUnavailable(
            f"the Docker context {target.context!r} ({target.source}) cannot be used: "
            f"{target.problem}",
            fix="see `docker context ls`; create it with `docker context create NAME "
            "--docker host=ssh://user@host`, or pick another with --context",
        )
    if target.transport == "ssh":
        check_ssh_reachable(target, min(timeout, SSH_CONNECT_TIMEOUT_S))
    load_docker(ssh=target.transport == "ssh")  # paramiko only when it is used
    try:
        client = _client(target, timeout)
    except Exception as exc:
        raise explain_connection_error(exc, target) from None
    client.llm_tui_endpoint = target  # type: ignore[attr-defined]
    return client


def endpoint_of(client: Any) -> Endpoint:
    """The endpoint a client from `connect` was made for (the resolved one otherwise)."""
    found = getattr(client, "llm_tui_endpoint", None)
    return found if isinstance(found, Endpoint) else resolve_endpoint()


def _client(endpoint: Endpoint, timeout: float) -> docker.DockerClient:
    import docker
    from docker.utils import kwargs_from_env

    if endpoint.source in ("DOCKER_HOST", "default"):
        params: dict[str, Any] = dict(kwargs_from_env())
    else:
        # Read here, not by docker-py's ContextAPI: it finds no context at all when
        # ~/.docker/config.json does not exist (`docker context create` does not make one).
        params = {"base_url": endpoint.url}
        if endpoint.tls_dir:
            from docker.tls import TLSConfig

            folder = Path(endpoint.tls_dir)
            files = {name: folder / f"{name}.pem" for name in ("ca", "cert", "key")}
            params["tls"] = TLSConfig(
                client_cert=(str(files["cert"]), str(files["key"]))
                if files["cert"].exists() and files["key"].exists()
                else None,
                ca_cert=str(files["ca"]) if files["ca"].exists() else None,
                verify=not endpoint.skip_tls_verify,
            )
    params.setdefault("base_url", endpoint.url)
    # A fixed version first: negotiating is the first request, and for TLS it must go out
    # with requests' environment ignored (REQUESTS_CA_BUNDLE would replace the engine's CA).
    client = docker.DockerClient(timeout=int(max(1, timeout)), version=MIN_API_VERSION, **params)
    try:
        tls = params.get("tls")
        if tls is not None and getattr(tls, "ca_cert", None):
            client.api.trust_env = False
        api: Any = client.api
        api._version = api.version(api_version=False)["ApiVersion"]
    except BaseException:
        client.close()
        raise
    return client


def client_is_alive(client: Any) -> bool:
    """False once an SSH client's connection has dropped (docker-py never reconnects it)."""
    adapter = getattr(client.api, "_custom_adapter", None)
    ssh = getattr(adapter, "ssh_client", None)
    if ssh is None:
        return True  # unix, tcp: every request opens what it needs
    transport = ssh.get_transport()
    return transport is not None and transport.is_active()


# --- SSH ---------------------------------------------------------------------------------


def ssh_target(endpoint: Endpoint) -> tuple[str, int, str, dict[str, Any]]:
    """(host, port, user, ~/.ssh/config entry) as docker[ssh] resolves them."""
    import os

    import paramiko

    host, port, user = endpoint.hostname, endpoint.port, endpoint.username
    entry: dict[str, Any] = {}
    config_file = os.path.expanduser("~/.ssh/config")
    if os.path.exists(config_file):
        config = paramiko.SSHConfig.from_path(config_file)
        entry = dict(config.lookup(host))
        host = str(entry.get("hostname", host))
        if port is None and "port" in entry:
            port = int(entry["port"])
        if not user and "user" in entry:
            user = str(entry["user"])
    return host, port or 22, user, entry


def check_ssh_reachable(endpoint: Endpoint, timeout: float) -> None:
    """Fail fast, with the address, when nothing answers on the host's SSH port."""
    try:
        host, port, _, entry = ssh_target(endpoint)
    except Exception as exc:  # a broken ~/.ssh/config
        raise EngineUnavailable(
            f"cannot read ~/.ssh/config for {endpoint.label}: {exc}", fix="fix ~/.ssh/config"
        ) from None
    if "proxycommand" in entry:
        return  # reached through a command: only the real connection can tell
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise unreachable_error(endpoint, host, port, exc) from None


def unreachable_error(
    endpoint: Endpoint, host: str, port: int, exc: BaseException
) -> EngineUnavailable:
    reason = (
        "timed out"
        if isinstance(exc, TimeoutError | socket.timeout)
        else (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
    )
    return EngineUnavailable(
        f"cannot reach {endpoint.label}: SSH to {host}:{port} failed ({reason})",
        fix=f"check that the host is on and reachable (`ssh -p {port} {host}`), that sshd "
        "runs there, and DOCKER_HOST / the Docker context",
    )


def open_ssh(endpoint: Endpoint, timeout: float = SSH_CONNECT_TIMEOUT_S) -> Any:
    """A paramiko SSHClient logged into the endpoint's host as docker[ssh] would be.

    Same rules: ~/.ssh/config (HostName, Port, User, IdentityFile, ProxyCommand), keys from
    ~/.ssh and the agent, and only host keys already in ~/.ssh/known_hosts. Raises
    `EngineUnavailable` with the reason.
    """
    import paramiko

    host, port, user, entry = ssh_target(endpoint)
    client = paramiko.SSHClient()
    client.load_system_host_keys()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    options: dict[str, Any] = {"timeout": timeout, "banner_timeout": timeout}
    if "identityfile" in entry:
        options["key_filename"] = entry["identityfile"]
    if "proxycommand" in entry:
        options["sock"] = paramiko.ProxyCommand(entry["proxycommand"])
    try:
        client.connect(host, port, username=user or None, **options)
    except Exception as exc:
        client.close()
        names = {cls.__name__ for cls in type(exc).__mro__}
        raise _ssh_error(exc, names, str(exc), endpoint, probe=False) or EngineUnavailable(
            f"cannot log into {endpoint.label} over SSH: {_short(str(exc))}"
        ) from None
    return client


def probe_dial_stdio(endpoint: Endpoint, timeout: float = 5.0) -> str:
    """Run ``docker system dial-stdio`` on the host as docker[ssh] does; "" when it runs.

    Otherwise the reason, from its exit status and stderr (a shell without docker exits 127).
    """
    import time

    try:
        client = open_ssh(endpoint, timeout)
    except EngineUnavailable as exc:
        return exc.message
    try:
        transport = client.get_transport()
        if transport is None:
            return "the SSH connection closed at once"
        channel = transport.open_session(timeout=timeout)
        channel.exec_command("docker system dial-stdio")
        # A shell without docker answers in milliseconds; dial-stdio itself keeps waiting.
        deadline = time.monotonic() + min(timeout, 0.75)
        while not channel.exit_status_ready():
            if time.monotonic() > deadline:
                return ""  # still running: it waits for the API conversation
            time.sleep(0.02)
        status = channel.recv_exit_status()
        error = channel.makefile_stderr().read().decode("utf-8", "replace").strip()
        if status == 127 or "not found" in error or "No such file" in error:
            return f"the docker CLI is not on the host's PATH ({error or f'exit {status}'})"
        return f"`docker system dial-stdio` exited with {status}: {error or 'no message'}"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()


# --- what went wrong ---------------------------------------------------------------------


def explain_connection_error(
    exc: BaseException, endpoint: Endpoint | None = None
) -> EngineUnavailable:
    target = endpoint or resolve_endpoint()
    text = str(exc)
    names = {cls.__name__ for cls in type(exc).__mro__}
    if target.is_remote:
        where = target.label
    elif target.context not in ("", "default"):
        where = f"{target.url} (the Docker context {target.context!r})"
    else:
        where = _local_where(target)
    if target.transport == "ssh":
        ssh_error = _ssh_error(exc, names, text, target)
        if ssh_error is not None:
            return ssh_error
    if "SSLError" in names or "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text.split(":")[0]:
        return EngineUnavailable(
            f"the TLS connection to {where} failed: {_short(text)}",
            fix="check DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem from the engine's CA) and "
            "that the engine's certificate names this address; `docker --tlsverify version` "
            "shows the same error",
        )
    if "Permission denied" in text or "PermissionError" in text:
        return EngineUnavailable(
            f"permission denied talking to the Docker Engine at {where}",
            fix="add yourself to the docker group (`sudo usermod -aG docker $USER`, then log "
            "out and in), or point DOCKER_HOST at an engine you may use",
        )
    if "No such file" in text or "Connection refused" in text or "FileNotFoundError" in text:
        return EngineUnavailable(
            f"no Docker Engine answers at {where}",
            fix="start Docker (Docker Desktop with WSL integration on, or `sudo systemctl "
            "start docker`), or set DOCKER_HOST"
            if not target.is_remote
            else "check that Docker runs on that host and listens where DOCKER_HOST says",
        )
    if "timed out" in text.lower() or "Read timed out" in text:
        return EngineUnavailable(
            f"the Docker Engine at {where} did not answer in time",
            fix="check that Docker is running and not stuck (restart Docker Desktop)",
        )
    return EngineUnavailable(f"cannot use the Docker Engine at {where}: {_short(text)}")


def _local_where(endpoint: Endpoint) -> str:
    if endpoint.source == "default":
        return "the default socket (/var/run/docker.sock)"
    return endpoint.url


def _ssh_error(
    exc: BaseException, names: set[str], text: str, endpoint: Endpoint, *, probe: bool = True
) -> EngineUnavailable | None:
    label = endpoint.label
    try:
        host, port, user, _ = ssh_target(endpoint)
    except Exception:
        host, port, user = endpoint.hostname, endpoint.port or 22, endpoint.username
    login = f"{user + '@' if user else ''}{host}"
    if "BadHostKeyException" in names:
        return EngineUnavailable(
            f"the SSH host key of {label} ({host}:{port}) has CHANGED since it was saved in "
            "~/.ssh/known_hosts: this may be an attack, or the host was reinstalled",
            fix=f"check with the host's owner; if it was reinstalled, `ssh-keygen -R "
            f"'[{host}]:{port}'` and connect once with `ssh -p {port} {login}`",
        )
    if "not found in known_hosts" in text:
        return EngineUnavailable(
            f"the SSH host key of {label} ({host}:{port}) is not known, so llm-tui will not "
            "connect (it never accepts an unknown key)",
            fix=f"connect once with `ssh -p {port} {login}` and accept the key after checking "
            "its fingerprint (that adds it to ~/.ssh/known_hosts)",
        )
    if "AuthenticationException" in names or "Authentication failed" in text:
        return EngineUnavailable(
            f"SSH refused the login to {label} as {user or 'your user'}",
            fix=f"load your key (`ssh-add`) or install it there (`ssh-copy-id -p {port} "
            f"{login}`); llm-tui uses ~/.ssh keys and ~/.ssh/config like ssh",
        )
    talked = {"DockerException", "SSHException", "RequestException"} & names
    if "NoValidConnectionsError" in names or (not talked and isinstance(exc, OSError | EOFError)):
        return unreachable_error(endpoint, host, port, exc)
    if not probe:
        return None
    if talked:
        reason = probe_dial_stdio(endpoint)
        if reason:
            return EngineUnavailable(
                f"{label} accepts SSH but cannot run Docker there: {reason}",
                fix="install Docker on that host (its `docker` CLI must be on the PATH of "
                "non-interactive SSH logins: docker[ssh] runs `docker system dial-stdio`), "
                "and add your user to its docker group",
            )
        return EngineUnavailable(
            f"the Docker Engine on {label} did not answer over SSH: {_short(text)}",
            fix=f"check `ssh -p {port} {login} docker version` on this machine",
        )
    return None


def _short(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
