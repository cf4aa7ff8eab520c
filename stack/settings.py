"""The one `Settings` object: schema, loading, validation and safe edits of `.env`.

Nothing happens at import time. `load_settings()` builds a `Settings` from a file;
`set_setting()` validates a change and writes it with `stack.envfile` (atomic, locked,
byte-preserving). The schema below is the single source of truth for `.env.example`.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from stack import envfile
from stack.errors import EnvFileError, SettingsError, os_error

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
)

FIELDS: dict[str, Field] = {f.key: f for f in SCHEMA}


@dataclass(frozen=True)
class Problem:
    """One invalid value: where it is, what is wrong, what is allowed."""

    key: str
    value: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.key}={mask(self.key, self.value)!s}: {self.message}"


@dataclass(frozen=True)
class Settings:
    """Typed, validated view of one `.env` (invalid values fall back to their defaults)."""

    env_file: Path
    home: Path
    values: Mapping[str, str]  # every key in the file, unknown ones too, as written
    problems: tuple[Problem, ...] = ()
    models_dir: Path = Path("models")
    chat_model: str = ""
    code_model: str = ""
    inference_image: str = DEFAULT_INFERENCE_IMAGE
    gateway_image: str = DEFAULT_GATEWAY_IMAGE
    gpu: str = "auto"
    gpu_layers: str = "auto"
    ctx_size: int = 8192
    parallel: int = 4
    flash_attn: str = "auto"
    kv_cache_type: str = "f16"
    load_timeout: int = 900
    inference_port: int | None = 8001
    api_gateway_port: int = 8000
    bind_address: str = "127.0.0.1"
    litellm_master_key: str = field(default="", repr=False)
    hf_token: str = field(default="", repr=False)
    hf_endpoint: str = ""
    hf_trust_endpoint: bool = False
    temperature: float = 0.2
    max_tokens: int = 1024
    stack_name: str = "llm-tui"
    # Said once by the write that caused it (e.g. the file's permissions were tightened).
    notice: str = ""

    @property
    def gateway_url(self) -> str:
        host = "localhost" if self.bind_address in ("127.0.0.1", "0.0.0.0") else self.bind_address
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.api_gateway_port}/v1"

    @property
    def gateway_config_path(self) -> Path:
        return self.home / "services" / "api-gateway" / "config.yaml"

    @property
    def has_code_model(self) -> bool:
        return bool(self.code_model) and self.code_model != self.chat_model

    def model_path(self, relative: str) -> Path:
        return self.models_dir / relative

    @property
    def hub_token(self) -> str:
        """HF_TOKEN where it may be sent: the Hub itself over https, or a trusted mirror.

        Every Hub call built from settings uses this, never ``hf_token`` directly, so a
        mirror (or a plain-http endpoint) never sees the token unless the user said so.
        """
        return self.hf_token if self.hub_token_withheld is None else ""

    @property
    def hub_token_withheld(self) -> str | None:
        """Why HF_TOKEN is not sent to HF_ENDPOINT (None: it is sent, or there is none)."""
        if not self.hf_token or self.hf_trust_endpoint or is_official_hub(self.hf_endpoint):
            return None
        return (
            f"HF_TOKEN is not sent to {self.hf_endpoint} (not the Hub's own https address); "
            "set HF_TRUST_ENDPOINT=true if you trust that mirror"
        )


OFFICIAL_HUB_HOSTS = ("huggingface.co", "hf.co")


def is_official_hub(endpoint: str) -> bool:
    """True for an empty endpoint (the default) or https on the Hub's own host."""
    if not endpoint:
        return True
    parts = urlsplit(endpoint)
    return (
        parts.scheme == "https"
        and (parts.hostname or "") in OFFICIAL_HUB_HOSTS
        and (parts.port in (None, 443))
    )


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


