"""Which Docker Engine the user points at, and whether it runs on another machine.

Resolved the way the docker CLI does it: ``--context NAME`` (the CLI sets
``LLM_TUI_CONTEXT``), else ``DOCKER_HOST``, else ``DOCKER_CONTEXT``, else the current
context in ``~/.docker/config.json`` (``$DOCKER_CONFIG`` moves it), else the default
socket. Pure standard library (a few small JSON files are read): settings use it to decide
whether models live on this machine, before any Docker module is imported.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# Set by `llm-tui --context NAME` for everything this process (and its children) connects to.
CONTEXT_VARIABLE = "LLM_TUI_CONTEXT"
DEFAULT_HOST = "unix:///var/run/docker.sock"
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


@dataclass(frozen=True)
class Endpoint:
    """One Docker Engine address and where it came from."""

    url: str  # unix:///…, npipe:…, tcp://host:port, ssh://user@host:port
    source: str  # "--context", "DOCKER_HOST", "DOCKER_CONTEXT", "current context", "default"
    context: str = ""  # the context's name when it came from one
    tls: bool = False  # TLS to a tcp:// engine (DOCKER_TLS_VERIFY, or a context's TLS files)
    problem: str = ""  # a context that was named but cannot be read
    tls_dir: str = ""  # a context's ca.pem / cert.pem / key.pem
    skip_tls_verify: bool = False

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower() if "://" in self.url else "unix"

    @property
    def transport(self) -> str:
        """unix | npipe | ssh | tls | tcp."""
        scheme = self.scheme
        if scheme in ("unix", "npipe", "ssh"):
            return scheme
        if scheme in ("tcp", "http", "https"):
            return "tls" if self.tls or scheme == "https" else "tcp"
        return scheme

    @property
    def hostname(self) -> str:
        if self.transport in ("unix", "npipe"):
            return ""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int | None:
        if self.transport in ("unix", "npipe"):
            return None
        try:
            return urlsplit(self.url).port
        except ValueError:
            return None

    @property
    def username(self) -> str:
        return urlsplit(self.url).username or "" if self.transport == "ssh" else ""

    @property
    def is_remote(self) -> bool:
        """On another machine: ssh:// or tcp:// to an address that is not this machine's."""
        if self.transport in ("unix", "npipe"):
            return False
        return not is_loopback_host(self.hostname)

    @property
    def name(self) -> str:
        """What the user calls it: the context's name, else the host's."""
        if self.context and self.context != "default":
            return self.context
        return self.hostname or "local engine"

    @property
    def label(self) -> str:
        """One line for the dashboard: "gpu-box over ssh", "local engine"."""
        if self.transport in ("unix", "npipe"):
            return (
                f"{self.context} (local)"
                if self.context not in ("", "default")
                else ("local engine")
            )
        return f"{self.name} over {self.transport}"


def is_loopback_host(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def docker_config_dir(environ: Mapping[str, str]) -> Path:
    configured = environ.get("DOCKER_CONFIG")
    if configured:
        return Path(configured).expanduser()
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".docker"


def context_dir(environ: Mapping[str, str], name: str) -> tuple[Path, Path]:
    """A context's meta folder and TLS folder (named by the sha256 of its name)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    base = docker_config_dir(environ) / "contexts"
    return base / "meta" / digest, base / "tls" / digest / "docker"


def current_context(environ: Mapping[str, str]) -> str:
    try:
        data = json.loads((docker_config_dir(environ) / "config.json").read_text())
    except (OSError, ValueError):
        return "default"
    name = data.get("currentContext") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else "default"


def read_context(environ: Mapping[str, str], name: str, source: str) -> Endpoint:
    """The endpoint a named context holds; ``problem`` says why when it cannot be read."""
    if name == "default":
        return Endpoint(DEFAULT_HOST, source, context="default")
    meta_dir, tls_dir = context_dir(environ, name)
    try:
        meta = json.loads((meta_dir / "meta.json").read_text())
        docker = meta["Endpoints"]["docker"]
        host = str(docker["Host"])
    except FileNotFoundError:
        return Endpoint(DEFAULT_HOST, source, context=name, problem="no such context")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Endpoint(DEFAULT_HOST, source, context=name, problem=f"unreadable ({exc})")
    tls = (tls_dir / "ca.pem").exists() or (tls_dir / "cert.pem").exists()
    return Endpoint(
        host,
        source,
        context=name,
        tls=tls,
        tls_dir=str(tls_dir) if tls else "",
        skip_tls_verify=bool(docker.get("SkipTLSVerify", False)),
    )


def resolve_endpoint(environ: Mapping[str, str] | None = None) -> Endpoint:
    """The engine this process would connect to (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    chosen = env.get(CONTEXT_VARIABLE)
    if chosen:
        return read_context(env, chosen, "--context")
    host = env.get("DOCKER_HOST")
    if host:
        return Endpoint(host, "DOCKER_HOST", tls=bool(env.get("DOCKER_TLS_VERIFY")))
    named = env.get("DOCKER_CONTEXT")
    if named:
        return read_context(env, named, "DOCKER_CONTEXT")
    current = current_context(env)
    if current != "default":
        return read_context(env, current, "current context")
    return Endpoint(DEFAULT_HOST, "default")


def engine_is_remote(remote_engine: str, environ: Mapping[str, str] | None = None) -> bool:
    """REMOTE_ENGINE: true, false, or auto (the endpoint is on another machine)."""
    if remote_engine in ("true", "false"):
        return remote_engine == "true"
    return resolve_endpoint(environ).is_remote
