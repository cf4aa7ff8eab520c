"""Pulling an image with progress, and stopping a pull from another thread."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from stack.cancel import CancelToken, closing_on_cancel
from stack.engine.errors import EngineError, explain_api_error

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

PULL_PROGRESS_INTERVAL_S = 0.5


class PullSummary:
    """Per-layer pull events folded into one line: bytes and layers done so far."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.layers: dict[str, tuple[int, int]] = {}  # id -> (current, total) bytes
        self.done: set[str] = set()

    def update(self, event: dict[str, Any]) -> None:
        layer = str(event.get("id", ""))
        status = str(event.get("status", ""))
        if not layer or layer == self.image.rpartition(":")[2]:
            return
        detail = event.get("progressDetail") or {}
        if status == "Downloading" and detail.get("total"):
            self.layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
        elif status in ("Download complete", "Pull complete", "Already exists"):
            self.done.add(layer)
            _, total = self.layers.get(layer, (0, 0))
            self.layers[layer] = (total, total)
        else:
            self.layers.setdefault(layer, (0, 0))

    def line(self) -> str:
        current = sum(c for c, _ in self.layers.values())
        total = sum(t for _, t in self.layers.values())
        size = f"{current / 1e9:.2f}/{total / 1e9:.2f} GB, " if total else ""
        return f"pulling {self.image}: {size}{len(self.done)}/{len(self.layers)} layers"


def pull_stream(api: Any, repository: str, tag: str) -> tuple[Iterator[dict[str, Any]], Any]:
    """`APIClient.pull(stream=True, decode=True)`, plus a function that aborts it.

    The SDK's generator cannot be stopped from another thread; shutting the response's
    socket down can, so cancelling a pull (quitting the TUI) never waits for the registry.
    """
    import contextlib
    import socket

    from docker import auth

    registry, _ = auth.resolve_repository_name(repository)
    headers = {}
    header = auth.get_config_header(api, registry)
    if header:
        headers["X-Registry-Auth"] = header
    response = api._post(
        api._url("/images/create"),
        params={"tag": tag, "fromImage": repository},
        headers=headers,
        stream=True,
        timeout=None,
    )
    api._raise_for_status(response)

    def close() -> None:
        with contextlib.suppress(Exception):
            sock = api._get_raw_response_socket(response)
            getattr(sock, "_sock", sock).shutdown(socket.SHUT_RDWR)
        response.close()

    return api._stream_helper(response, decode=True), close


def pull_events(
    client: docker.DockerClient, image: str, *, cancel: CancelToken | None = None
) -> Iterator[dict[str, Any]]:
    """The engine's pull events (one per layer update); errors become EngineError.

    Cancelling closes the pull's HTTP response, which unblocks the reading thread.
    """
    from docker.errors import APIError, DockerException

    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag:
        repository, tag = image, ""
    try:
        stream, close = pull_stream(client.api, repository, tag or "latest")
        with closing_on_cancel(cancel, close):
            for event in stream:
                if cancel is not None:
                    cancel.check(f"pulling {image}")
                if "error" in event:
                    raise EngineError(
                        f"cannot pull {image}: {event['error']}",
                        fix="check the network and the tag, or set a local image in .env",
                    )
                yield event
    except (APIError, DockerException, OSError) as exc:
        if cancel is not None:
            cancel.check(f"pulling {image}")
        raise explain_api_error(exc, image=image) from None


def ensure_image(
    client: docker.DockerClient,
    image: str,
    progress: Progress,
    *,
    cancel: CancelToken | None = None,
) -> None:
    """Pull ``image`` if it is missing, reporting per-layer progress (throttled)."""
    from docker.errors import APIError, ImageNotFound

    try:
        client.images.get(image)
        return
    except ImageNotFound:
        pass
    except APIError as exc:
        raise explain_api_error(exc, image=image) from None
    progress(f"pulling {image}")
    summary = PullSummary(image)
    last = 0.0
    for event in pull_events(client, image, cancel=cancel):
        summary.update(event)
        now = time.monotonic()
        if now - last >= PULL_PROGRESS_INTERVAL_S:
            progress(summary.line())
            last = now
    progress(summary.line())
    try:
        client.images.get(image)
    except (ImageNotFound, APIError) as exc:
        raise explain_api_error(exc, image=image) from None
