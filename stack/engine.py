"""The stack engine: runs the planned containers through the Docker SDK.

Every object we create carries `llm-tui.stack=<STACK_NAME>`; anything without that label
is never stopped, removed or reused, and a name clash with one is an error that names it.
Blocking calls throughout: the TUI runs them in thread workers, the CLI directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stack import services as svc
from stack.cancel import CancelToken, closing_on_cancel
from stack.cancel import sleep as cancellable_sleep
from stack.dockerhost import connect
from stack.engine_errors import (
    EngineError,
    api_error_text,
    explain_api_error,
    foreign_container_error,
    model_problem,
)
from stack.events import EventStream, StackEvent
from stack.gateway import INFERENCE_CONTAINER_PORT, write_config
from stack.services import ServiceSpec, host_for, plan_services
from stack.settings import Settings

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

Progress = Callable[[str], None]

__all__ = ["Engine", "EventStream", "ServiceStatus", "StackEvent", "UpResult"]

# What users may type for a service (`llm-tui logs chat`, `restart gateway`).
ROLE_ALIASES = {"chat": svc.INFERENCE, "code": svc.INFERENCE_CODE, "gateway": svc.GATEWAY}

HEALTH_POLL_S = 0.1
PULL_PROGRESS_INTERVAL_S = 0.5
GATEWAY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ServiceStatus:
    role: str
    name: str
    state: str  # running | exited | created | missing | ...
    health: str  # healthy | starting | unhealthy | "" when none
    image: str = ""
    model: str = ""
    ports: tuple[str, ...] = ()
    gpu: bool = False
    started_at: str = ""
    uptime_s: float | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    container_id: str = ""
    settings_hash: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class PullSummary:
    """Per-layer pull events folded into one line: bytes and layers done so far."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.layers: dict[str, tuple[int, int]] = {}  # id -> (current, total) bytes
        self.done: set[str] = set()

    def update(self, event: dict[str, Any]) -> None:
        layer = str(event.get("id", ""))
        status = str(event.get("status", ""))
        if not layer or layer == self.image.rpartition(":")[2]:
            return
        detail = event.get("progressDetail") or {}
        if status == "Downloading" and detail.get("total"):
            self.layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
        elif status in ("Download complete", "Pull complete", "Already exists"):
            self.done.add(layer)
            _, total = self.layers.get(layer, (0, 0))
            self.layers[layer] = (total, total)
        else:
            self.layers.setdefault(layer, (0, 0))

    def line(self) -> str:
        current = sum(c for c, _ in self.layers.values())
        total = sum(t for _, t in self.layers.values())
        size = f"{current / 1e9:.2f}/{total / 1e9:.2f} GB, " if total else ""
        return f"pulling {self.image}: {size}{len(self.done)}/{len(self.layers)} layers"


@dataclass(frozen=True)
class UpResult:
    created: tuple[str, ...]
    kept: tuple[str, ...]
    recreated: tuple[str, ...]


def _noop(_: str) -> None:
    return None


def _pull_stream(api: Any, repository: str, tag: str) -> tuple[Iterator[dict[str, Any]], Any]:
    """`APIClient.pull(stream=True, decode=True)`, plus a function that aborts it.

    The SDK's generator cannot be stopped from another thread; shutting the response's
    socket down can, so cancelling a pull (quitting the TUI) never waits for the registry.
    """
    import contextlib
    import socket

    from docker import auth

    registry, _ = auth.resolve_repository_name(repository)
    headers = {}
    header = auth.get_config_header(api, registry)
    if header:
        headers["X-Registry-Auth"] = header
    response = api._post(
        api._url("/images/create"),
        params={"tag": tag, "fromImage": repository},
        headers=headers,
        stream=True,
        timeout=None,
    )
    api._raise_for_status(response)

    def close() -> None:
        with contextlib.suppress(Exception):
            sock = api._get_raw_response_socket(response)
            getattr(sock, "_sock", sock).shutdown(socket.SHUT_RDWR)
        response.close()

    return api._stream_helper(response, decode=True), close


