"""What the stack's containers should be: a pure plan built from `Settings`.

`plan_services()` turns settings into `ServiceSpec`s (image, command, mounts, ports, GPU,
labels). The engine compares each spec's hash with the label on the running container to
decide whether to keep, recreate or create it. No Docker calls here, so the plan is unit
tested and shared by `llm-tui compose`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path

from stack.engine.gateway import (
    CHAT_ALIAS,
    CODE_ALIAS,
    GATEWAY_CONTAINER_PORT,
    INFERENCE_CONTAINER_PORT,
    inference_container_name,
    render_config,
)
from stack.settings import Settings

LABEL_STACK = "llm-tui.stack"
LABEL_ROLE = "llm-tui.role"
LABEL_HASH = "llm-tui.settings-hash"
LABEL_MODEL = "llm-tui.model"
# The .env values a container was made from (secrets as a hash): what `status` compares to
# say which keys changed since, not only that something did.
LABEL_INPUTS = "llm-tui.inputs"

INFERENCE = "inference"
INFERENCE_CODE = "inference-code"
GATEWAY = "api-gateway"
ROLES = (INFERENCE, INFERENCE_CODE, GATEWAY)
HELPER = "helper"  # a short-lived container on a remote engine's host (stack.engine.helper)

CONTAINER_MODELS_DIR = "/models"
GATEWAY_CONFIG_IN_CONTAINER = "/app/config.yaml"
# On a remote engine the models live in this volume on its host (or REMOTE_MODELS_DIR).
MODELS_VOLUME_SUFFIX = "-models"
# Big models take minutes to load: failures inside this window don't count.
HEALTH_START_PERIOD_S = 600
SECOND_NS = 1_000_000_000


@dataclass(frozen=True)
class GpuRequest:
    """`all` GPUs or specific device ids."""

    device_ids: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return 0 if self.device_ids else -1


@dataclass(frozen=True)
class ServiceSpec:
    role: str
    name: str
    image: str
    command: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)
    mounts: tuple[tuple[str, str, str], ...] = ()  # (host path, container path, mode)
    ports: tuple[tuple[int, str, int], ...] = ()  # (container port, host address, host port)
    gpu: GpuRequest | None = None
    healthcheck: dict[str, object] | None = None
    model: str = ""  # the GGUF served (inference roles)
    extra_hash_input: str = ""  # e.g. the gateway config text: a change must recreate
    inputs: dict[str, str] = field(default_factory=dict)  # .env key -> value it was made from
    # (path in the container, text): written into it before it starts, where a bind mount
    # of this machine's file would reach nothing (a remote engine).
    files: tuple[tuple[str, str], ...] = ()

    @property
    def settings_hash(self) -> str:
        canonical = json.dumps(
            {
                "image": self.image,
                "command": self.command,
                # The key is hashed, never stored: a label is readable by anyone with docker.
                "environment": {
                    k: hashlib.sha256(v.encode()).hexdigest() for k, v in self.environment.items()
                },
                "mounts": self.mounts,
                "ports": self.ports,
                "gpu": None if self.gpu is None else list(self.gpu.device_ids) or "all",
                "healthcheck": self.healthcheck,
                "extra": hashlib.sha256(self.extra_hash_input.encode()).hexdigest(),
                # Only when there are any: local containers keep the hash they always had.
                **({"files": [path for path, _ in self.files]} if self.files else {}),
            },
            sort_keys=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def labels(self, stack_name: str) -> dict[str, str]:
        labels = {
            LABEL_STACK: stack_name,
            LABEL_ROLE: self.role,
            LABEL_HASH: self.settings_hash,
        }
        if self.model:
            labels[LABEL_MODEL] = self.model
        if self.inputs:
            labels[LABEL_INPUTS] = json.dumps(self.inputs, sort_keys=True)
        return labels


# The .env keys each container is made from: a change to one of these (and only these)
# recreates that container on `up`.
INFERENCE_KEYS = (
    "MODELS_DIR", "CHAT_MODEL", "INFERENCE_IMAGE", "GPU", "GPU_LAYERS", "CTX_SIZE",
    "PARALLEL", "FLASH_ATTN", "KV_CACHE_TYPE", "INFERENCE_PORT", "BIND_ADDRESS",
    "REMOTE_MODELS_DIR",
)  # fmt: skip
INFERENCE_CODE_KEYS = tuple(
    "CODE_MODEL" if key == "CHAT_MODEL" else key
    for key in INFERENCE_KEYS
    if key not in ("INFERENCE_PORT", "BIND_ADDRESS")
)
GATEWAY_KEYS = (
    "GATEWAY_IMAGE", "API_GATEWAY_PORT", "BIND_ADDRESS", "LITELLM_MASTER_KEY", "TEMPERATURE",
    "MAX_TOKENS", "CODE_MODEL",
)  # fmt: skip


def spec_inputs(settings: Settings, keys: tuple[str, ...]) -> dict[str, str]:
    """The effective value of each key (defaults included); secrets only as a short hash."""
    from stack.settings import FIELDS, is_secret

    values: dict[str, str] = {}
    for key in keys:
        value = settings.values.get(key, FIELDS[key].default)
        if key == "MODELS_DIR":
            value = str(Path(settings.models_dir).resolve())
        values[key] = (
            "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]
            if is_secret(key) and value
            else value
        )
    return values


def drifted_keys(spec: ServiceSpec, labels: dict[str, str]) -> tuple[str, ...]:
    """The .env keys whose values differ from those ``labels`` say the container was made
    from; empty when it matches the plan. A container made by an older llm-tui (no inputs
    label) or changed by llm-tui itself reports its hash only: ``("llm-tui",)``.
    """
    if labels.get(LABEL_HASH) == spec.settings_hash:
        return ()
    try:
        recorded = json.loads(labels.get(LABEL_INPUTS, ""))
    except ValueError:
        recorded = None
    if not isinstance(recorded, dict):
        return ("llm-tui",)
    changed = tuple(key for key, value in spec.inputs.items() if recorded.get(key) != value)
    return changed or ("llm-tui",)


def gpu_request(settings: Settings, engine_has_nvidia: bool) -> GpuRequest | None:
    """GPU=all/ids always ask for GPUs; auto asks only when the engine has the runtime."""
    value = settings.gpu
    if value == "none" or (value == "auto" and not engine_has_nvidia):
        return None
    if value in ("all", "auto"):
        return GpuRequest()
    return GpuRequest(tuple(part for part in value.split(",") if part))


def inference_command(settings: Settings, model: str, alias: str, *, gpu: bool) -> tuple[str, ...]:
    layers = settings.gpu_layers if gpu else "0"
    return (
        "-m",
        f"{CONTAINER_MODELS_DIR}/{model}",
        # Both flags always: the default port is moving away from 8080.
        "--host",
        "0.0.0.0",
        "--port",
        str(INFERENCE_CONTAINER_PORT),
        "-ngl",
        layers,
        "-c",
        str(settings.ctx_size),
        "-np",
        str(settings.parallel),
        "-fa",
        settings.flash_attn,
        "-ctk",
        settings.kv_cache_type,
        "-ctv",
        settings.kv_cache_type,
        "-a",
        alias,
        "--metrics",
    )


def inference_healthcheck() -> dict[str, object]:
    return {
        "test": ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/health"],
        # Short: `status` shows this health, and after a swap nobody wants to wait 5 s to see it.
        "interval": 2 * SECOND_NS,
        "timeout": 2 * SECOND_NS,
        "retries": 3,
        "start_period": HEALTH_START_PERIOD_S * SECOND_NS,
    }


def gateway_healthcheck() -> dict[str, object]:
    """LiteLLM's liveliness endpoint, asked with the image's own Python (no curl there)."""
    probe = (
        "import urllib.request;"
        "urllib.request.urlopen('http://127.0.0.1:4000/health/liveliness', timeout=2)"
    )
    return {
        "test": ["CMD", "python3", "-c", probe],
        "interval": 2 * SECOND_NS,
        "timeout": 3 * SECOND_NS,
        "retries": 3,
        "start_period": 120 * SECOND_NS,
    }


def models_volume(settings: Settings) -> str:
    """The Docker volume that holds the models on a remote engine's host."""
    return settings.stack_name + MODELS_VOLUME_SUFFIX


