"""The `.env` schema: every key, its default, what it means and how it is checked.

The single source of truth: `.env.example`, the Settings screen and `config list` are made
from it. Which keys are secret (and how secrets are shown) is decided here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stack.settings import envfile

ENV_FILE_VARIABLE = "LLM_TUI_ENV_FILE"
GGUF_MAGIC = b"GGUF"

# Pinned images. Never `latest`: a stack must start the same way tomorrow.
# Bump both deliberately, after checking the flags in stack/engine still apply.
DEFAULT_INFERENCE_IMAGE = "ghcr.io/ggml-org/llama.cpp:server-cuda-b10666"
DEFAULT_GATEWAY_IMAGE = "ghcr.io/berriai/litellm:v1.106.2"

GPU_WORDS = ("auto", "all", "none")
FLASH_ATTN_VALUES = ("auto", "on", "off")
KV_CACHE_TYPES = ("f16", "bf16", "f32", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
FLOATING_TAGS = ("latest", "main", "nightly", "dev")


@dataclass(frozen=True)
class Field:
    """One `.env` key: what it holds and how to check it."""

    key: str
    default: str
    description: str
    kind: str  # path | model | image | gpu | gpu_layers | int | port | float | ip | str | url
    # | host_path (an absolute folder on the engine's host)
    secret: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False  # an empty value is allowed
    section: str = ""
    minimum: float | None = None
    maximum: float | None = None


SCHEMA: tuple[Field, ...] = (
    Field(
        "MODELS_DIR",
        "./models",
        "Folder that holds your GGUF files, mounted read-only into the inference container.\n"
        "Relative paths resolve against the folder of this file; another drive works too\n"
        "(e.g. /mnt/e/models on WSL2).",
        "path",
        section="Models",
    ),
    Field(
        "CHAT_MODEL",
        "",
        "GGUF file (relative to MODELS_DIR) served as `local-chat`. For a split set, name the\n"
        "first shard (…-00001-of-0000N.gguf). Empty: pick one in the Models screen.",
        "model",
        optional=True,
        section="Models",
    ),
    Field(
        "CODE_MODEL",
        "",
        "Optional second GGUF served as `local-code` (its own container). Empty: `local-code`\n"
        "is served by CHAT_MODEL.",
        "model",
        optional=True,
        section="Models",
    ),
    Field(
        "INFERENCE_IMAGE",
        DEFAULT_INFERENCE_IMAGE,
        "llama.cpp server image (its entrypoint must be llama-server). Pinned: never `latest`.",
        "image",
        section="Images",
    ),
    Field(
        "GATEWAY_IMAGE",
        DEFAULT_GATEWAY_IMAGE,
        "LiteLLM gateway image. Pinned: never `latest` or `main-*`.",
        "image",
        section="Images",
    ),
    Field(
        "GPU",
        "auto",
        "auto (use the GPU when the engine has the NVIDIA runtime), all, none (CPU only),\n"
        "or device ids such as 0 or 0,1.",
        "gpu",
        section="Inference",
    ),
    Field(
        "GPU_LAYERS",
        "auto",
        "Layers to offload to the GPU (llama-server -ngl): auto, all, or a number.",
        "gpu_layers",
        section="Inference",
    ),
    Field(
        "CTX_SIZE",
        "8192",
        "Context window in tokens (llama-server -c), shared by the parallel slots.",
        "int",
        minimum=1,
        maximum=10_000_000,
        section="Inference",
    ),
    Field(
        "PARALLEL",
        "4",
        "Parallel request slots (llama-server -np).",
        "int",
        minimum=1,
        maximum=256,
        section="Inference",
    ),
    Field(
        "FLASH_ATTN",
        "auto",
        "Flash attention (llama-server -fa): auto, on or off.",
        "enum",
        choices=FLASH_ATTN_VALUES,
        section="Inference",
    ),
    Field(
        "KV_CACHE_TYPE",
        "f16",
        "KV cache precision (llama-server -ctk/-ctv). q8_0 halves its VRAM.",
        "enum",
        choices=KV_CACHE_TYPES,
        section="Inference",
    ),
    Field(
        "VRAM_MARGIN_MIB",
        "512",
        "VRAM in MiB kept free on top of the fit estimate (fit, tune, the Models screen).\n"
        "NVML's free memory already excludes what the desktop holds now; the margin is for\n"
        "what grows later: llama.cpp's memory pools on long prompts, other programs taking\n"
        "more, CUDA contexts that differ between drivers. llama.cpp's own --fit keeps 1024\n"
        "but leaves the CUDA context (~0.4 GiB) out, which this estimate counts. 0: none.",
        "int",
        minimum=0,
        maximum=1_048_576,
        section="Inference",
    ),
    Field(
        "LOAD_TIMEOUT",
        "900",
        "Seconds to wait for a model to load before giving up (big models on slow disks\n"
        "take minutes).",
        "int",
        minimum=5,
        maximum=86_400,
        section="Inference",
    ),
    Field(
        "INFERENCE_PORT",
        "8001",
        "Host port for llama-server itself (debugging), always on 127.0.0.1: llama-server has\n"
        "no key of its own. Empty: not published.",
        "port",
        optional=True,
        section="Network",
    ),
    Field(
        "API_GATEWAY_PORT",
        "8000",
        "Host port of the OpenAI-compatible gateway your IDE connects to.",
        "port",
        section="Network",
    ),
    Field(
        "BIND_ADDRESS",
        "127.0.0.1",
        "Address the gateway's port is published on. Anything but a loopback address (e.g.\n"
        "0.0.0.0 for your LAN) requires LITELLM_MASTER_KEY; llama-server stays on 127.0.0.1.",
        "ip",
        section="Network",
    ),
    Field(
        "LITELLM_MASTER_KEY",
        "",
        "The gateway's API key (generated on first run). IDEs send it as their API key.",
        "str",
        secret=True,
        optional=True,
        section="Secrets",
    ),
    Field(
        "HF_TOKEN",
        "",
        "Hugging Face token, only needed for gated repos (accept the license on the website).",
        "str",
        secret=True,
        optional=True,
        section="Secrets",
    ),
    Field(
        "HF_ENDPOINT",
        "",
        "Hugging Face mirror URL. Empty: https://huggingface.co.",
        "url",
        optional=True,
        section="Hugging Face",
    ),
    Field(
        "HF_TRUST_ENDPOINT",
        "false",
        "Send HF_TOKEN to HF_ENDPOINT too (true only for a mirror you trust). Otherwise the\n"
        "token goes only to the Hub itself, over https.",
        "enum",
        choices=("false", "true"),
        section="Hugging Face",
    ),
    Field(
        "TEMPERATURE",
        "0.2",
        "Default sampling temperature the gateway applies when a client sends none.",
        "float",
        minimum=0.0,
        maximum=2.0,
        section="Chat defaults",
    ),
    Field(
        "MAX_TOKENS",
        "1024",
        "Default max_tokens the gateway applies when a client sends none.",
        "int",
        minimum=1,
        maximum=10_000_000,
        section="Chat defaults",
    ),
    Field(
        "STACK_NAME",
        "llm-tui",
        "Prefix of container and network names, and the value of their llm-tui.stack label.",
        "name",
        section="Stack",
    ),
    Field(
        "REMOTE_ENGINE",
        "auto",
        "Whether the Docker Engine (DOCKER_HOST, the Docker context, or --context) runs on\n"
        "another machine: its models, downloads and the gateway's config then live on that\n"
        "host. auto: yes for ssh:// and tcp:// engines whose address is not this machine's.",
        "enum",
        choices=("auto", "true", "false"),
        section="Remote engine",
    ),
    Field(
        "REMOTE_MODELS_DIR",
        "",
        "Where models live on a remote engine's host. Empty: the Docker volume\n"
        "<STACK_NAME>-models there; or an absolute folder on that host (e.g. /srv/models).",
        "host_path",
        optional=True,
        section="Remote engine",
    ),
    Field(
        "GPU_SAMPLE_INTERVAL",
        "1",
        "Seconds between GPU readings (NVML, VRAM per container, tokens/s) while a GPU chart\n"
        "shows; nothing is sampled while none does.",
        "float",
        minimum=0.25,
        maximum=60,
        section="Dashboard",
    ),
    Field(
        "LOG_BUFFER_LINES",
        "10000",
        "Log lines kept per service on the Logs screen (older lines scroll out).",
        "int",
        minimum=100,
        maximum=1_000_000,
        section="Dashboard",
    ),
)

FIELDS: dict[str, Field] = {f.key: f for f in SCHEMA}


# Unknown keys whose name says they hold a secret are masked like our own secrets.
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")


def is_secret(key: str) -> bool:
    """Schema secrets, and unknown keys whose name says they hold one."""
    spec = FIELDS.get(key)
    if spec is not None:
        return spec.secret
    return any(word in key.upper() for word in SECRET_WORDS)


def mask(key: str, value: str) -> str:
    """A secret shown as its first characters only: enough to tell keys apart.

    Unknown secret-looking keys show nothing of their value: we do not know its format.
    """
    if not value or not is_secret(key):
        return value
    visible = 5 if key in FIELDS and len(value) > 16 else 0
    return value[:visible] + "…" + "•" * 6


def holds_secret(values: Mapping[str, str]) -> bool:
    return any(value and is_secret(key) for key, value in values.items())


def render_env_example() -> str:
    """The text of `.env.example`, generated from the schema (a test keeps them equal)."""
    lines = [
        "# llm-tui settings. Copy to .env (llm-tui does this on first run and generates",
        "# LITELLM_MASTER_KEY). Edit here or in the Settings screen / `llm-tui config set`.",
        "# Values are literal: no $VAR expansion. Quote values with spaces or #.",
    ]
    section = ""
    for spec in SCHEMA:
        if spec.section != section:
            section = spec.section
            lines += ["", f"# --- {section} " + "-" * max(3, 72 - len(section))]
        lines.append("")
        lines += [f"# {text}" if text else "#" for text in spec.description.splitlines()]
        lines.append(f"{spec.key}={envfile.encode_value(spec.default)}")
    return "\n".join(lines) + "\n"
