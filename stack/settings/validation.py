"""Validation of `.env` values: each problem names the line, the key and what is allowed."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from stack.errors import EnvFileError
from stack.settings import envfile
from stack.settings.schema import (
    FIELDS,
    FLOATING_TAGS,
    GGUF_MAGIC,
    GPU_WORDS,
    SCHEMA,
    Field,
    mask,
)


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


def _check_host_path(spec: Field, value: str) -> str | None:
    # A folder on another machine: only its form can be checked here.
    pure = PurePosixPath(value)
    if not value.startswith("/") or ".." in pure.parts or re.search(r"[\s:,]", value):
        return "must be an absolute folder on the engine's host, such as /srv/models"
    return None


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
    "host_path": _check_host_path,
    "str": _check_str,
}


def check_model_name(relative: str, models_dir: Path | str) -> str | None:
    """Why ``relative`` cannot name a file inside the models folder (its form only)."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:[\\/]", relative):
        return f"must be a path relative to MODELS_DIR ({models_dir}), not an absolute path"
    if ".." in pure.parts or "\\" in relative:
        return "must stay inside MODELS_DIR (no '..')"
    return None


def check_model_path(relative: str, models_dir: Path) -> str | None:
    """Why ``relative`` is not a usable GGUF inside ``models_dir``, or None if it is."""
    problem = check_model_name(relative, models_dir)
    if problem:
        return problem
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
    values: Mapping[str, str],
    *,
    home: Path,
    lines: envfile.EnvDocument | None = None,
    models_remote: bool = False,
) -> tuple[Problem, ...]:
    """Every problem in ``values``; unknown keys are allowed and kept.

    ``models_remote``: the models live on a remote engine's host, so CHAT_MODEL and
    CODE_MODEL are checked for their form only (the engine checks the files themselves).
    """

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
            message = (
                check_model_name(value, "the engine's host")
                if models_remote
                else check_model_path(value, models_dir)
            )
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


def unknown_key_message(key: str) -> str:
    close = difflib.get_close_matches(key.upper(), list(FIELDS), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{key} is not a setting llm-tui knows{hint}; `llm-tui config list` shows them"


def describe(key: str) -> Field:
    try:
        return FIELDS[key]
    except KeyError:
        raise EnvFileError(unknown_key_message(key)) from None