def models_source(settings: Settings, *, remote: bool | None = None) -> str:
    """What is mounted at /models: MODELS_DIR here, or on a remote host its volume/folder."""
    if not (settings.engine_remote if remote is None else remote):
        return str(Path(settings.models_dir).resolve())
    return settings.remote_models_dir or models_volume(settings)


def plan_services(
    settings: Settings, *, engine_has_nvidia: bool = False, remote: bool | None = None
) -> list[ServiceSpec]:
    """Every container the stack should run, in start order (inference first).

    ``remote`` (default: ``settings.engine_remote``): the engine runs on another machine,
    so models come from its host and the gateway's config is put into its container.
    """
    remote = settings.engine_remote if remote is None else remote
    gpu = gpu_request(settings, engine_has_nvidia)
    models_dir = models_source(settings, remote=remote)
    specs: list[ServiceSpec] = []
    inference_roles = [(INFERENCE, settings.chat_model, CHAT_ALIAS)]
    if settings.has_code_model:
        inference_roles.append((INFERENCE_CODE, settings.code_model, CODE_ALIAS))
    for role, model, alias in inference_roles:
        ports: tuple[tuple[int, str, int], ...] = ()
        if role == INFERENCE and settings.inference_port:
            address = inference_bind_address(settings.bind_address)
            ports = ((INFERENCE_CONTAINER_PORT, address, settings.inference_port),)
        specs.append(
            ServiceSpec(
                role=role,
                name=inference_container_name(settings, "chat" if role == INFERENCE else "code"),
                image=settings.inference_image,
                command=inference_command(settings, model, alias, gpu=gpu is not None),
                mounts=((models_dir, CONTAINER_MODELS_DIR, "ro"),),
                ports=ports,
                gpu=gpu,
                healthcheck=inference_healthcheck(),
                model=model,
                inputs=spec_inputs(
                    settings, INFERENCE_KEYS if role == INFERENCE else INFERENCE_CODE_KEYS
                ),
            )
        )
    config_path = settings.gateway_config_path
    config_text = render_config(settings)
    specs.append(
        ServiceSpec(
            role=GATEWAY,
            name=f"{settings.stack_name}-{GATEWAY}",
            image=settings.gateway_image,
            command=(
                "--config",
                GATEWAY_CONFIG_IN_CONTAINER,
                "--port",
                str(GATEWAY_CONTAINER_PORT),
            ),
            environment={
                "LITELLM_MASTER_KEY": settings.litellm_master_key,
                # Use the bundled price map instead of fetching one at start.
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            },
            mounts=()
            if remote
            else ((str(config_path.resolve()), GATEWAY_CONFIG_IN_CONTAINER, "ro"),),
            ports=((GATEWAY_CONTAINER_PORT, settings.bind_address, settings.api_gateway_port),),
            healthcheck=gateway_healthcheck(),
            extra_hash_input=config_text,
            inputs=spec_inputs(settings, GATEWAY_KEYS),
            files=((GATEWAY_CONFIG_IN_CONTAINER, config_text),) if remote else (),
        )
    )
    return specs


def inference_bind_address(bind_address: str) -> str:
    """Where llama-server's own port is published: always a loopback address.

    llama-server runs without a key (the gateway holds it), so its port must never reach
    the network, whatever BIND_ADDRESS says; IDEs on the LAN use the gateway.
    """
    try:
        if ipaddress.ip_address(bind_address).is_loopback:
            return bind_address
    except ValueError:
        pass
    return "127.0.0.1"


def host_for(address: str) -> str:
    """Where the host reaches a port published on ``address``."""
    if address in ("0.0.0.0", ""):
        return "127.0.0.1"
    if address == "::":
        return "[::1]"
    return f"[{address}]" if ":" in address else address
