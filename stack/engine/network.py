"""The stack's Docker network: made once, labelled as ours, removed only when it is ours."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.engine import plan as svc
from stack.engine.errors import EngineError, api_error_text

if TYPE_CHECKING:
    import docker


def ensure_network(client: docker.DockerClient, name: str) -> None:
    """The stack's bridge network, made (labelled) if missing; a foreign one is an error."""
    from docker.errors import APIError, NotFound

    try:
        network = client.networks.get(name)
    except NotFound:
        try:
            client.networks.create(
                name,
                driver="bridge",
                labels={svc.LABEL_STACK: name, svc.LABEL_ROLE: "network"},
            )
        except APIError as exc:
            raise EngineError(
                f"the Docker Engine could not create the network {name!r}: {api_error_text(exc)}",
                fix="free an address pool (`docker network prune` removes unused "
                "networks) or set STACK_NAME to another name",
            ) from None
        return
    if (network.attrs.get("Labels") or {}).get(svc.LABEL_STACK) != name:
        raise EngineError(
            f"a Docker network named {name!r} exists but was not created by llm-tui",
            fix="remove or rename it, or set STACK_NAME to another name",
        )


def remove_network(client: docker.DockerClient, name: str) -> None:
    """Remove the stack's network if it is ours; say which foreign containers keep it."""
    from docker.errors import APIError, NotFound

    try:
        network = client.networks.get(name)
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