def resolve_env_file(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """`--env-file`, then `LLM_TUI_ENV_FILE`, then `./.env`."""
    environ = os.environ if environ is None else environ
    chosen = path or environ.get(ENV_FILE_VARIABLE) or ".env"
    return Path(chosen).expanduser().absolute()


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


def create_env_file(path: Path) -> Path:
    """First run: write `.env` from the template with a freshly generated master key."""
    doc = envfile.parse(render_env_example())
    text = envfile.with_value(doc, "LITELLM_MASTER_KEY", envfile.generate_master_key())
    path.parent.mkdir(parents=True, exist_ok=True)
    with envfile.locked(path):
        if not path.exists():
            envfile.write_atomic(path, text)
    # The default MODELS_DIR, so the first screen shows "no models yet", not an error.
    (path.parent / FIELDS["MODELS_DIR"].default).mkdir(exist_ok=True)
    return path


def load_settings(
    env_file: str | os.PathLike[str] | None = None,
    *,
    create: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read and validate `.env`. With ``create``, a missing file is created first."""
    path = resolve_env_file(env_file, environ)
    if create and not path.exists():
        create_env_file(path)
    doc = envfile.read(path) if path.exists() else envfile.parse("")
    return build_settings(path, doc)


def build_settings(path: Path, doc: envfile.EnvDocument) -> Settings:
    values = doc.values()
    problems = validate(values, home=path.parent, lines=doc)
    bad_keys = {p.key for p in problems}

    def get(key: str) -> str:
        raw = values.get(key, FIELDS[key].default)
        return FIELDS[key].default if key in bad_keys else raw

    home = path.parent
    models_dir = Path(get("MODELS_DIR")).expanduser()
    if not models_dir.is_absolute():
        models_dir = home / models_dir
    port = get("INFERENCE_PORT")
    problems += tuple(
        Problem("(file)", "", "this line is not KEY=value and is ignored", line)
        for line in doc.bad_lines
    )
    return Settings(
        env_file=path,
        home=home,
        values=dict(values),
        problems=tuple(problems),
        models_dir=models_dir,
        chat_model=get("CHAT_MODEL"),
        code_model=get("CODE_MODEL"),
        inference_image=get("INFERENCE_IMAGE"),
        gateway_image=get("GATEWAY_IMAGE"),
        gpu=get("GPU").replace(" ", ""),
        gpu_layers=get("GPU_LAYERS"),
        ctx_size=int(get("CTX_SIZE")),
        parallel=int(get("PARALLEL")),
        flash_attn=get("FLASH_ATTN"),
        kv_cache_type=get("KV_CACHE_TYPE"),
        load_timeout=int(get("LOAD_TIMEOUT")),
        inference_port=int(port) if port else None,
        api_gateway_port=int(get("API_GATEWAY_PORT")),
        bind_address=get("BIND_ADDRESS"),
        litellm_master_key=get("LITELLM_MASTER_KEY"),
        hf_token=get("HF_TOKEN"),
        hf_endpoint=get("HF_ENDPOINT").rstrip("/"),
        hf_trust_endpoint=get("HF_TRUST_ENDPOINT") == "true",
        temperature=float(get("TEMPERATURE")),
        max_tokens=int(get("MAX_TOKENS")),
        stack_name=get("STACK_NAME"),
    )


# --- validation -------------------------------------------------------------------------


def _check_int(spec: Field, value: str) -> str | None:
    if not re.fullmatch(r"[0-9]+", value.strip()):
        return "must be a whole number" + _range_text(spec)
    number = int(value)
    if spec.minimum is not None and number < spec.minimum:
        return "must be a whole number" + _range_text(spec)
    if spec.maximum is not None and number > spec.maximum:
        return "must be a whole number" + _range_text(spec)
    return None


def _range_text(spec: Field) -> str:
    low = "" if spec.minimum is None else _number_text(spec.minimum)
    high = "" if spec.maximum is None else _number_text(spec.maximum)
    return f" from {low} to {high}" if low and high else (f" ≥ {low}" if low else "")


def _number_text(number: float) -> str:
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


def _check_float(spec: Field, value: str) -> str | None:
    try:
        number = float(value)
    except ValueError:
        return "must be a number" + _range_text(spec)
    if number != number or (spec.minimum is not None and number < spec.minimum):
        return "must be a number" + _range_text(spec)
    if spec.maximum is not None and number > spec.maximum:
        return "must be a number" + _range_text(spec)
    return None


def _check_port(spec: Field, value: str) -> str | None:
    if not re.fullmatch(r"[0-9]+", value) or not 1 <= int(value) <= 65535:
        return "must be a port number from 1 to 65535" + (
            " (or empty to not publish it)" if spec.optional else ""
        )
    return None


def _check_ip(spec: Field, value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "must be an IP address such as 127.0.0.1 (local only) or 0.0.0.0 (LAN)"
    return None


def _check_gpu(spec: Field, value: str) -> str | None:
    compact = value.replace(" ", "")
    if compact in GPU_WORDS or re.fullmatch(r"[0-9]+(,[0-9]+)*", compact):
        return None
    if re.fullmatch(r"GPU-[0-9a-fA-F-]+(,GPU-[0-9a-fA-F-]+)*", compact):
        return None  # NVIDIA UUIDs are valid device ids too
    return "must be auto, all, none, or device ids such as 0 or 0,1"


def _check_gpu_layers(spec: Field, value: str) -> str | None:
    if value in ("auto", "all") or re.fullmatch(r"[0-9]+", value):
        return None
    return "must be auto, all, or a number of layers (0 = CPU only)"


def _check_enum(spec: Field, value: str) -> str | None:
    return None if value in spec.choices else "must be one of " + ", ".join(spec.choices)


def _check_image(spec: Field, value: str) -> str | None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/:@-]*", value):
        return "must be an image reference such as ghcr.io/org/name:tag"
    _name, _, tag = value.rpartition(":") if ":" in value.split("/")[-1] else (value, "", "")
    if "@sha256:" in value:
        return None
    if not tag:
        return "needs a pinned tag (name:tag); an untagged image means `latest`"
    if tag in FLOATING_TAGS or tag.startswith("main-"):
        return f"tag `{tag}` floats; pin a version tag instead"
    return None


def _check_url(spec: Field, value: str) -> str | None:
    if re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        return None
    return "must be an http(s) URL such as https://huggingface.co"


def _check_name(spec: Field, value: str) -> str | None:
    if re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,40}", value):
        return None
    return "must be letters, digits, '.', '_' or '-' (at most 41 characters)"


def _check_path(spec: Field, value: str) -> str | None:
    return None if value.strip() else "must name a folder"


def _check_str(spec: Field, value: str) -> str | None:
    if "\n" in value or "\r" in value:
        return "must be on one line"
    return None


_CHECKS: dict[str, Callable[[Field, str], str | None]] = {
    "int": _check_int,
    "float": _check_float,
    "port": _check_port,
    "ip": _check_ip,
    "gpu": _check_gpu,
    "gpu_layers": _check_gpu_layers,
    "enum": _check_enum,
    "image": _check_image,
    "url": _check_url,
    "name": _check_name,
    "path": _check_path,
    "str": _check_str,
}


def check_model_path(relative: str, models_dir: Path) -> str | None:
    """Why ``relative`` is not a usable GGUF inside ``models_dir``, or None if it is."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:[\\/]", relative):
        return f"must be a path relative to MODELS_DIR ({models_dir}), not an absolute path"
    if ".." in pure.parts or "\\" in relative:
        return "must stay inside MODELS_DIR (no '..')"
    path = models_dir / relative
    if not path.is_file():
        return f"file not found in MODELS_DIR ({path}); download it or fix the name"
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if magic != GGUF_MAGIC:
        return "is not a GGUF file (it does not start with the GGUF magic bytes)"
    return None


def validate(
    values: Mapping[str, str], *, home: Path, lines: envfile.EnvDocument | None = None
) -> tuple[Problem, ...]:
    """Every problem in ``values``; unknown keys are allowed and kept."""

    def where(key: str) -> int | None:
        return lines.line_of(key) if lines is not None else None

    problems: list[Problem] = []
    for spec in SCHEMA:
        value = values.get(spec.key)
        if value is None:
            continue
        if value == "":
            if not spec.optional:
                problems.append(Problem(spec.key, value, "must not be empty", where(spec.key)))
            continue
        if spec.kind == "model":
            continue  # checked below, once MODELS_DIR is known
        message = _CHECKS[spec.kind](spec, value)
        if message:
            problems.append(Problem(spec.key, value, message, where(spec.key)))

    bad = {p.key for p in problems}
    models_raw = values.get("MODELS_DIR", FIELDS["MODELS_DIR"].default)
    models_dir = Path(models_raw).expanduser()
    if not models_dir.is_absolute():
        models_dir = home / models_dir
    for key in ("CHAT_MODEL", "CODE_MODEL"):
        value = values.get(key, "")
        if value and "MODELS_DIR" not in bad:
            message = check_model_path(value, models_dir)
            if message:
                problems.append(Problem(key, value, message, where(key)))

    gateway = values.get("API_GATEWAY_PORT", "8000")
    inference = values.get("INFERENCE_PORT", "8001")
    if inference and gateway == inference and not {"API_GATEWAY_PORT", "INFERENCE_PORT"} & bad:
        problems.append(
            Problem(
                "INFERENCE_PORT",
                inference,
                "is also API_GATEWAY_PORT's port; the two must differ "
                "(or leave INFERENCE_PORT empty to not publish llama-server)",
                where("INFERENCE_PORT"),
            )
        )
    bind = values.get("BIND_ADDRESS", "127.0.0.1")
    if "BIND_ADDRESS" not in bad and not is_loopback(bind) and not values.get("LITELLM_MASTER_KEY"):
        problems.append(
            Problem(
                "BIND_ADDRESS",
                bind,
                "exposes the gateway beyond this machine, so LITELLM_MASTER_KEY must be set "
                "(or use 127.0.0.1)",
                where("BIND_ADDRESS"),
            )
        )
    return tuple(problems)


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1: reachable from this machine only (anything else is the network)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# --- edits ------------------------------------------------------------------------------


def unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key.upper(), list(FIELDS), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{key} is not a setting llm-tui knows{hint}; `llm-tui config list` shows them"


def set_setting(settings: Settings, key: str, value: str) -> Settings:
    """Validate and write one key. Nothing is written unless the new value is valid."""
    return set_settings(settings, {key: value})


def set_settings(settings: Settings, changes: Mapping[str, str]) -> Settings:
    """Validate and write several keys at once (atomic, locked, byte-preserving)."""
    for key in changes:
        if key not in FIELDS:
            raise SettingsError([unknown_key_message(key)])
    path = settings.env_file
    if not path.exists():
        create_env_file(path)
    with envfile.locked(path):
        doc = envfile.read(path)
        text = doc.text
        for key, value in changes.items():
            text = envfile.with_value(envfile.parse(text), key, value)
        new_doc = envfile.parse(text)
        problems = validate(new_doc.values(), home=path.parent, lines=new_doc)
        before = {(p.key, p.value) for p in validate(doc.values(), home=path.parent)}
        # Refuse only what this change broke: older problems elsewhere don't block edits.
        caused = [p for p in problems if p.key in changes or (p.key, p.value) not in before]
        if caused:
            raise SettingsError([str(p) for p in caused], fix="nothing was written")
        notice = ""
        if text != doc.text:
            before_mode = path.stat().st_mode & 0o777
            private = holds_secret(new_doc.values())
            try:
                envfile.write_atomic(path, text, private=private)
            except OSError as exc:
                error = os_error(exc, str(path))
                raise EnvFileError(
                    f"could not save {path.name}: {error.message}",
                    fix=f"{error.fix}; {path.name} is unchanged",
                ) from None
            if private and before_mode & 0o077:
                notice = (
                    f"{path.name} holds secrets and was readable by other users "
                    f"(mode {before_mode:04o}); it is now 0600"
                )
    return dataclasses.replace(build_settings(path, new_doc), notice=notice)


def describe(key: str) -> Field:
    try:
        return FIELDS[key]
    except KeyError:
        raise EnvFileError(unknown_key_message(key)) from None
