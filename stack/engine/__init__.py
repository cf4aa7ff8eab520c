"""The engine: the stack's containers run through the Docker SDK.

    plan        settings -> `ServiceSpec`s (image, command, mounts, ports, GPU, labels), pure
    engine      `Engine`: up, down, restart, swap, status, logs, events for one stack
    containers  create/start/remove one container; ports checked first
    swap        serve another model, rolling back if it fails to load
    health      wait until a service answers; why one died while starting
    pull        image pulls with progress, stoppable from another thread
    status      `ServiceStatus`, what `llm-tui status` shows
    logs        container logs as clean lines, on every transport, resumed after a drop
    log_stream  the raw log bytes, read fast where the transport allows it
    network     the stack's Docker network
    events      container events (start, die, oom, health)
    gateway     LiteLLM's config.yaml, generated from the settings
    compose     the same stack as a compose file
    connection  connecting to the engine (DOCKER_HOST, contexts), failures explained
    endpoint    which engine is meant, and whether it runs on another machine
    forward     reaching a remote engine's gateway: an SSH forward, or its address
    helper      short-lived helper containers on a remote engine's host
    on_host     the program those helpers run (downloads, library, checks, delete)
    remote_models  the models on a remote host: list, check, delete
    remote_gpu  the GPU readings of a remote host (nvidia-smi in its inference container)
    remote_checks  `doctor` for a remote engine: each step of reaching it
    errors      Docker failures as answers a user can act on

``from stack.engine import Engine`` is the entry point; the modules are the parts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stack.engine.engine import ROLE_ALIASES, Engine, UpResult
    from stack.engine.errors import EngineError
    from stack.engine.events import EventStream, StackEvent
    from stack.engine.status import ServiceStatus

# Loaded on first use: settings read `stack.engine.endpoint` on every load, and that must
# not pull in the whole engine.
_HOMES = {
    "ROLE_ALIASES": "stack.engine.engine",
    "Engine": "stack.engine.engine",
    "UpResult": "stack.engine.engine",
    "EngineError": "stack.engine.errors",
    "EventStream": "stack.engine.events",
    "StackEvent": "stack.engine.events",
    "ServiceStatus": "stack.engine.status",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'stack.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


__all__ = [
    "ROLE_ALIASES",
    "Engine",
    "EngineError",
    "EventStream",
    "ServiceStatus",
    "StackEvent",
    "UpResult",
]
