"""The engine: the stack's containers run through the Docker SDK.

    plan        settings -> `ServiceSpec`s (image, command, mounts, ports, GPU, labels), pure
    engine      `Engine`: up, down, restart, swap, status, logs, events for one stack
    containers  create/start/remove one container; ports checked first
    swap        serve another model, rolling back if it fails to load
    health      wait until a service answers; why one died while starting
    pull        image pulls with progress, stoppable from another thread
    status      `ServiceStatus`, what `llm-tui status` shows
    logs        container logs as clean lines, fast, on every transport
    events      container events (start, die, oom, health)
    gateway     LiteLLM's config.yaml, generated from the settings
    compose     the same stack as a compose file
    connection  connecting to the engine (DOCKER_HOST, contexts), failures explained
    errors      Docker failures as answers a user can act on

``from stack.engine import Engine`` is the entry point; the modules are the parts.
"""

from __future__ import annotations

from stack.engine.engine import ROLE_ALIASES, Engine, UpResult
from stack.engine.errors import EngineError
from stack.engine.events import EventStream, StackEvent
from stack.engine.status import ServiceStatus

__all__ = [
    "ROLE_ALIASES",
    "Engine",
    "EngineError",
    "EventStream",
    "ServiceStatus",
    "StackEvent",
    "UpResult",
]
