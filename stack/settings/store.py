"""The one `Settings` object: loading `.env` into it, and safe edits of `.env`.

Nothing happens at import time. `load_settings()` builds a `Settings` from a file;
`set_setting()` validates a change and writes it with `stack.settings.envfile` (atomic,
locked, byte-preserving), tightening the file's mode when it holds a secret.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from stack.errors import EnvFileError, SettingsError, os_error
from stack.settings import envfile
from stack.settings.schema import (
    DEFAULT_GATEWAY_IMAGE,
    DEFAULT_INFERENCE_IMAGE,
    ENV_FILE_VARIABLE,
    FIELDS,
    holds_secret,
    render_env_example,
)
from stack.settings.validation import Problem, is_loopback, unknown_key_message, validate


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
    vram_margin_mib: int = 512
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
    remote_engine: str = "auto"  # REMOTE_ENGINE as written
    remote_models_dir: str = ""  # REMOTE_MODELS_DIR: a folder on that host; "" = a volume
    # Whether the engine in use runs on another machine, and its address (from
    # REMOTE_ENGINE and the endpoint: DOCKER_HOST, the context, --context).
    engine_remote: bool = False
    engine_host: str = ""
    gpu_sample_interval: float = 1.0
    log_buffer_lines: int = 10_000
    # Said once by the write that caused it (e.g. the file's permissions were tightened).
    notice: str = ""

    @property
    def gateway_url(self) -> str:
        host = "localhost" if self.bind_address in ("127.0.0.1", "0.0.0.0") else self.bind_address
        if self.engine_remote and self.engine_host and not is_loopback(self.bind_address):
            # Published on the remote host's network: reach it there. A loopback-bound
            # gateway is reached through llm-tui's SSH forward on this machine's localhost.
            host = self.engine_host
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


def resolve_env_file(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """`--env-file`, then `LLM_TUI_ENV_FILE`, then `./.env`."""
    environ = os.environ if environ is None else environ
    chosen = path or environ.get(ENV_FILE_VARIABLE) or ".env"
    return Path(chosen).expanduser().absolute()


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


def engine_location(values: Mapping[str, str]) -> tuple[bool, str]:
    """(the engine runs on another machine, its address) from REMOTE_ENGINE and the endpoint."""
    from stack.engine.endpoint import resolve_endpoint

    endpoint = resolve_endpoint()
    setting = values.get("REMOTE_ENGINE", FIELDS["REMOTE_ENGINE"].default)
    remote = setting == "true" or (setting != "false" and endpoint.is_remote)
    return remote, endpoint.hostname if remote else ""


def build_settings(path: Path, doc: envfile.EnvDocument) -> Settings:
    values = doc.values()
    engine_remote, engine_host = engine_location(values)
    problems = validate(values, home=path.parent, lines=doc, models_remote=engine_remote)
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
        vram_margin_mib=int(get("VRAM_MARGIN_MIB")),
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
        remote_engine=get("REMOTE_ENGINE"),
        remote_models_dir=get("REMOTE_MODELS_DIR"),
        engine_remote=engine_remote,
        engine_host=engine_host,
        gpu_sample_interval=float(get("GPU_SAMPLE_INTERVAL")),
        log_buffer_lines=int(get("LOG_BUFFER_LINES")),
    )


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
        remote, _ = engine_location(new_doc.values())
        problems = validate(new_doc.values(), home=path.parent, lines=new_doc, models_remote=remote)
        before = {
            (p.key, p.value) for p in validate(doc.values(), home=path.parent, models_remote=remote)
        }
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
