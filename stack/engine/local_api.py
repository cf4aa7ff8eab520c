"""Read-only Engine API calls on a local socket, without the Docker SDK.

`llm-tui status` (and the status line of scripts that poll it) needs two reads: the
stack's containers, inspected, and the engine's runtimes. Importing docker-py (requests,
urllib3) for them costs ~0.2 s, most of the command's time, against ~1 ms for the calls
themselves. On a ``unix://`` engine these reads go straight to the socket here: one
HTTP/1.0 request per connection (the engine answers and closes, so no chunked bodies),
unversioned paths (the engine's own API version; the fields read here have not moved in
years). Anything unexpected — no socket, no permission, an error status, a body that is
not JSON — raises `Unavailable`, and the caller takes the SDK path, whose errors say what
is wrong and how to fix it. Nothing here writes.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from stack.engine import plan as svc
from stack.engine.endpoint import Endpoint
from stack.engine.status import stack_members
from stack.settings import Settings

TIMEOUT_S = 10.0


class Unavailable(Exception):
    """This socket cannot answer the read (the SDK path then explains why)."""


@dataclass(frozen=True)
class ContainerView:
    """An inspected container: the attributes `status` reads, as docker-py names them."""

    attrs: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.attrs.get("Id", ""))

    @property
    def name(self) -> str:
        return str(self.attrs.get("Name", "")).lstrip("/")

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.attrs.get("Config") or {}).get("Labels") or {})

    @property
    def status(self) -> str:
        return str((self.attrs.get("State") or {}).get("Status", ""))


def socket_path(endpoint: Endpoint) -> str | None:
    """The socket of a ``unix://`` endpoint that can be used as it is (else None)."""
    if endpoint.transport != "unix" or endpoint.problem or "://" not in endpoint.url:
        return None
    return endpoint.url.split("://", 1)[1] or None


class LocalApi:
    def __init__(self, path: str, timeout: float = TIMEOUT_S) -> None:
        self.path = path
        self.timeout = timeout

    def get(self, target: str, *, missing_ok: bool = False) -> Any:
        """GET ``target`` (a path with its query) as JSON; None for a 404 when ``missing_ok``."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.path)
                sock.sendall(f"GET {target} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
                chunks = []
                while chunk := sock.recv(1 << 16):
                    chunks.append(chunk)
        except OSError as error:
            raise Unavailable(f"{self.path}: {error}") from None
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        try:
            code = int(head.split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise Unavailable(f"{self.path}: not an HTTP answer") from None
        if code == 404 and missing_ok:
            return None
        if code != 200:
            raise Unavailable(f"{self.path}: GET {target} answered {code}")
        try:
            return json.loads(body)
        except ValueError:
            raise Unavailable(f"{self.path}: GET {target} did not answer JSON") from None

    def containers(self, label: str) -> list[ContainerView]:
        """Every container (running or not) with ``label``, inspected; one removed between
        the listing and its inspect is simply gone, as docker-py's ``ignore_removed``."""
        filters = quote(json.dumps({"label": [label]}))
        listed = self.get(f"/containers/json?all=1&filters={filters}")
        found = []
        for summary in listed if isinstance(listed, list) else []:
            attrs = self.get(f"/containers/{summary['Id']}/json", missing_ok=True)
            if isinstance(attrs, dict):
                found.append(ContainerView(attrs))
        return found

    def runtimes(self) -> dict[str, Any]:
        info = self.get("/info")
        return dict(info.get("Runtimes") or {}) if isinstance(info, dict) else {}


def read_stack(
    endpoint: Endpoint, settings: Settings, nvidia: bool | None
) -> tuple[list[ContainerView], bool | None] | None:
    """The stack's containers (not a remote host's short-lived helpers) and whether the
    engine has the NVIDIA runtime (asked only for GPU=auto, once: ``nvidia`` is what was
    known); None when this socket cannot answer."""
    path = socket_path(endpoint)
    if path is None:
        return None
    api = LocalApi(path)
    try:
        if settings.gpu == "auto" and nvidia is None:
            nvidia = "nvidia" in api.runtimes()
        found = api.containers(f"{svc.LABEL_STACK}={settings.stack_name}")
    except Unavailable:
        return None
    return stack_members(found), nvidia
