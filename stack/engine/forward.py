"""Reaching a remote engine's gateway from this machine: an SSH port forward, or its address.

With the engine on another machine and BIND_ADDRESS on loopback (the default), the gateway
listens on that host's 127.0.0.1 only. `GatewayForward` makes it appear on this machine's
``127.0.0.1:API_GATEWAY_PORT`` through the same SSH login docker[ssh] uses (paramiko's
``direct-tcpip``, like ``ssh -L``), so IDEs keep using ``http://127.0.0.1:8000/v1`` and
the chat pane takes the same path. It reconnects by itself when the SSH link drops; a
connection accepted meanwhile is refused, never left hanging. With BIND_ADDRESS on the
LAN the gateway is reached at the host's address instead; `gateway_route` says which.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass
from typing import Any

from stack.engine.connection import EngineUnavailable, open_ssh
from stack.engine.endpoint import Endpoint, resolve_endpoint
from stack.engine.errors import EngineError
from stack.errors import LlmTuiError
from stack.settings import Settings, is_loopback

CHUNK = 64 * 1024


@dataclass(frozen=True)
class GatewayRoute:
    """How this machine reaches the gateway."""

    kind: str  # local | ssh-forward | host | none
    url: str  # the OpenAI base URL (…/v1) IDEs use
    detail: str  # one line for Connect, the dashboard and `status`


def gateway_route(settings: Settings, endpoint: Endpoint | None = None) -> GatewayRoute:
    url = settings.gateway_url
    if not settings.engine_remote:
        return GatewayRoute("local", url, "published on this machine")
    target = endpoint or resolve_endpoint()
    if not is_loopback(settings.bind_address):
        return GatewayRoute(
            "host", url, f"published on {target.name}'s network ({settings.bind_address})"
        )
    if target.transport == "ssh":
        return GatewayRoute(
            "ssh-forward",
            url,
            f"through an SSH forward to {target.name} (open while llm-tui runs; "
            "`llm-tui forward` keeps it open for IDEs)",
        )
    return GatewayRoute(
        "none",
        url,
        f"unreachable from here: the gateway listens on {target.name}'s loopback and a "
        f"{target.transport} engine has no SSH to forward it; set BIND_ADDRESS=0.0.0.0 "
        "(LAN, key required) or use an ssh:// engine",
    )


def remote_summary(settings: Settings, endpoint: Endpoint | None = None) -> tuple[str, str]:
    """(engine, gateway) lines for a remote engine: "gpu-box over ssh · models in …"."""
    from stack.engine.helper import models_place

    target = endpoint or resolve_endpoint()
    route = gateway_route(settings, target)
    engine = f"{target.label} · models in {models_place(settings, target)}"
    via = {"ssh-forward": "SSH forward", "host": f"{target.name}'s network"}.get(route.kind)
    gateway = f"{route.url} (via {via})" if via else f"{route.url} ({route.detail})"
    return engine, gateway


class KeptForward:
    """The gateway forward an app keeps while it runs (the dashboard, `Engine(forward=True)`).

    Opened on first need and again after it failed; `problem` says why it is not open.
    """

    def __init__(self) -> None:
        self._forward: GatewayForward | None = None
        self.problem = ""

    def ensure(self, settings: Settings, endpoint: Endpoint) -> GatewayForward | None:
        if gateway_route(settings, endpoint).kind != "ssh-forward":
            return None
        forward = self._forward
        if forward is not None and forward.running:
            self.problem = forward.problem
            return forward
        try:
            forward = GatewayForward(endpoint, settings.api_gateway_port).start()
        except LlmTuiError as error:
            self.problem = error.message
            return None
        self._forward, self.problem = forward, ""
        return forward

    def close(self) -> None:
        forward, self._forward = self._forward, None
        if forward is not None:
            forward.close()


class GatewayForward:
    """``local_host:local_port`` here → ``127.0.0.1:remote_port`` on the engine's host."""

    def __init__(
        self,
        endpoint: Endpoint,
        remote_port: int,
        local_port: int | None = None,
        *,
        local_host: str = "127.0.0.1",
    ) -> None:
        self.endpoint = endpoint
        self.remote_port = remote_port
        self.local_port = remote_port if local_port is None else local_port
        self.local_host = local_host
        self.problem = ""  # the last reason a connection could not be forwarded
        self._ssh: Any = None
        self._listener: socket.socket | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[Any] = set()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def connected(self) -> bool:
        transport = self._ssh.get_transport() if self._ssh is not None else None
        return transport is not None and transport.is_active()

    def start(self) -> GatewayForward:
        """Listen here and log in there; raises `EngineError` when either fails."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.local_host, self.local_port))
        except OSError as exc:
            listener.close()
            raise EngineError(
                f"cannot forward the gateway of {self.endpoint.label}: port {self.local_port} "
                f"on {self.local_host} is in use here ({exc.strerror or exc})",
                fix=f"stop what uses it (`ss -ltnp | grep {self.local_port}`) or "
                "`llm-tui config set API_GATEWAY_PORT <free port>`",
            ) from None
        listener.listen(64)
        self.local_port = listener.getsockname()[1]
        try:
            self._connect()
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, name="gateway-forward", daemon=True)
        self._thread.start()
        return self

    def _connect(self) -> Any:
        with self._lock:
            if self.connected:
                return self._ssh.get_transport()
            if self._ssh is not None:
                with contextlib.suppress(Exception):
                    self._ssh.close()
                self._ssh = None
            self._ssh = open_ssh(self.endpoint)
            transport = self._ssh.get_transport()
            transport.set_keepalive(15)  # a dead link is noticed, and NATs keep it
            return transport

    def _accept(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._closed.is_set():
            try:
                conn, peer = listener.accept()
            except OSError:
                return  # closed
            threading.Thread(
                target=self._serve, args=(conn, peer), name="gateway-forward-conn", daemon=True
            ).start()

    def _open_channel(self, peer: Any) -> Any:
        from paramiko import ChannelException, SSHException

        for attempt in (1, 2):
            try:
                transport = self._connect()
                return transport.open_channel(
                    "direct-tcpip", ("127.0.0.1", self.remote_port), peer, timeout=10
                )
            except ChannelException as exc:
                self.problem = (
                    f"{self.endpoint.name} refused to forward port {self.remote_port} "
                    f"({exc}): its sshd (AllowTcpForwarding) or the key's options forbid it"
                    if "prohibited" in str(exc).lower()
                    else f"nothing answers on {self.endpoint.name}'s 127.0.0.1:"
                    f"{self.remote_port} ({exc}): is the stack up?"
                )
                return None
            except (SSHException, EngineUnavailable, OSError, EOFError) as exc:
                self.problem = f"the SSH link to {self.endpoint.name} dropped: {exc}"
                with self._lock:
                    if self._ssh is not None:
                        with contextlib.suppress(Exception):
                            self._ssh.close()
                        self._ssh = None
                if attempt == 2 or self._closed.is_set():
                    return None
        return None

    def _serve(self, conn: socket.socket, peer: Any) -> None:
        channel = self._open_channel(peer)
        if channel is None:
            conn.close()
            return
        self.problem = ""
        with self._lock:
            self._sockets.update((conn, channel))
        try:
            _pump(conn, channel, self._closed)
        finally:
            with self._lock:
                self._sockets.discard(conn)
                self._sockets.discard(channel)
            with contextlib.suppress(Exception):
                channel.close()
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self._closed.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
            ssh, self._ssh = self._ssh, None
        for item in sockets:
            with contextlib.suppress(Exception):
                item.close()
        if ssh is not None:
            with contextlib.suppress(Exception):
                ssh.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> GatewayForward:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pump(conn: socket.socket, channel: Any, closed: threading.Event) -> None:
    """Copy both ways until either side closes (half-closes are passed on)."""
    open_ends = {conn, channel}
    while open_ends and not closed.is_set():
        ready, _, _ = select.select(list(open_ends), [], [], 1.0)
        for end in ready:
            try:
                data = end.recv(CHUNK)
            except OSError:
                return
            if not data:
                open_ends.discard(end)
                with contextlib.suppress(OSError, EOFError):
                    if end is conn:
                        channel.shutdown_write()
                    else:
                        conn.shutdown(socket.SHUT_WR)
                if channel.closed:
                    return
                continue
            try:
                (channel if end is conn else conn).sendall(data)
            except OSError:
                return
        if channel.closed and not channel.recv_ready():
            return
