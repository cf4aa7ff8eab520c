"""Serving another model: recreate only its inference container, and roll back on failure.

The gateway keeps running and keeps its aliases, so IDEs never reconnect; if the new model
fails to load, the previous one is put back in `.env` and in the container.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from stack.cancel import CancelToken
from stack.engine import plan as svc
from stack.engine.containers import remove_container
from stack.engine.errors import EngineError

if TYPE_CHECKING:
    from stack.engine.engine import Engine

Progress = Callable[[str], None]


def swap_model(
    engine: Engine,
    model: str,
    role: str,
    *,
    wait: bool,
    progress: Progress,
    timeout: float | None,
    cancel: CancelToken | None = None,
) -> None:
    """`Engine.swap`: serve ``model`` as ``role`` (chat or code)."""
    from stack.settings import set_setting

    if role not in ("chat", "code"):
        raise EngineError(f"unknown role {role!r}", fix="use --role chat or --role code")
    key = "CHAT_MODEL" if role == "chat" else "CODE_MODEL"
    problem = engine.model_problem(model)
    if problem:
        raise EngineError(f"cannot serve {model}: {problem.message}", fix=problem.fix)
    previous = engine.settings.chat_model if role == "chat" else engine.settings.code_model
    gateway_config_before = _gateway_hash(engine)
    engine.settings = set_setting(engine.settings, key, model)
    try:
        _replace_inference(
            engine, role, wait=wait, progress=progress, timeout=timeout, cancel=cancel
        )
    except EngineError as error:
        progress(f"{model} failed; putting {previous or 'nothing'} back")
        engine.settings = set_setting(engine.settings, key, previous)
        restored = ""
        if previous:
            restored = f"\n{previous} is served again."
            try:
                _replace_inference(engine, role, wait=wait, progress=progress, timeout=timeout)
            except EngineError as again:
                progress(f"restoring {previous} failed too: {again.message}")
                restored = f"\n{previous} could not be started again either: {again.message}"
        raise EngineError(
            f"could not serve {model}: {error.message}{restored}", fix=error.fix
        ) from None
    gateway = engine.find(f"{engine.settings.stack_name}-{svc.GATEWAY}")
    if (
        gateway is None
        or gateway.status != "running"
        or (_gateway_hash(engine) != gateway_config_before)
    ):
        # First start, or a new code container the gateway must route to.
        engine.up(wait=wait, progress=progress, timeout=timeout, cancel=cancel)


def _gateway_hash(engine: Engine) -> str:
    return next(s.settings_hash for s in engine.plan() if s.role == svc.GATEWAY)


def _replace_inference(
    engine: Engine,
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
            for s in engine.plan()
            if s.role == (svc.INFERENCE if role == "chat" else svc.INFERENCE_CODE)
        ),
        None,
    )
    if spec is None:
        return  # CODE_MODEL equals CHAT_MODEL: the chat container serves both
    engine.ensure_network()
    existing = engine.find_ours(spec.name)
    if existing is not None:
        progress(f"stopping {spec.name}")
        remove_container(existing)
    engine.ensure_image(spec.image, progress, cancel=cancel)
    engine.check_ports(spec)
    progress(f"starting {spec.name} with {spec.model}")
    engine.create(spec)
    if wait:
        engine.wait_ready(spec, progress=progress, timeout=timeout, cancel=cancel)
