"""Health checks of everything the stack needs, each with a status and the next step.

The dashboard shows these on a fresh machine (no engine, no models) so the user always
knows what is missing; `llm-tui doctor` prints them. Each check is independent and cheap
enough to run in a worker thread.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any

from stack.settings import Settings, holds_secret


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


def check_settings(settings: Settings) -> Check:
    if not settings.env_file.exists():
        return Check(
            "settings",
            Status.FAIL,
            f"no settings file at {settings.env_file}",
            "run `llm-tui config init`",
        )
    if settings.problems:
        first = settings.problems[0]
        more = f" (+{len(settings.problems) - 1} more)" if len(settings.problems) > 1 else ""
        return Check(
            "settings",
            Status.FAIL,
            f"{first}{more}",
            "fix it in the Settings screen or run `llm-tui config check`",
        )
    mode = settings.env_file.stat().st_mode & 0o777
    if mode & 0o077 and holds_secret(settings.values):
        return Check(
            "settings",
            Status.WARN,
            f"{settings.env_file} holds secrets but other users can read it (mode {mode:04o})",
            f"`chmod 600 {settings.env_file}` (any change saved by llm-tui also does it)",
        )
    return Check("settings", Status.OK, f"{settings.env_file} is valid")


def check_models(settings: Settings) -> Check:
    directory = settings.models_dir
    if not directory.is_dir():
        return Check(
            "models",
            Status.FAIL,
            f"MODELS_DIR {directory} does not exist",
            f"create it (`mkdir -p {directory}`) or set MODELS_DIR",
        )
    try:
        found = sorted(p for p in directory.rglob("*.gguf") if p.is_file())
    except OSError as exc:
        return Check("models", Status.FAIL, f"cannot read {directory}: {exc.strerror}")
    if not found:
        return Check(
            "models",
            Status.WARN,
            f"no GGUF files in {directory}",
            "download one in the Models screen (press 2), or copy a .gguf file there",
        )
    if not settings.chat_model:
        return Check(
            "models",
            Status.WARN,
            f"{len(found)} GGUF file(s) found but CHAT_MODEL is not set",
            "pick one in the Models screen, or `llm-tui config set CHAT_MODEL <file>`",
        )
    for key, model in (("CHAT_MODEL", settings.chat_model), ("CODE_MODEL", settings.code_model)):
        problem = model_file_problem(settings, model) if model else ""
        if problem:
            return Check(
                "models",
                Status.FAIL,
                f"{key}={model}: {problem}",
                "download it again (`llm-tui pull`) or pick another model",
            )
    return Check("models", Status.OK, f"serving {settings.chat_model} ({len(found)} local)")


def model_file_problem(settings: Settings, model: str) -> str:
    """Why a configured GGUF cannot load (bad header, truncated, missing shard), or ""."""
    from stack.engine.errors import model_problem
    from stack.models.gguf import read_header
    from stack.models.header import GgufError
    from stack.models.splits import check_split_set

    problem = model_problem(settings.models_dir, model)
    if problem:
        return problem.message
    path = settings.models_dir / model
    try:
        header = read_header(path)
        if header.split_count > 1:
            check_split_set(path)
    except GgufError as exc:
        return exc.reason
    return ""


def check_context(settings: Settings) -> Check:
    """Whether one request holds what an IDE agent sends (Claude Code: 32k tokens)."""
    from stack.clients import CLIENTS, connection_for, window_problem

    connection = connection_for(settings)
    problem = window_problem(CLIENTS["claude-code"], connection)
    if problem is not None:
        return Check("context", Status.WARN, problem[0], problem[1])
    slots = "1 slot" if connection.parallel == 1 else f"each of {connection.parallel} slots"
    return Check(
        "context", Status.OK, f"{slots} holds {connection.window:,} tokens: enough for Claude Code"
    )


def check_engine(settings: Settings, connect: Callable[[], Any] | None = None) -> list[Check]:
    """The engine, its NVIDIA runtime, and whether the stack's images are present."""
    from stack.engine.connection import EngineUnavailable
    from stack.engine.connection import connect as default_connect

    try:
        client = (connect or default_connect)()
    except EngineUnavailable as exc:
        return [
            Check("docker", Status.FAIL, exc.message, exc.fix or ""),
            Check("images", Status.WARN, "not checked: no Docker Engine"),
        ]
    try:
        version = client.version()
        info = client.info()
        images = check_images(settings, client)
    except Exception as exc:
        return [Check("docker", Status.FAIL, f"the Docker Engine failed to answer: {exc}")]
    finally:
        client.close()
    return [_engine_check(settings, version, info), images]


def check_images(settings: Settings, client: Any) -> Check:
    from docker.errors import ImageNotFound

    missing = []
    for image in dict.fromkeys((settings.inference_image, settings.gateway_image)):
        try:
            client.images.get(image)
        except ImageNotFound:
            missing.append(image)
    if missing:
        return Check(
            "images",
            Status.WARN,
            f"not pulled yet: {', '.join(missing)} (several GB for the CUDA image)",
            "`llm-tui up` pulls them with progress; needs network access once",
        )
    return Check("images", Status.OK, "inference and gateway images present")


