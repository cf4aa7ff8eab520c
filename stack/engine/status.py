"""What `llm-tui status` shows for each container: state, health, model, ports, exit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from stack.engine import plan as svc


class Inspected(Protocol):
    """An inspected container: docker-py's, or `direct_api.ContainerView`."""

    @property
    def attrs(self) -> dict[str, Any]: ...
    @property
    def id(self) -> str | None: ...
    @property
    def name(self) -> str | None: ...
    @property
    def labels(self) -> dict[str, str]: ...


InspectedT = TypeVar("InspectedT", bound=Inspected)


def stack_members(found: Iterable[InspectedT]) -> list[InspectedT]:
    """The stack's own containers among ``found``: a remote host's short-lived helpers (a
    download running, a library scan) are not part of it, and `up`/`down` leave them alone."""
    return [c for c in found if (c.labels or {}).get(svc.LABEL_ROLE) != svc.HELPER]


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
    # .env keys changed since the container was made ("llm-tui": the plan itself changed);
    # empty when it is up to date. `up` recreates it.
    drift: tuple[str, ...] = ()

    @property
    def up_to_date(self) -> bool:
        return not self.drift

    def as_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["drift"] = list(self.drift)
        data["up_to_date"] = self.up_to_date
        return data


def status_of(role: str, container: Inspected, now: datetime) -> ServiceStatus:
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


def stack_status(
    specs: Sequence[svc.ServiceSpec], containers: Sequence[Inspected], now: datetime
) -> list[ServiceStatus]:
    """A row per planned service (its container, or "missing"), then one per container of
    ours the plan no longer has; each says which `.env` keys changed since it was made."""
    by_name = {c.name: c for c in containers}
    planned = {spec.name: spec for spec in specs}
    names = [(spec.role, spec.name) for spec in planned.values()]
    names += [
        (c.labels.get(svc.LABEL_ROLE, "?"), name or "")
        for name, c in by_name.items()
        if name not in planned
    ]
    result = []
    for role, name in names:
        container = by_name.get(name)
        if container is None:
            result.append(ServiceStatus(role, name, "missing", ""))
            continue
        spec = planned.get(name)
        drift = (
            svc.drifted_keys(spec, container.labels or {})
            if spec is not None
            else ("no longer in .env",)
        )
        result.append(replace(status_of(role, container, now), drift=drift))
    return result
