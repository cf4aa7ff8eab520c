"""Settings: the `.env` schema, validation, the typed `Settings` and safe edits.

    schema      every key: default, meaning, kind, which are secret; `.env.example`
    validation  each problem with its line, key and what is allowed
    store       `Settings`, `load_settings()`, `set_settings()` (atomic, locked writes)
    envfile     byte-preserving `.env` reading and writing

Import from here (``from stack.settings import Settings, load_settings``); the modules
beneath are the implementation.
"""

from __future__ import annotations

from stack.settings.schema import (
    DEFAULT_GATEWAY_IMAGE,
    DEFAULT_INFERENCE_IMAGE,
    ENV_FILE_VARIABLE,
    FIELDS,
    FLASH_ATTN_VALUES,
    FLOATING_TAGS,
    GGUF_MAGIC,
    GPU_WORDS,
    KV_CACHE_TYPES,
    SCHEMA,
    SECRET_WORDS,
    Field,
    holds_secret,
    is_secret,
    mask,
    render_env_example,
)
from stack.settings.store import (
    OFFICIAL_HUB_HOSTS,
    Settings,
    build_settings,
    create_env_file,
    is_official_hub,
    load_settings,
    resolve_env_file,
    set_setting,
    set_settings,
)
from stack.settings.validation import (
    Problem,
    check_model_name,
    check_model_path,
    describe,
    is_loopback,
    unknown_key_message,
    validate,
)

__all__ = [
    "DEFAULT_GATEWAY_IMAGE",
    "DEFAULT_INFERENCE_IMAGE",
    "ENV_FILE_VARIABLE",
    "FIELDS",
    "FLASH_ATTN_VALUES",
    "FLOATING_TAGS",
    "GGUF_MAGIC",
    "GPU_WORDS",
    "KV_CACHE_TYPES",
    "OFFICIAL_HUB_HOSTS",
    "SCHEMA",
    "SECRET_WORDS",
    "Field",
    "Problem",
    "Settings",
    "build_settings",
    "check_model_name",
    "check_model_path",
    "create_env_file",
    "describe",
    "holds_secret",
    "is_loopback",
    "is_official_hub",
    "is_secret",
    "load_settings",
    "mask",
    "render_env_example",
    "resolve_env_file",
    "set_setting",
    "set_settings",
    "unknown_key_message",
    "validate",
]