def _engine_check(settings: Settings, version: dict[str, Any], info: dict[str, Any]) -> Check:
    runtimes = info.get("Runtimes") or {}
    detail = f"Docker Engine {version.get('Version', '?')} (API {version.get('ApiVersion', '?')})"
    if "nvidia" in runtimes:
        return Check("docker", Status.OK, detail + ", NVIDIA runtime present")
    if settings.gpu == "none":
        return Check("docker", Status.OK, detail + ", CPU only (GPU=none)")
    return Check(
        "docker",
        Status.WARN,
        detail + ", no NVIDIA container runtime: inference would run on the CPU",
        "install nvidia-container-toolkit (Linux) or enable the GPU in Docker Desktop; "
        "or set GPU=none",
    )


def check_gpu(nvml: ModuleType | None = None) -> Check:
    from stack.gpu import GpuUnavailable, read_gpus

    try:
        gpus = read_gpus(nvml)
    except GpuUnavailable as exc:
        return Check("gpu", Status.WARN, str(exc), "models can still run on the CPU (slowly)")
    if not gpus:
        return Check("gpu", Status.WARN, "NVML found no GPU", "check `nvidia-smi`")
    first = gpus[0]
    gib = first.memory_free / 2**30
    return Check("gpu", Status.OK, f"{first.name}, {gib:.1f} GiB free of VRAM")


def port_is_free(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As servers bind (docker-proxy too): a connection the port's last server closed
        # lingers in TIME_WAIT for a minute and must not read as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def check_ports(settings: Settings, stack_ports: Callable[[], set[int]] | None = None) -> Check:
    # Each port where the stack publishes it: llama-server's only ever on loopback.
    wanted = [("API_GATEWAY_PORT", settings.bind_address, settings.api_gateway_port)]
    if settings.inference_port:
        from stack.engine.plan import inference_bind_address  # the engine, only when asked

        address = inference_bind_address(settings.bind_address)
        wanted.append(("INFERENCE_PORT", address, settings.inference_port))
    taken = [(key, a, port) for key, a, port in wanted if not port_is_free(a, port)]
    ports = ", ".join(str(port) for _, _, port in wanted)
    addresses = sorted({a for _, a, _ in wanted})
    where = (
        addresses[0]
        if len(addresses) == 1
        else ", ".join(f"{port} on {a}" for _, a, port in wanted)
    )
    if not taken:
        free = f"{ports} free on {where}" if len(addresses) == 1 else f"free: {where}"
        return Check("ports", Status.OK, free)
    ours = (stack_ports or (lambda: ports_published_by_stack(settings)))()
    if all(port in ours for _, _, port in taken):
        return Check("ports", Status.OK, f"{ports} in use by this stack (it is running)")
    names = ", ".join(f"{key} {port} on {a}" for key, a, port in taken if port not in ours)
    return Check(
        "ports",
        Status.WARN,
        f"in use by another program: {names}",
        "stop what uses it (`ss -ltnp`) or change the port in Settings",
    )


def ports_published_by_stack(settings: Settings) -> set[int]:
    """Host ports our own containers publish (empty when the engine cannot be asked)."""
    from stack.engine.connection import EngineUnavailable, connect
    from stack.engine.plan import LABEL_STACK

    try:
        client = connect(timeout=3)
    except EngineUnavailable:
        return set()
    try:
        label = f"{LABEL_STACK}={settings.stack_name}"
        containers = client.containers.list(filters={"label": label})
        ports: set[int] = set()
        for container in containers:
            bindings = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
            for entries in bindings.values():
                for entry in entries or []:
                    if str(entry.get("HostPort", "")).isdigit():
                        ports.add(int(entry["HostPort"]))
        return ports
    except Exception:
        return set()
    finally:
        client.close()


def check_disk(settings: Settings) -> Check:
    target = settings.models_dir if settings.models_dir.exists() else Path(settings.home)
    free = shutil.disk_usage(target).free / 2**30
    if free < 5:
        return Check(
            "disk", Status.WARN, f"{free:.1f} GiB free for models", "free some space first"
        )
    return Check("disk", Status.OK, f"{free:.0f} GiB free for models")


def run_checks(settings: Settings) -> list[Check]:
    if settings.engine_remote:
        # The engine, its GPU, models, disk and ports are on another machine: each step of
        # reaching it is a check of its own (stack.engine.remote_checks).
        from stack.engine.remote_checks import remote_checks

        return [check_settings(settings), *remote_checks(settings), check_context(settings)]
    return [
        check_settings(settings),
        *check_engine(settings),
        check_gpu(),
        check_models(settings),
        check_context(settings),
        check_ports(settings),
        check_disk(settings),
    ]
