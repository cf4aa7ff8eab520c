"""Which running services the GPU sampler attributes memory and tokens/s to.

Built from `Engine.status()`: every running container of ours by id, and for each
llama-server the address its `/metrics` answers on from this host — its published port
(always on 127.0.0.1), else its address on the stack network (``address_of``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from stack.engine.gateway import INFERENCE_CONTAINER_PORT
from stack.engine.status import ServiceStatus
from stack.gpu.sampler import ServiceTarget

INFERENCE_ROLES = ("inference", "inference-code")


def published_url(status: ServiceStatus) -> str:
    """``http://127.0.0.1:8001`` from ``127.0.0.1:8001->8080/tcp``; "" when unpublished."""
    for binding in status.ports:
        host, _, container = binding.partition("->")
        if container.split("/")[0] == str(INFERENCE_CONTAINER_PORT):
            address, _, port = host.rpartition(":")
            if address in ("0.0.0.0", "", "::", "[::]"):
                address = "127.0.0.1"
            return f"http://{address}:{port}"
    return ""


def service_targets(
    statuses: Iterable[ServiceStatus], address_of: Callable[[str], str] | None = None
) -> list[ServiceTarget]:
    """Running services; ``address_of(role)`` gives an unpublished server's network IP."""
    targets = []
    for status in statuses:
        if status.state != "running" or not status.container_id:
            continue
        url = ""
        if status.role in INFERENCE_ROLES:
            url = published_url(status)
            if not url and address_of is not None:
                address = address_of(status.role)
                url = f"http://{address}:{INFERENCE_CONTAINER_PORT}" if address else ""
        targets.append(ServiceTarget(status.role, status.container_id, url))
    return targets
