"""The stack engine: runs the planned containers through the Docker SDK.

Every object we create carries `llm-tui.stack=<STACK_NAME>`; anything without that label
is never stopped, removed or reused, and a name clash with one is an error that names it.
Blocking calls throughout: the TUI runs them in thread workers, the CLI directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from stack.cancel import CancelToken
from stack.engine import plan as svc
from stack.engine.connection import client_is_alive, connect, endpoint_of
from stack.engine.containers import check_ports_free, create_and_start, remove_container
from stack.engine.errors import (
    EngineError,
    explain_api_error,
    foreign_container_error,
)
from stack.engine.events import EventStream, StackEvent, open_events
from stack.engine.forward import KeptForward
from stack.engine.gateway import write_config
from stack.engine.health import (
    GATEWAY_TIMEOUT_S,
    gateway_base,
    inference_url,
    wait_until_engine_says_healthy,
    wait_until_healthy,
)
from stack.engine.network import ensure_network
from stack.engine.network import remove_network as remove_stack_network
from stack.engine.plan import ServiceSpec, plan_services
from stack.engine.pull import ensure_image
from stack.engine.status import ServiceStatus, stack_members, stack_status
from stack.engine.swap import swap_model
from stack.settings import Settings

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

    from stack.engine.direct_api import ContainerView, DirectApi
    from stack.engine.endpoint import Endpoint
    from stack.engine.errors import ModelProblem
    from stack.engine.forward import GatewayForward
    from stack.engine.remote_models import RemoteModels

Progress = Callable[[str], None]

__all__ = ["Engine", "EventStream", "ServiceStatus", "StackEvent", "UpResult"]

# What users may type for a service (`llm-tui logs chat`, `restart gateway`).
ROLE_ALIASES = {"chat": svc.INFERENCE, "code": svc.INFERENCE_CODE, "gateway": svc.GATEWAY}


@dataclass(frozen=True)
class UpResult:
    created: tuple[str, ...]
    kept: tuple[str, ...]
    recreated: tuple[str, ...]


def _noop(_: str) -> None:
    return None


class Engine:
    """Operations on one stack. ``client`` may be injected (tests, a shared client).

    On a remote engine (``settings.engine_remote``: ssh://, tcp:// with TLS, a context) the
    models live on its host, the gateway's config is put into its container, health comes
    from the engine's healthchecks, and with ``forward`` (the dashboard) the gateway is
    kept reachable here through an SSH forward while the stack runs. A dropped SSH
    connection is replaced on the next call.
    """

    def __init__(
        self,
        settings: Settings,
        client: docker.DockerClient | None = None,
        *,
        forward: bool = False,
        direct: DirectApi | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self._nvidia: bool | None = None
        # status's reads without the SDK (direct_api), made here or handed over started
        self._direct = direct
        self._forward_wanted = forward
        self._kept = KeptForward()

    # --- connection --------------------------------------------------------------------

    @property
    def client(self) -> docker.DockerClient:
        if self._client is not None and not client_is_alive(self._client):
            # docker[ssh] never reconnects a dropped SSH connection: a new client does.
            endpoint = endpoint_of(self._client)
            self._close_client()
            self._client = connect(endpoint=endpoint)
        if self._client is None:
            self._client = connect()
        return self._client

    @property
    def remote(self) -> bool:
        return self.settings.engine_remote

    @property
    def endpoint(self) -> Endpoint:
        from stack.engine.endpoint import resolve_endpoint

        return endpoint_of(self._client) if self._client is not None else resolve_endpoint()

    @property
    def host_label(self) -> str:
        """The remote host, for messages ("gpu-box over ssh"); "" for a local engine."""
        return self.endpoint.label if self.remote else ""

    def models(self) -> RemoteModels:
        """The models on the remote host."""
        from stack.engine.remote_models import RemoteModels

        return RemoteModels(self.client, self.settings)

    def model_problem(self, model: str) -> ModelProblem | None:
        """Why ``model`` cannot be served, checked where the models live."""
        from stack.engine.remote_models import model_problems

        return model_problems(self.settings, [model], self.client if self.remote else None)[model]

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # its connection is gone already
                client.close()

    def close(self) -> None:
        self.close_forward()
        self._close_direct()
        self._close_client()

    # --- reaching the gateway ----------------------------------------------------------

    def ensure_forward(self) -> GatewayForward | None:
        """Keep the gateway reachable here (remote ssh engine, loopback BIND_ADDRESS)."""
        return self._kept.ensure(self.settings, self.endpoint)

    @property
    def forward_problem(self) -> str:
        """Why the gateway forward is not open, when it is not."""
        return self._kept.problem

    def close_forward(self) -> None:
        self._kept.close()

    def has_nvidia_runtime(self) -> bool:
        """Asked once per engine: `status` plans on every poll and runtimes rarely change."""
        if self._nvidia is None:
            runtimes = self.client.info().get("Runtimes") or {}
            self._nvidia = "nvidia" in runtimes
        return self._nvidia

    def plan(self) -> list[ServiceSpec]:
        nvidia = self.settings.gpu == "auto" and self.has_nvidia_runtime()
        return plan_services(self.settings, engine_has_nvidia=nvidia)

    # --- lookups -----------------------------------------------------------------------

    def _ours(self, container: Container) -> bool:
        labels = container.labels or {}
        return labels.get(svc.LABEL_STACK) == self.settings.stack_name

    def find(self, name: str) -> Container | None:
        """The container named ``name``, ours or not (None when there is none)."""
        from docker.errors import NotFound

        try:
            return self.client.containers.get(name)
        except NotFound:
            return None

    def find_ours(self, name: str) -> Container | None:
        """The container named ``name`` if it is ours; someone else's is an error."""
        container = self.find(name)
        if container is not None and not self._ours(container):
            raise foreign_container_error(name, self.settings.stack_name)
        return container

    def _our_containers(self) -> list[Container]:
        """The stack's containers (`stack_members`: not a remote host's helpers)."""
        label = f"{svc.LABEL_STACK}={self.settings.stack_name}"
        # ignore_removed: one removed between the listing and its inspect (a helper that
        # finished, a `down` running) is simply gone, not an error.
        found = self.client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
        return stack_members(found)

    def _read_locally(self) -> list[ContainerView] | None:
        """`status`'s reads straight from the engine while no SDK client exists (a command
        line: no docker import), on a local socket or over the system ssh client; None
        when that does not apply or work (the SDK path then explains)."""
        if self._client is not None:
            self._close_direct()
            return None
        from stack.engine.direct_api import direct_api, read_stack

        if self._direct is None:
            self._direct = direct_api(self.endpoint)
            if self._direct is None:
                return None
        found = read_stack(self._direct, self.settings, self._nvidia)
        if found is None:
            self._close_direct()
            return None
        containers, self._nvidia = found
        return containers

    def _close_direct(self) -> None:
        direct, self._direct = self._direct, None
        if direct is not None:
            direct.close()

    # --- preconditions -----------------------------------------------------------------

    def ensure_master_key(self, progress: Progress = _noop) -> None:
        """A gateway without a key refuses to start (and should): make one, as a first run does.

        A hand-written `.env` may lack LITELLM_MASTER_KEY; it is generated and written there
        (the file is then made private), and ``self.settings`` is the new settings.
        """
        if self.settings.litellm_master_key:
            return
        from stack.settings import envfile, set_setting

        self.settings = set_setting(
            self.settings, "LITELLM_MASTER_KEY", envfile.generate_master_key()
        )
        progress(
            f"generated a LITELLM_MASTER_KEY in {self.settings.env_file.name} (the gateway's key; "
            "`llm-tui config get LITELLM_MASTER_KEY --show-secrets` shows it)"
        )

    def check_ready(self) -> None:
        """Refuse to start with invalid settings or unusable model files (where they live)."""
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
        wanted = [
            (key, model)
            for key, model in (
                ("CHAT_MODEL", settings.chat_model),
                ("CODE_MODEL", settings.code_model),
            )
            if model
        ]
        from stack.engine.remote_models import model_problems

        client = self.client if self.remote else None
        problems = model_problems(settings, [model for _, model in wanted], client)
        for key, model in wanted:
            problem = problems[model]
            if problem:
                raise EngineError(f"{key}={model}: {problem.message}", fix=problem.fix)

    def ensure_network(self) -> None:
        ensure_network(self.client, self.settings.stack_name)

    def ensure_image(
        self, image: str, progress: Progress = _noop, *, cancel: CancelToken | None = None
    ) -> None:
        """Pull ``image`` if it is missing, reporting per-layer progress."""
        ensure_image(self.client, image, progress, cancel=cancel)

    # --- containers --------------------------------------------------------------------

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
        self.ensure_master_key(progress)
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
                remove_container(container)
        self.ensure_network()
        for spec in specs:
            existing = self.find_ours(spec.name)
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
                remove_container(existing)
                recreated.append(spec.name)
            else:
                created.append(spec.name)
            self.ensure_image(spec.image, progress, cancel=cancel)
            self.check_ports(spec)
            progress(f"starting {spec.name}")
            self.create(spec)
        if wait:
            for spec in specs:
                self.wait_ready(spec, progress=progress, timeout=timeout, cancel=cancel)
        return UpResult(tuple(created), tuple(kept), tuple(recreated))

    def check_ports(self, spec: ServiceSpec) -> None:
        """Ports this machine would publish must be free (a remote engine checks its own)."""
        if not self.remote:
            check_ports_free(spec)

    def create(self, spec: ServiceSpec) -> Container:
        return create_and_start(self.client, spec, self.settings.stack_name, self.host_label)

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
            remove_container(container)
            removed.append(container.name or "")
        if remove_network:
            remove_stack_network(self.client, self.settings.stack_name)
        return removed

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
        container = self.find_ours(spec.name)
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
        timeout = float(self.settings.load_timeout) if timeout is None else timeout
        if self.remote:
            if spec.role == svc.GATEWAY:
                timeout = min(timeout, GATEWAY_TIMEOUT_S)
            wait_until_engine_says_healthy(
                spec, find=self.find, timeout=timeout, progress=progress, cancel=cancel
            )
            return
        if spec.role == svc.GATEWAY:
            url = gateway_base(self.settings) + "/health/liveliness"
            timeout = min(timeout, GATEWAY_TIMEOUT_S)
        else:
            url = inference_url(self.settings, spec, self.find(spec.name)) + "/health"
        wait_until_healthy(
            spec, url, find=self.find, timeout=timeout, progress=progress, cancel=cancel
        )

    # --- status ------------------------------------------------------------------------

    def status(self) -> list[ServiceStatus]:
        if self._forward_wanted:
            self.ensure_forward()
        local = self._read_locally()
        containers = self._our_containers() if local is None else local
        return stack_status(self.plan(), containers, datetime.now(UTC))

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
        swap_model(self, model, role, wait=wait, progress=progress, timeout=timeout, cancel=cancel)

    # --- logs --------------------------------------------------------------------------

    def container_for(self, role: str) -> Container:
        role = ROLE_ALIASES.get(role, role)
        if role not in svc.ROLES:
            raise EngineError(
                f"unknown service {role!r}", fix="use inference, inference-code or api-gateway"
            )
        name = f"{self.settings.stack_name}-{role}"
        container = self.find_ours(name)
        if container is None:
            raise EngineError(f"{name} does not exist", fix="start the stack (`llm-tui up`)")
        return container

    # --- events ------------------------------------------------------------------------

    def events(self, *, since: datetime | None = None) -> EventStream:
        """Our containers' events (start, die with exit code, oom, health changes)."""
        return open_events(self.client, self.settings.stack_name, since)
