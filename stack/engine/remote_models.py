"""The models on a remote engine's host: list them, check them, delete them, there.

Every call runs one `stack.engine.helper` container on that host; the library is scanned
there (headers read in place, cached in the models folder itself), so nothing is copied
here but a JSON list. `scan_models` and `delete_model_files` choose: this machine's
MODELS_DIR for a local engine, the host's models for a remote one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack.engine.errors import ModelProblem
from stack.engine.helper import HostHelper
from stack.engine.plan import CONTAINER_MODELS_DIR
from stack.errors import LlmTuiError
from stack.models.header import GgufHeader
from stack.models.library import LibraryError, LocalModel

if TYPE_CHECKING:
    import docker

    from stack.settings import Settings


class RemoteModels:
    """One remote host's models (the volume or REMOTE_MODELS_DIR)."""

    def __init__(self, client: docker.DockerClient, settings: Settings) -> None:
        from stack.engine.connection import endpoint_of

        self.settings = settings
        self.helper = HostHelper(client, settings, endpoint_of(client))

    @property
    def where(self) -> str:
        return self.helper.where

    def scan(self) -> list[LocalModel]:
        settings = self.settings
        answer = self._run(
            "scan", {"chat_model": settings.chat_model, "code_model": settings.code_model}
        )
        return [local_model(entry) for entry in answer.get("models", [])]

    def problems(self, models: list[str]) -> dict[str, tuple[ModelProblem | None, str]]:
        """For each model: why it cannot be served (or None), and a header problem ("")."""
        return self.check(models)[0]

    def check(self, models: list[str]) -> tuple[dict[str, tuple[ModelProblem | None, str]], int]:
        """`problems`, and the bytes free where the models live (one helper run)."""
        answer = self._run("check", {"models": models})
        found: dict[str, tuple[ModelProblem | None, str]] = {}
        for model, entry in (answer.get("models") or {}).items():
            problem = (
                ModelProblem(self.words(entry["message"]), self.words(entry["fix"] or ""))
                if entry.get("message")
                else None
            )
            found[model] = (problem, self.words(entry.get("header", "")))
        return found, int(answer.get("free", 0))

    def problem(self, model: str) -> ModelProblem | None:
        return self.problems([model]).get(model, (None, ""))[0]

    def delete(self, model: str) -> tuple[list[str], int]:
        """Delete ``model`` (every shard) there; the files removed and the bytes freed."""
        answer = self._run("delete", {"model": model}, writable=True)
        return list(answer.get("removed", [])), int(answer.get("size", 0))

    def _run(self, task: str, payload: dict[str, Any], *, writable: bool = False) -> dict[str, Any]:
        try:
            return self.helper.run(task, payload, writable=writable)
        except LlmTuiError as error:
            raise type(error)(self.words(error.message), fix=self.words(error.fix or "")) from None

    def words(self, text: str) -> str:
        return on_host_words(text, self.where)


def on_host_words(text: str, where: str) -> str:
    """A message written inside the helper, said in terms of the host's models."""
    if not text:
        return text
    text = re.sub(
        rf"MODELS_DIR \({CONTAINER_MODELS_DIR}/?([^)]*)\)",
        lambda m: f"the models ({where}{': ' + m[1] if m[1] else ''})",
        text,
    )
    text = re.sub(rf"(?<![\w/]){CONTAINER_MODELS_DIR}(?=[/\s).,;:]|$)", where, text)
    return re.sub(r"(?<!REMOTE_)MODELS_DIR", "REMOTE_MODELS_DIR", text)


def local_model(entry: dict[str, Any]) -> LocalModel:
    header = entry.get("header")
    return LocalModel(
        relative_path=entry["relative_path"],
        path=Path(CONTAINER_MODELS_DIR) / entry["relative_path"],
        shards=tuple(entry.get("shards", ())),
        size=int(entry.get("size", 0)),
        mtime_ns=int(entry.get("mtime_ns", 0)),
        header=GgufHeader.from_dict(header) if header is not None else None,
        broken=entry.get("broken", ""),
        is_chat=bool(entry.get("is_chat")),
        is_code=bool(entry.get("is_code")),
    )


# --- the choice between here and there ---------------------------------------------------


def scan_models(settings: Settings, client: docker.DockerClient | None = None) -> list[LocalModel]:
    """The library: MODELS_DIR here, or the models on a remote engine's host."""
    if not settings.engine_remote:
        from stack.models.library import scan_library

        return scan_library(
            settings.models_dir, chat_model=settings.chat_model, code_model=settings.code_model
        )
    found: list[LocalModel] = _remote(settings, client, lambda models: models.scan())
    return found


def model_problems(
    settings: Settings, models: list[str], client: docker.DockerClient | None = None
) -> dict[str, ModelProblem | None]:
    """Why each of ``models`` cannot be served (None: it can), checked where they live."""
    if not settings.engine_remote:
        from stack.engine.errors import model_problem

        return {model: model_problem(settings.models_dir, model) for model in models}
    found = _remote(settings, client, lambda there: there.problems(models))
    return {model: found.get(model, (None, ""))[0] for model in models}


def delete_model_files(
    settings: Settings, model: LocalModel, client: docker.DockerClient | None = None
) -> list[str]:
    """Delete every file of ``model`` where it lives; the relative paths removed."""
    if not settings.engine_remote:
        from stack.models.library import delete_model

        root = settings.models_dir.expanduser().resolve()
        return [p.relative_to(root).as_posix() for p in delete_model(settings.models_dir, model)]

    def delete(models: RemoteModels) -> list[str]:
        removed, _ = models.delete(model.relative_path)
        if not removed:
            raise LibraryError(f"{model.relative_path} was not found on {models.where}")
        return removed

    removed: list[str] = _remote(settings, client, delete)
    return removed


def _remote(settings: Settings, client: docker.DockerClient | None, work: Any) -> Any:
    from stack.engine.connection import connect

    own = client is None
    used = connect() if client is None else client
    try:
        return work(RemoteModels(used, settings))
    finally:
        if own:
            used.close()
