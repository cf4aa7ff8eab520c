"""Helpers for the engine tier: a Docker client, the locally built test images, and a sandbox
that removes every container and network a test made.

Start an engine with ``eval "$(scripts/dockerd start)"`` and build the images with
``.venv/bin/python scripts/test-images``. When either is missing the tests are skipped (or,
under ``CI=true``, fail) through :func:`tests.support.tiers.unavailable`.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from tests.support.tiers import unavailable

BASE_IMAGE = "llm-tui-test/base:bookworm"
BUSYBOX_IMAGE = "llm-tui-test/busybox:1"
LLAMA_IMAGE = "llm-tui-test/llama-server:cpu"
LITELLM_VERSION = "1.106.2"
LITELLM_IMAGE = f"llm-tui-test/litellm:{LITELLM_VERSION}"
TEST_IMAGES = (BASE_IMAGE, BUSYBOX_IMAGE, LLAMA_IMAGE, LITELLM_IMAGE)

# Every container and network a sandbox makes carries this label, set to the sandbox's run id.
RUN_LABEL = "llm-tui-test.run"
START_HINT = 'start one: eval "$(scripts/dockerd start)"'


def engine_client(timeout: int = 30) -> tuple[Any | None, str]:
    """A Docker client that answers a ping, or ``(None, reason)``."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError as exc:
        return None, f"the docker SDK is missing ({exc})"
    try:
        client = docker.from_env(timeout=timeout)
    except DockerException as exc:
        return None, f"{exc} ({START_HINT})"
    try:
        client.ping()
    except DockerException as exc:
        client.close()
        return None, f"the engine does not answer a ping: {exc} ({START_HINT})"
    return client, ""


def require_engine(timeout: int = 30) -> Any:
    """A Docker client; skips (or fails under CI) when no engine answers."""
    client, reason = engine_client(timeout)
    if client is None:
        unavailable("Docker Engine", reason)
    return client


def require_images(client: Any, *tags: str) -> None:
    """Skip (or fail under CI) unless every image in ``tags`` is present in the engine."""
    from docker.errors import ImageNotFound

    missing = []
    for tag in tags or TEST_IMAGES:
        try:
            client.images.get(tag)
        except ImageNotFound:
            missing.append(tag)
    if missing:
        unavailable("test image", f"{', '.join(missing)} missing; run scripts/test-images")


@dataclass(frozen=True)
class RunResult:
    """What a finished one-shot container left behind."""

    exit_code: int
    output: str


class EngineSandbox:
    """Tracks what a test creates in the engine and removes it all (forcefully) at the end.

    Everything made through the sandbox carries ``RUN_LABEL=<run_id>``, so cleanup also finds
    objects created with :attr:`labels` by other code. Use as a context manager or call
    :meth:`cleanup` from a fixture's teardown.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.run_id = uuid.uuid4().hex
        self.labels = {RUN_LABEL: self.run_id}
        self._containers: list[Any] = []
        self._networks: list[Any] = []

    def __enter__(self) -> EngineSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def name(self, stem: str) -> str:
        """A container or network name unique to this sandbox."""
        return f"llmt-{stem}-{self.run_id[:8]}"

    def track(self, obj: Any) -> Any:
        """Remove ``obj`` (a container or network made elsewhere) at cleanup too."""
        from docker.models.networks import Network

        (self._networks if isinstance(obj, Network) else self._containers).append(obj)
        return obj

    def _labelled(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**kwargs, "labels": {**(kwargs.get("labels") or {}), **self.labels}}

    def network(self, stem: str = "net", **kwargs: Any) -> Any:
        """Create a labelled bridge network named after ``stem``."""
        kwargs.setdefault("driver", "bridge")
        return self.track(self.client.networks.create(self.name(stem), **self._labelled(kwargs)))

    def start(self, image: str, command: str | list[str] | None = None, **kwargs: Any) -> Any:
        """Start a detached, labelled container (with an init process, so it stops fast)."""
        kwargs.setdefault("init", True)
        kwargs["detach"] = True
        container = self.client.containers.create(image, command, **self._labelled(kwargs))
        self.track(container)
        container.start()
        return container

    def run(
        self,
        image: str,
        command: str | list[str] | None = None,
        *,
        timeout: float = 60,
        **kwargs: Any,
    ) -> RunResult:
        """Run a container to completion; return its exit code and output, then remove it."""
        container = self.start(image, command, **kwargs)
        try:
            status = container.wait(timeout=timeout)
            output = container.logs(stdout=True, stderr=True).decode(errors="replace")
            return RunResult(int(status["StatusCode"]), output)
        finally:
            self._remove_container(container)

    def _remove_container(self, container: Any) -> None:
        from docker.errors import NotFound

        with contextlib.suppress(NotFound):
            container.remove(force=True, v=True)
        if container in self._containers:
            self._containers.remove(container)

    def leftovers(self) -> list[str]:
        """Names of containers and networks of this sandbox that still exist."""
        label = f"{RUN_LABEL}={self.run_id}"
        containers = self.client.containers.list(all=True, filters={"label": label})
        networks = self.client.networks.list(filters={"label": label})
        return [obj.name for obj in [*containers, *networks]]

    def cleanup(self) -> None:
        """Remove every container, then every network, of this sandbox; raise on failures."""
        from docker.errors import APIError, NotFound

        label = f"{RUN_LABEL}={self.run_id}"
        containers = {c.id: c for c in self._containers}
        for found in self.client.containers.list(all=True, filters={"label": label}):
            containers[found.id] = found
        networks = {n.id: n for n in self._networks}
        for found in self.client.networks.list(filters={"label": label}):
            networks[found.id] = found

        errors: list[str] = []
        for container in containers.values():
            try:
                container.remove(force=True, v=True)
            except NotFound:
                pass
            except APIError as exc:
                errors.append(f"container {container.name}: {exc}")
        for network in networks.values():
            try:
                network.remove()
            except NotFound:
                pass
            except APIError as exc:
                errors.append(f"network {network.name}: {exc}")
        self._containers.clear()
        self._networks.clear()
        if errors:
            raise RuntimeError("engine sandbox cleanup failed: " + "; ".join(errors))


def assert_same_rows(printed: list[dict[str, Any]], *reads: list[Any]) -> None:
    """Rows as `status --json` prints them (as_dict) against `ServiceStatus` rows read
    before and after them: equal to one of those reads, uptimes left out (a container's
    health may turn from starting to healthy between two reads)."""
    import dataclasses

    got = [{**row, "uptime_s": None} for row in printed]
    for row in got:
        del row["up_to_date"]
    wanted = []
    for rows in reads:
        want = [{**dataclasses.asdict(row), "uptime_s": None} for row in rows]
        for row in want:
            row["ports"], row["drift"] = list(row["ports"]), list(row["drift"])
        if got == want:
            return
        wanted.append(want)
    assert got == wanted[-1]  # none matched: pytest shows the difference from the last
