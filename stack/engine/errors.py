"""Docker and model-file failures mapped to plain answers: what happened and the fix."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stack.errors import LlmTuiError
from stack.models.splits import SPLIT_NAME
from stack.settings import check_model_path

if TYPE_CHECKING:
    from stack.engine.plan import ServiceSpec


class EngineError(LlmTuiError):
    """A stack operation failed; the message says why and what to do."""


@dataclass(frozen=True)
class ModelProblem:
    message: str
    fix: str


def model_problem(models_dir: Path, model: str) -> ModelProblem | None:
    """Why ``model`` cannot be served, checked before any container starts."""
    message = check_model_path(model, models_dir)
    if message:
        return ModelProblem(message, "download it in the Models screen or fix CHAT_MODEL")
    path = models_dir / model
    split = SPLIT_NAME.match(path.name)
    if split:
        count = int(split["count"])
        if int(split["index"]) != 1:
            first = f"{split['stem']}-00001-of-{split['count']}.gguf"
            return ModelProblem(
                f"is shard {int(split['index'])} of a split set", f"name the first shard: {first}"
            )
        missing = [
            f"{split['stem']}-{i:05d}-of-{count:05d}.gguf"
            for i in range(2, count + 1)
            if not (path.parent / f"{split['stem']}-{i:05d}-of-{count:05d}.gguf").is_file()
        ]
        if missing:
            return ModelProblem(
                f"split set incomplete: missing {', '.join(missing)}",
                "download every shard of the set into the same folder",
            )
    return None


def foreign_container_error(name: str, stack_name: str) -> EngineError:
    return EngineError(
        f"a container named {name!r} exists but was not created by llm-tui "
        f"(no llm-tui.stack={stack_name} label); it was left untouched",
        fix="remove or rename that container yourself, or set STACK_NAME to another name",
    )


def api_error_text(exc: Exception) -> str:
    """The engine's own words for a refused call (APIError.explanation), on one line."""
    text = str(getattr(exc, "explanation", None) or exc)
    return " ".join(text.split())


def explain_api_error(
    exc: Exception, *, image: str = "", spec: ServiceSpec | None = None, host: str = ""
) -> EngineError:
    """Turn a docker APIError/ImageNotFound into an answer a user can act on.

    ``host`` names a remote engine ("gpu-box over ssh"): the fixes then happen there.
    """
    text = str(getattr(exc, "explanation", None) or exc)
    lower = text.lower()
    name = spec.name if spec is not None else "the container"
    if "could not select device driver" in lower and "gpu" in lower:
        engine = f"the Docker Engine on {host}" if host else "the Docker Engine"
        there = " on that host" if host else ""
        return EngineError(
            f"{engine} has no NVIDIA container runtime, so it cannot give "
            f"{name} a GPU (nvidia-container-toolkit is missing{there})",
            fix=f"install nvidia-container-toolkit{there} and restart Docker (Docker Desktop: "
            "enable the WSL2 GPU support), or `llm-tui config set GPU none` to run on the CPU",
        )
    if "address already in use" in lower or "port is already allocated" in lower:
        port = _port_in(text) or (spec.ports[0][2] if spec and spec.ports else "?")
        return EngineError(
            f"port {port} is already in use, so {name} cannot publish it",
            fix=f"stop what uses it (`ss -ltnp | grep {port}`) or change the port in .env",
        )
    if "rlimit" in lower or "operation not permitted" in lower:
        return EngineError(
            f"the engine refused a resource setting for {name}: {text}",
            fix="this engine does not allow raising that limit; remove the option",
        )
    if "permission denied" in lower and "mount" in lower:
        return EngineError(
            f"the engine cannot read a mounted folder for {name}: {text}",
            fix="check MODELS_DIR's permissions (and that the engine can see that drive)",
        )
    if "no such file or directory" in lower and ("mount" in lower or "bind" in lower):
        return EngineError(
            f"the Docker Engine cannot see a folder mounted into {name}: {text}",
            fix="MODELS_DIR must be on a drive the engine shares (Docker Desktop: "
            "Settings → Resources → File sharing / WSL integration)",
        )
    if (
        "manifest unknown" in lower
        or "not found: manifest" in lower
        or ("pull access denied" in lower)
    ):
        return EngineError(
            f"image {image} does not exist in its registry (or needs a login)",
            fix="check the tag in .env (INFERENCE_IMAGE / GATEWAY_IMAGE) or `docker login`",
        )
    if (
        "no such host" in lower
        or "dial tcp" in lower
        or "temporary failure in name resolution" in lower
        or "timeout" in lower
        or "connection refused" in lower
    ):
        return EngineError(
            f"image {image} is not present locally and cannot be pulled (registry unreachable)",
            fix="connect to the network and retry, or set the image in .env to one you have "
            "locally (`docker images`)",
        )
    if "no such image" in lower or type(exc).__name__ == "ImageNotFound":
        return EngineError(
            f"image {image} is not present locally",
            fix="retry with network access so it can be pulled, or set a local image in .env",
        )
    if "conflict" in lower and "already in use" in lower:
        return EngineError(
            f"a container named {name} already exists",
            fix="run `llm-tui down` first, or remove it with `docker rm -f`",
        )
    return EngineError(f"the Docker Engine refused to run {name}: {text}")


def _port_in(text: str) -> str:
    match = re.search(r":(\d{2,5})(?:\D|$)", text)
    return match.group(1) if match else ""
