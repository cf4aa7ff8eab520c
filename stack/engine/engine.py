"""The stack engine: runs the planned containers through the Docker SDK.

Every object we create carries `llm-tui.stack=<STACK_NAME>`; anything without that label
is never stopped, removed or reused, and a name clash with one is an error that names it.
Blocking calls throughout: the TUI runs them in thread workers, the CLI directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from stack.cancel import CancelToken
from stack.engine import plan as svc
from stack.engine.connection import connect
from stack.engine.containers import check_ports_free, create_and_start, remove_container
from stack.engine.errors import (
    EngineError,
    api_error_text,
    explain_api_error,
    foreign_container_error,
    model_problem,
)
from stack.engine.events import EventStream, StackEvent
from stack.engine.gateway import write_config
from stack.engine.health import (
    GATEWAY_TIMEOUT_S,
    gateway_base,
    inference_url,
    wait_until_healthy,
)
from stack.engine.plan import ServiceSpec, plan_services
from stack.engine.pull import ensure_image
from stack.engine.status import ServiceStatus, status_of
from stack.engine.swap import swap_model
from stack.settings import Settings

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

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
    """Operations on one stack. ``client`` may be injected (tests, a shared client)."""

    def __init__(self, settings: Settings, client: docker.DockerClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self._nvidia: bool | None = None

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
            check_ports_free(spec)
            progress(f"starting {spec.name}")
            create_and_start(self.client, spec, self.settings.stack_name)
        if wait:
            for spec in specs:
                self.wait_ready(spec, progress=progress, timeout=timeout, cancel=cancel)
        return UpResult(tuple(created), tuple(kept), tuple(recreated))

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
        now = datetime.now(UTC)
        by_name = {c.name: c for c in self._our_containers()}
        result = []
        specs = {spec.name: spec for spec in self.plan()}
        names = [(spec.role, spec.name) for spec in specs.values()]
        names += [
            (c.labels.get(svc.LABEL_ROLE, "?"), name or "")
            for name, c in by_name.items()
            if name not in specs
        ]
        for role, name in names:
            container = by_name.get(name)
            if container is None:
                result.append(ServiceStatus(role, name, "missing", ""))
                continue
            spec = specs.get(name)
            drift = (
                svc.drifted_keys(spec, container.labels or {})
                if spec is not None
                else ("no longer in .env",)
            )
            result.append(replace(status_of(role, container, now), drift=drift))
        return result

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
        stream = self.client.events(
            decode=True,
            since=since,
            filters={"type": "container", "label": f"{svc.LABEL_STACK}={self.settings.stack_name}"},
        )
        return EventStream(stream)
