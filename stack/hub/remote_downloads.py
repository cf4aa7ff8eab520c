"""Downloads into a remote engine's host: the same `Downloader`, run over there.

When the engine runs on another machine, a model is downloaded by that machine, straight
from the Hub into its models volume (or REMOTE_MODELS_DIR): a short-lived helper container
(`stack.engine.helper`) runs the very `Downloader` this machine uses, so every guarantee
holds there (resumable ``.part``, sha256 verified, a mismatch kept as ``.corrupt``, a
partial never deleted, one writer per part). Nothing of the model passes through here.

`RemoteDownloader` is a `Downloader` whose jobs run remotely: its `DownloadJob`s are the
same objects (progress, speed, ETA, pause, resume, cancel), fed from the helper's
progress messages. Pause and cancel stop the helper container; the part stays on the host
and the next run resumes it. `downloader_for` picks the local or the remote one.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from stack.errors import LlmTuiError
from stack.hub.downloads import Downloader
from stack.hub.jobs import DownloadError, DownloadJob, DownloadRequest, JobState, JobStopped
from stack.hub.parts import safe_relative

if TYPE_CHECKING:
    import docker

    from stack.settings import Settings

REMOTE_ROOT = Path("/models")  # where the helper sees the models (targets are named so)


class RemoteDownloader(Downloader):
    """Queue downloads that run on the engine's host, one helper container per job."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: docker.DockerClient | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            REMOTE_ROOT,
            endpoint=settings.hf_endpoint,
            token=settings.hub_token,
            token_withheld=settings.hub_token_withheld,
            **options,
        )
        self.settings = settings
        self._engine_client = client
        self._own_client: Any = None

    # -- where things land: on the host, named as the helper sees them -------------------

    def targets_for(self, request: DownloadRequest) -> tuple[Path, ...]:
        folder = safe_relative(request.folder, what="target folder", allow_empty=True)
        targets: list[Path] = []
        for remote in request.files:
            name = safe_relative(remote.path, what="file name").name
            target = REMOTE_ROOT.joinpath(*folder.parts, name)
            if target in targets:
                raise DownloadError(
                    f"two files of the request are both named {name!r}",
                    fix="download them separately into different folders",
                )
            targets.append(target)
        return tuple(targets)

    def relative(self, path: Path) -> str:
        try:
            return PurePosixPath(path).relative_to(REMOTE_ROOT).as_posix()
        except ValueError:
            return str(path)

    @property
    def where(self) -> str:
        """Where the models are, as a user says it (no connection needed)."""
        from stack.engine.endpoint import resolve_endpoint
        from stack.engine.helper import models_place

        return models_place(self.settings, resolve_endpoint())

    # -- the host's side ---------------------------------------------------------------

    def _docker(self) -> docker.DockerClient:
        if self._engine_client is not None:
            return self._engine_client
        from stack.engine.connection import client_is_alive, connect

        with self.lock:
            if self._own_client is None or not client_is_alive(self._own_client):
                self._own_client = connect()
            client: docker.DockerClient = self._own_client
            return client

    def _helper(self) -> Any:
        from stack.engine.connection import endpoint_of
        from stack.engine.helper import HostHelper

        client = self._docker()
        return HostHelper(client, self.settings, endpoint_of(client))

    def run_job(self, job: DownloadJob) -> None:
        """Run ``job`` on the host and mirror its progress (a worker's call)."""
        from stack.engine.helper import HelperStopped
        from stack.engine.remote_models import on_host_words

        helper = self._helper()
        payload = {
            "endpoint": self.endpoint,
            "token": self.token,
            "token_withheld": self.token_withheld,
            "request": _request_fields(job.request),
        }
        stop = threading.Event()

        def watch() -> None:  # pause and cancel only flip the job's flags
            while not stop.is_set() and not job.stop_requested:
                stop.wait(0.1)
            stop.set()

        watcher = threading.Thread(target=watch, name=f"remote-download-{job.id}", daemon=True)
        watcher.start()
        try:
            result = helper.run(
                "download", payload, on_message=lambda m: _mirror(job, m), stop=stop, writable=True
            )
        except HelperStopped:
            raise JobStopped from None
        except LlmTuiError as error:
            if job.stop_requested:
                raise JobStopped from None
            raise DownloadError(
                on_host_words(error.message, helper.where),
                fix=on_host_words(error.fix or "", helper.where) or None,
            ) from None
        finally:
            stop.set()
            watcher.join(timeout=5)
        _mirror(job, result)
        state = str(result.get("state"))
        if state == JobState.DONE:
            return
        if state == JobState.CANCELLED or job.stop_requested:
            raise JobStopped
        failure = result.get("error") or {}
        raise DownloadError(
            on_host_words(
                str(failure.get("message") or f"the download ended {state}"), helper.where
            ),
            fix=on_host_words(str(failure.get("fix") or ""), helper.where) or "retry",
        )

    def unfinished(self) -> list[DownloadRequest]:
        return [request for request, _ in self.interrupted()]

    def interrupted(self) -> list[tuple[DownloadRequest, int]]:
        from stack.engine.on_host import request_from

        answer = self._helper().run("interrupted")
        return [
            (request_from(item["request"]), int(item.get("present", 0)))
            for item in answer.get("found", [])
        ]

    def close(self, *, cancel: bool = True, timeout: float = 10.0) -> None:
        super().close(cancel=cancel, timeout=timeout)
        if self._own_client is not None:
            with contextlib.suppress(Exception):  # already gone with its connection
                self._own_client.close()
            self._own_client = None


def _mirror(job: DownloadJob, message: dict[str, Any]) -> None:
    """One progress message from the host, into the job here."""
    state = str(message.get("state", ""))
    job.current_file = message.get("current_file") or job.current_file
    done = int(message.get("bytes_done", job.bytes_done))
    if state == JobState.VERIFYING and job.state is not JobState.VERIFYING:
        job.bytes_done = done
        job.set_state(JobState.VERIFYING)
        return
    if state == JobState.RUNNING and job.state is JobState.VERIFYING:
        job.set_state(JobState.RUNNING)
    if done < job.bytes_done or (job.bytes_done == 0 and done > 0):
        job.set_bytes(done)  # a resumed part: no burst of speed from what was there
    else:
        job.bytes_done = done
    job.emit()


def _request_fields(request: DownloadRequest) -> dict[str, Any]:
    from stack.engine.on_host import request_fields

    return request_fields(request)


def downloader_for(settings: Settings, **options: Any) -> Downloader:
    """Where downloads go for these settings: MODELS_DIR here, or the engine's host."""
    if settings.engine_remote:
        return RemoteDownloader(settings, **options)
    return Downloader.from_settings(settings, **options)