class Engine:
    """Operations on one stack. ``client`` may be injected (tests, a shared client)."""

    def __init__(self, settings: Settings, client: docker.DockerClient | None = None) -> None:
        self.settings = settings
        self._client = client

    # --- connection --------------------------------------------------------------------

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def has_nvidia_runtime(self) -> bool:
        runtimes = self.client.info().get("Runtimes") or {}
        return "nvidia" in runtimes

    def plan(self) -> list[ServiceSpec]:
        nvidia = self.settings.gpu == "auto" and self.has_nvidia_runtime()
        return plan_services(self.settings, engine_has_nvidia=nvidia)

    # --- lookups -----------------------------------------------------------------------

    def _ours(self, container: Container) -> bool:
        labels = container.labels or {}
        return labels.get(svc.LABEL_STACK) == self.settings.stack_name

    def _find(self, name: str) -> Container | None:
        from docker.errors import NotFound

        try:
            return self.client.containers.get(name)
        except NotFound:
            return None

    def _find_ours(self, name: str) -> Container | None:
        container = self._find(name)
        if container is not None and not self._ours(container):
            raise foreign_container_error(name, self.settings.stack_name)
        return container

    def _our_containers(self) -> list[Container]:
        label = f"{svc.LABEL_STACK}={self.settings.stack_name}"
        return list(self.client.containers.list(all=True, filters={"label": label}))

    # --- preconditions -----------------------------------------------------------------

    def check_ready(self) -> None:
        """Refuse to start with invalid settings or unusable model files."""
        settings = self.settings
        if settings.problems:
            raise EngineError(
                "invalid settings: " + "; ".join(str(p) for p in settings.problems[:3]),
                fix="run `llm-tui config check` and fix them",
            )
        if not settings.chat_model:
            raise EngineError(
                "no model chosen (CHAT_MODEL is empty)",
                fix="pick one in the Models screen or `llm-tui config set CHAT_MODEL FILE.gguf`",
            )
        for key, model in (
            ("CHAT_MODEL", settings.chat_model),
            ("CODE_MODEL", settings.code_model),
        ):
            if model:
                problem = model_problem(settings.models_dir, model)
                if problem:
                    raise EngineError(f"{key}={model}: {problem.message}", fix=problem.fix)

    def ensure_network(self) -> None:
        from docker.errors import APIError, NotFound

        name = self.settings.stack_name
        try:
            network = self.client.networks.get(name)
        except NotFound:
            try:
                self.client.networks.create(
                    name,
                    driver="bridge",
                    labels={svc.LABEL_STACK: name, svc.LABEL_ROLE: "network"},
                )
            except APIError as exc:
                raise EngineError(
                    f"the Docker Engine could not create the network {name!r}: "
                    f"{api_error_text(exc)}",
                    fix="free an address pool (`docker network prune` removes unused "
                    "networks) or set STACK_NAME to another name",
                ) from None
            return
        if (network.attrs.get("Labels") or {}).get(svc.LABEL_STACK) != name:
            raise EngineError(
                f"a Docker network named {name!r} exists but was not created by llm-tui",
                fix="remove or rename it, or set STACK_NAME to another name",
            )

    def ensure_image(
        self, image: str, progress: Progress = _noop, *, cancel: CancelToken | None = None
    ) -> None:
        """Pull ``image`` if it is missing, reporting per-layer progress."""
        from docker.errors import APIError, ImageNotFound

        try:
            self.client.images.get(image)
            return
        except ImageNotFound:
            pass
        except APIError as exc:
            raise explain_api_error(exc, image=image) from None
        progress(f"pulling {image}")
        summary = PullSummary(image)
        last = 0.0
        for event in self.pull_events(image, cancel=cancel):
            summary.update(event)
            now = time.monotonic()
            if now - last >= PULL_PROGRESS_INTERVAL_S:
                progress(summary.line())
                last = now
        progress(summary.line())
        try:
            self.client.images.get(image)
        except (ImageNotFound, APIError) as exc:
            raise explain_api_error(exc, image=image) from None

    def pull_events(
        self, image: str, *, cancel: CancelToken | None = None
    ) -> Iterator[dict[str, Any]]:
        """The engine's pull events (one per layer update); errors become EngineError.

        Cancelling closes the pull's HTTP response, which unblocks the reading thread.
        """
        from docker.errors import APIError, DockerException

        repository, _, tag = image.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = image, ""
        try:
            stream, close = _pull_stream(self.client.api, repository, tag or "latest")
            with closing_on_cancel(cancel, close):
                for event in stream:
                    if cancel is not None:
                        cancel.check(f"pulling {image}")
                    if "error" in event:
                        raise EngineError(
                            f"cannot pull {image}: {event['error']}",
                            fix="check the network and the tag, or set a local image in .env",
                        )
                    yield event
        except (APIError, DockerException, OSError) as exc:
            if cancel is not None:
                cancel.check(f"pulling {image}")
            raise explain_api_error(exc, image=image) from None

    # --- containers --------------------------------------------------------------------

    def _create_and_start(self, spec: ServiceSpec) -> Container:
        from docker.errors import APIError
        from docker.types import DeviceRequest

        device_requests = None
        if spec.gpu is not None:
            device_requests = [
                DeviceRequest(
                    count=spec.gpu.count,
                    device_ids=list(spec.gpu.device_ids),
                    capabilities=[["gpu"]],
                )
            ]
        ports = {f"{cport}/tcp": (address, hport) for cport, address, hport in spec.ports}
        try:
            container = self.client.containers.create(
                spec.image,
                command=list(spec.command),
                name=spec.name,
                detach=True,
                labels=spec.labels(self.settings.stack_name),
                environment=spec.environment,
                volumes={
                    host: {"bind": inside, "mode": mode} for host, inside, mode in spec.mounts
                },
                ports=ports,
                network=self.settings.stack_name,
                init=True,
                healthcheck=spec.healthcheck,
                device_requests=device_requests,
            )
        except APIError as exc:
            raise explain_api_error(exc, image=spec.image, spec=spec) from None
        try:
            container.start()
        except APIError as exc:
            # A failed start (no GPU runtime, port taken) leaves it in `created`: remove it.
            container.remove(force=True)
            raise explain_api_error(exc, image=spec.image, spec=spec) from None
        return container

    @staticmethod
    def _remove(container: Container, timeout: int = 10) -> None:
        """Stop (SIGTERM; `init=True` makes it quick) then remove."""
        from docker.errors import APIError, NotFound

        try:
            container.reload()
            if container.status in ("running", "restarting", "paused"):
                container.stop(timeout=timeout)
            container.remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            raise EngineError(
                f"the Docker Engine could not remove {container.name}: {api_error_text(exc)}",
                fix=f"retry, or remove it yourself (`docker rm -f {container.name}`)",
            ) from None

    def up(
        self,
        *,
        wait: bool = True,
        progress: Progress = _noop,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> UpResult:
        """Create what is missing, recreate what changed, keep what matches. Idempotent."""
        from docker.errors import APIError

        self.check_ready()
        specs = self.plan()
        write_config(self.settings)
        planned_names = {spec.name for spec in specs}
        created: list[str] = []
        kept: list[str] = []
        recreated: list[str] = []
        # Containers of ours that the plan no longer has (e.g. CODE_MODEL cleared).
        for container in self._our_containers():
            if container.name not in planned_names:
                progress(f"removing {container.name} (no longer configured)")
                self._remove(container)
        self.ensure_network()
        for spec in specs:
            existing = self._find_ours(spec.name)
            if existing is not None:
                same = (existing.labels or {}).get(svc.LABEL_HASH) == spec.settings_hash
                if same and existing.status == "running":
                    kept.append(spec.name)
                    continue
                if same and existing.status in ("created", "exited"):
                    progress(f"starting {spec.name}")
                    try:
                        existing.start()
                    except APIError as exc:
                        raise explain_api_error(exc, image=spec.image, spec=spec) from None
                    kept.append(spec.name)
                    continue
                progress(f"recreating {spec.name} (settings changed)")
                self._remove(existing)
                recreated.append(spec.name)
            else:
                created.append(spec.name)
            self.ensure_image(spec.image, progress, cancel=cancel)
            self._check_ports_free(spec)
            progress(f"starting {spec.name}")
            self._create_and_start(spec)
        if wait:
            for spec in specs:
                self.wait_ready(spec, progress=progress, timeout=timeout, cancel=cancel)
        return UpResult(tuple(created), tuple(kept), tuple(recreated))

    def _check_ports_free(self, spec: ServiceSpec) -> None:
        from stack.doctor import port_is_free

        for _, address, port in spec.ports:
            if not port_is_free(address, port):
                key = "API_GATEWAY_PORT" if spec.role == svc.GATEWAY else "INFERENCE_PORT"
                raise EngineError(
                    f"port {port} on {address} is already in use by another program "
                    f"({key} for {spec.name})",
                    fix=f"stop that program (see `ss -ltnp | grep {port}`) or "
                    f"`llm-tui config set {key} <free port>`",
                )

    def down(
        self,
        *,
        remove_network: bool = False,
        progress: Progress = _noop,
        cancel: CancelToken | None = None,
    ) -> list[str]:
        """Stop and remove our containers (only ours). Returns their names."""
        removed = []
        for container in self._our_containers():
            if container.labels.get(svc.LABEL_ROLE) == "network":
                continue
            if cancel is not None:
                cancel.check("stopping the stack")
            progress(f"removing {container.name}")
            self._remove(container)
            removed.append(container.name or "")
        if remove_network:
            self._remove_network()
        return removed

    def _remove_network(self) -> None:
        from docker.errors import APIError, NotFound

        name = self.settings.stack_name
        try:
            network = self.client.networks.get(name)
            if (network.attrs.get("Labels") or {}).get(svc.LABEL_STACK) == name:
                network.remove()
        except NotFound:
            pass
        except APIError as exc:
            network.reload()
            attached = sorted(
                str(c.get("Name", "?")) for c in (network.attrs.get("Containers") or {}).values()
            )
            if attached:
                raise EngineError(
                    f"the network {name!r} was kept: containers that are not llm-tui's are "
                    f"still attached ({', '.join(attached)})",
                    fix="disconnect them (`docker network disconnect "
                    f"{name} <container>`) and run `llm-tui down --network` again",
                ) from None
            raise EngineError(
                f"the Docker Engine could not remove the network {name!r}: {api_error_text(exc)}",
                fix="retry, or remove it yourself (`docker network rm " + name + "`)",
            ) from None

    def restart(
        self,
        role: str,
        *,
        wait: bool = True,
        progress: Progress = _noop,
        cancel: CancelToken | None = None,
    ) -> None:
        from docker.errors import APIError

        spec = self._spec_for(role)
        container = self._find_ours(spec.name)
        if container is None:
            raise EngineError(f"{spec.name} is not running", fix="start the stack (`llm-tui up`)")
        progress(f"restarting {spec.name}")
        try:
            container.restart(timeout=10)
        except APIError as exc:
            raise explain_api_error(exc, image=spec.image, spec=spec) from None
        if wait:
            self.wait_ready(spec, progress=progress, cancel=cancel)

    def _spec_for(self, role: str) -> ServiceSpec:
        role = ROLE_ALIASES.get(role, role)
        for spec in self.plan():
            if spec.role == role:
                return spec
        known = ", ".join(s.role for s in self.plan())
        raise EngineError(f"no service {role!r} in this stack", fix=f"use one of: {known}")

    # --- health ------------------------------------------------------------------------

    def wait_ready(
        self,
        spec: ServiceSpec,
        *,
        progress: Progress = _noop,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Poll until the service answers; fail fast (with its last logs) if it dies.

        ``cancel`` stops the wait within one poll (a model load can take minutes).
        """
        import httpx

        timeout = float(self.settings.load_timeout) if timeout is None else timeout
        if spec.role == svc.GATEWAY:
            url = self.gateway_base() + "/health/liveliness"
            timeout = min(timeout, GATEWAY_TIMEOUT_S)
        else:
            url = self._inference_url(spec) + "/health"
        deadline = time.monotonic() + timeout
        last_state = ""
        with httpx.Client(timeout=2.0) as http, closing_on_cancel(cancel, http.close):
            while True:
                container = self._find(spec.name)
                if container is None:
                    raise EngineError(f"{spec.name} disappeared while starting")
                if container.status not in ("running", "created"):
                    raise self._died_error(container)
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

    def _inference_url(self, spec: ServiceSpec) -> str:
        """How the host reaches llama-server: its published port, else its network IP."""
        if spec.ports:
            _, address, port = spec.ports[0]
            return f"http://{host_for(address)}:{port}"
        container = self._find(spec.name)
        ip = ""
        if container is not None:
            networks = container.attrs.get("NetworkSettings", {}).get("Networks", {})
            ip = (networks.get(self.settings.stack_name) or {}).get("IPAddress", "")
        return f"http://{ip or spec.name}:{INFERENCE_CONTAINER_PORT}"

    def gateway_base(self) -> str:
        settings = self.settings
        return f"http://{host_for(settings.bind_address)}:{settings.api_gateway_port}"

    def _died_error(self, container: Container) -> EngineError:
        container.reload()
        state = container.attrs.get("State", {})
        code = state.get("ExitCode")
        oom = bool(state.get("OOMKilled"))
        tail = container.logs(tail=20).decode("utf-8", "replace").strip()
        reason = "it was killed for using too much memory (OOM)" if oom else f"exit code {code}"
        return EngineError(
            f"{container.name} stopped while starting: {reason}\n--- last log lines ---\n{tail}",
            fix="a smaller model, fewer GPU_LAYERS or a smaller CTX_SIZE may help"
            if oom
            else "check the model file and the log lines above",
        )

    # --- status ------------------------------------------------------------------------

    def status(self) -> list[ServiceStatus]:
        now = datetime.now(UTC)
        by_name = {c.name: c for c in self._our_containers()}
        result = []
        names = [(spec.role, spec.name) for spec in plan_services(self.settings)]
        planned = {name for _, name in names}
        names += [
            (c.labels.get(svc.LABEL_ROLE, "?"), name or "")
            for name, c in by_name.items()
            if name not in planned
        ]
        for role, name in names:
            container = by_name.get(name)
            if container is None:
                result.append(ServiceStatus(role, name, "missing", ""))
                continue
            result.append(self._status_of(role, container, now))
        return result

    @staticmethod
    def _status_of(role: str, container: Container, now: datetime) -> ServiceStatus:
        attrs = container.attrs
        state = attrs.get("State", {})
        host = attrs.get("HostConfig", {})
        started = state.get("StartedAt", "")
        uptime = None
        if state.get("Running") and started:
            started_at = datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
            uptime = max(0.0, (now - started_at).total_seconds())
        ports = []
        for cport, bindings in (attrs.get("NetworkSettings", {}).get("Ports") or {}).items():
            for binding in bindings or []:
                ports.append(f"{binding.get('HostIp')}:{binding.get('HostPort')}->{cport}")
        running = state.get("Status") == "running"
        return ServiceStatus(
            role=role,
            name=container.name or "",
            state=state.get("Status", "unknown"),
            health=(state.get("Health") or {}).get("Status", ""),
            image=attrs.get("Config", {}).get("Image", ""),
            model=container.labels.get(svc.LABEL_MODEL, ""),
            ports=tuple(ports),
            gpu=bool(host.get("DeviceRequests")),
            started_at=started,
            uptime_s=uptime,
            exit_code=None if running else state.get("ExitCode"),
            oom_killed=bool(state.get("OOMKilled")),
            error=state.get("Error", ""),
            container_id=container.id or "",
            settings_hash=container.labels.get(svc.LABEL_HASH, ""),
        )

    # --- swap --------------------------------------------------------------------------

    def swap(
        self,
        model: str,
        role: str = "chat",
        *,
        wait: bool = True,
        progress: Progress = _noop,
        timeout: float | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Serve ``model``: recreate only that inference container; the gateway stays.

        On failure the previous model is put back (in .env and in the container).
        """
        from stack.settings import set_setting

        if role not in ("chat", "code"):
            raise EngineError(f"unknown role {role!r}", fix="use --role chat or --role code")
        key = "CHAT_MODEL" if role == "chat" else "CODE_MODEL"
        problem = model_problem(self.settings.models_dir, model)
        if problem:
            raise EngineError(f"cannot serve {model}: {problem.message}", fix=problem.fix)
        previous = self.settings.chat_model if role == "chat" else self.settings.code_model
        gateway_config_before = self._gateway_hash()
        self.settings = set_setting(self.settings, key, model)
        try:
            self._replace_inference(
                role, wait=wait, progress=progress, timeout=timeout, cancel=cancel
            )
        except EngineError as error:
            progress(f"{model} failed; putting {previous or 'nothing'} back")
            self.settings = set_setting(self.settings, key, previous)
            if previous:
                try:
                    self._replace_inference(role, wait=wait, progress=progress, timeout=timeout)
                except EngineError as again:
                    progress(f"restoring {previous} failed too: {again.message}")
            raise EngineError(
                f"could not serve {model}: {error.message}"
                + (f"\n{previous} is served again." if previous else ""),
                fix=error.fix,
            ) from None
        gateway = self._find(f"{self.settings.stack_name}-{svc.GATEWAY}")
        if (
            gateway is None
            or gateway.status != "running"
            or (self._gateway_hash() != gateway_config_before)
        ):
            # First start, or a new code container the gateway must route to.
            self.up(wait=wait, progress=progress, timeout=timeout, cancel=cancel)

    def _gateway_hash(self) -> str:
        return next(s.settings_hash for s in self.plan() if s.role == svc.GATEWAY)

    def _replace_inference(
        self,
        role: str,
        *,
        wait: bool,
        progress: Progress,
        timeout: float | None,
        cancel: CancelToken | None = None,
    ) -> None:
        spec = next(
            (
                s
                for s in self.plan()
                if s.role == (svc.INFERENCE if role == "chat" else svc.INFERENCE_CODE)
            ),
            None,
        )
        if spec is None:
            return  # CODE_MODEL equals CHAT_MODEL: the chat container serves both
        self.ensure_network()
        existing = self._find_ours(spec.name)
        if existing is not None:
            progress(f"stopping {spec.name}")
            self._remove(existing)
        self.ensure_image(spec.image, progress, cancel=cancel)
        self._check_ports_free(spec)
        progress(f"starting {spec.name} with {spec.model}")
        self._create_and_start(spec)
        if wait:
            self.wait_ready(spec, progress=progress, timeout=timeout, cancel=cancel)

    # --- logs --------------------------------------------------------------------------

    def container_for(self, role: str) -> Container:
        role = ROLE_ALIASES.get(role, role)
        if role not in svc.ROLES:
            raise EngineError(
                f"unknown service {role!r}", fix="use inference, inference-code or api-gateway"
            )
        name = f"{self.settings.stack_name}-{role}"
        container = self._find_ours(name)
        if container is None:
            raise EngineError(f"{name} does not exist", fix="start the stack (`llm-tui up`)")
        return container

    # --- events ------------------------------------------------------------------------

    def events(self, *, since: datetime | None = None) -> EventStream:
        """Our containers' events (start, die with exit code, oom, health changes)."""
        stream = self.client.events(
            decode=True,
            since=since,
            filters={"type": "container", "label": f"{svc.LABEL_STACK}={self.settings.stack_name}"},
        )
        return EventStream(stream)
