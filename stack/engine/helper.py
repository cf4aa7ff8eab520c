"""Short-lived helper containers on the engine's host: llm-tui's own code, run over there.

When the engine runs on another machine, the models live on that machine. Listing them,
reading their headers, checking a model before a start, deleting one and downloading one
happen there, in a container of GATEWAY_IMAGE (it has Python and httpx, and the stack needs
it anyway) with the models volume or folder mounted at ``/models``: `stack.engine.on_host`
is the program, this module starts it, reads its messages and stops it.

Only small things cross the connection: the `stack` package and a request going in (a
tar, ~100 KB), one JSON line per message coming out (at most ~10 a second while a download
runs). The container is removed afterwards, whatever happened; its name and labels say
what it is (``llm-tui.role=helper``). A stop (cancel, pause, quitting) stops the container:
the program inside cancels cleanly on SIGTERM, so a download keeps its part.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stack.engine import plan as svc
from stack.engine.containers import tar_of
from stack.engine.errors import EngineError, api_error_text
from stack.errors import LlmTuiError

if TYPE_CHECKING:
    import docker

    from stack.engine.endpoint import Endpoint
    from stack.settings import Settings

HELPER_ROOT = "/opt/llm-tui"
MARK = "@llm-tui "
STOP_TIMEOUT_S = 10
# Runs the helper with whichever interpreter the image has; too old a Python says so.
BOOTSTRAP = (
    "import sys\n"
    "if sys.version_info < (3, 11):\n"
    "    import json\n"
    "    print('@llm-tui ' + json.dumps({'type': 'error', 'message': 'the helper image has "
    "Python %d.%d; llm-tui needs 3.11 or newer there' % sys.version_info[:2], 'fix': "
    "'set GATEWAY_IMAGE to a LiteLLM image with Python 3.11+'}), flush=True)\n"
    "    sys.exit(3)\n"
    "sys.path.insert(0, '" + HELPER_ROOT + "')\n"
    "from stack.engine.on_host import main\n"
    "sys.exit(main())\n"
)

Message = dict[str, Any]


class HelperStopped(Exception):
    """The helper was stopped from this side before it answered."""


@functools.lru_cache(maxsize=1)
def stack_package() -> dict[str, bytes]:
    """The `stack` package's source files, as they go into the helper (read once)."""
    root = Path(__file__).resolve().parent.parent
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        if path.suffix in (".py", ".toml") or path.name == "py.typed":
            files[f"stack/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return files


def models_place(settings: Settings, endpoint: Endpoint | None = None) -> str:
    """The remote models' place, as a user says it: "the volume llm-tui-models on gpu-box"."""
    host = endpoint.name if endpoint is not None else "the engine's host"
    if settings.remote_models_dir:
        return f"{settings.remote_models_dir} on {host}"
    return f"the volume {svc.models_volume(settings)} on {host}"


class HostHelper:
    """Runs `stack.engine.on_host` tasks on the engine's host, one container per task."""

    def __init__(
        self,
        client: docker.DockerClient,
        settings: Settings,
        endpoint: Endpoint | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.endpoint = endpoint

    @property
    def where(self) -> str:
        return models_place(self.settings, self.endpoint)

    def ensure_models_volume(self) -> None:
        """The models volume, labelled as ours (a folder on the host needs nothing)."""
        from docker.errors import APIError, NotFound

        if self.settings.remote_models_dir:
            return
        name = svc.models_volume(self.settings)
        try:
            volume = self.client.volumes.get(name)
        except NotFound:
            try:
                self.client.volumes.create(
                    name,
                    labels={
                        svc.LABEL_STACK: self.settings.stack_name,
                        svc.LABEL_ROLE: "models",
                    },
                )
            except APIError as exc:
                raise EngineError(
                    f"the Docker Engine could not create the volume {name!r}: "
                    f"{api_error_text(exc)}",
                    fix="set REMOTE_MODELS_DIR to a folder on that host instead",
                ) from None
            return
        labels = (volume.attrs or {}).get("Labels") or {}
        if labels.get(svc.LABEL_STACK) != self.settings.stack_name:
            raise EngineError(
                f"a Docker volume named {name!r} exists on {self.where.split(' on ')[-1]} "
                "but was not created by llm-tui",
                fix="set REMOTE_MODELS_DIR to a folder on that host, or STACK_NAME to another name",
            )

    def run(
        self,
        task: str,
        payload: dict[str, Any] | None = None,
        *,
        on_message: Callable[[Message], None] | None = None,
        stop: threading.Event | None = None,
        writable: bool = False,
    ) -> Message:
        """Run ``task`` and return its result message; raise its error as `LlmTuiError`.

        ``on_message`` gets every other message (progress) on this thread. Setting
        ``stop`` stops the container and raises `HelperStopped`.
        """
        from docker.errors import APIError, ImageNotFound

        self.ensure_models_volume()
        image = self.settings.gateway_image
        from stack.engine.pull import ensure_image

        ensure_image(self.client, image, lambda _: None)
        name = f"{self.settings.stack_name}-helper-{task}-{uuid.uuid4().hex[:8]}"
        try:
            container = self.client.containers.create(
                image,
                entrypoint=["python3", "-c", BOOTSTRAP],
                command=[],
                name=name,
                detach=True,
                user="0:0",
                init=True,
                network_mode="host",  # downloads leave by the host's own network
                working_dir="/",
                environment={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"},
                labels={
                    svc.LABEL_STACK: self.settings.stack_name,
                    svc.LABEL_ROLE: svc.HELPER,
                    "llm-tui.task": task,
                },
                volumes={
                    svc.models_source(self.settings, remote=True): {
                        "bind": svc.CONTAINER_MODELS_DIR,
                        "mode": "rw" if writable else "ro",
                    }
                },
            )
        except ImageNotFound:
            raise EngineError(
                f"the helper image {image} is missing on {self.where.split(' on ')[-1]}",
                fix="run `llm-tui up` once (it pulls the images), or check GATEWAY_IMAGE",
            ) from None
        except APIError as exc:
            raise EngineError(
                f"the Docker Engine refused llm-tui's helper container: {api_error_text(exc)}",
                fix="check the engine with `llm-tui doctor`",
            ) from None
        try:
            return self._run_in(container, task, payload or {}, on_message, stop)
        finally:
            from docker.errors import NotFound

            try:
                container.remove(force=True)
            except (NotFound, APIError):
                pass
            except Exception:  # a dropped connection: the container is labelled, doctor finds it
                pass

    def _run_in(
        self,
        container: Any,
        task: str,
        payload: dict[str, Any],
        on_message: Callable[[Message], None] | None,
        stop: threading.Event | None,
    ) -> Message:
        from docker.errors import APIError

        request = json.dumps({"task": task, "payload": payload}).encode()
        root = HELPER_ROOT.lstrip("/")
        files = {f"{root}/{name}": data for name, data in stack_package().items()}
        files[f"{root}/request.json"] = request
        container.put_archive("/", tar_of(files, mode=0o600))
        try:
            container.start()
        except APIError as exc:
            text = api_error_text(exc)
            if "python3" in text and ("not found" in text or "no such file" in text.lower()):
                raise EngineError(
                    f"the helper image {self.settings.gateway_image} has no python3",
                    fix="set GATEWAY_IMAGE to a LiteLLM image (it has Python)",
                ) from None
            raise EngineError(
                f"llm-tui's helper container did not start: {text}",
                fix="check the engine with `llm-tui doctor`",
            ) from None
        from stack.engine.logs import LogFollower

        follower = LogFollower(container, follow=True, tail="all", timestamps=False)
        stopper: threading.Thread | None = None
        stopped = threading.Event()
        if stop is not None:

            def watch() -> None:
                while not stop.wait(0.1):
                    if stopped.is_set():
                        return
                stopped.set()
                with contextlib.suppress(Exception):  # gone already, or the link dropped
                    container.stop(timeout=STOP_TIMEOUT_S)

            stopper = threading.Thread(target=watch, name=f"helper-stop-{task}", daemon=True)
            stopper.start()
        result: Message | None = None
        others: deque[str] = deque(maxlen=20)
        try:
            for line in follower:
                text = line.text
                if not text.startswith(MARK):
                    if text.strip():
                        others.append(text)
                    continue
                try:
                    message = json.loads(text[len(MARK) :])
                except ValueError:
                    continue
                kind = message.get("type")
                if kind == "result":
                    result = message
                elif kind == "error":
                    raise LlmTuiError(str(message.get("message")), fix=message.get("fix"))
                elif on_message is not None:
                    on_message(message)
        finally:
            follower.close()
            was_stopped = stop is not None and stop.is_set()
            stopped.set()
            if stopper is not None:
                stopper.join(timeout=STOP_TIMEOUT_S + 5)
        if was_stopped and result is None:
            raise HelperStopped
        if result is None:
            status = container.wait(timeout=30)
            detail = "; ".join(list(others)[-3:]) or f"exit code {status.get('StatusCode')}"
            raise EngineError(
                f"llm-tui's helper on {self.where.split(' on ')[-1]} failed: {detail}",
                fix="retry; if it happens again, check GATEWAY_IMAGE (the helper runs in it)",
            )
        return result
