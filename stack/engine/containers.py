"""One container of the stack: create and start it from its spec, stop and remove it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stack.engine import plan as svc
from stack.engine.errors import EngineError, api_error_text, explain_api_error
from stack.engine.plan import ServiceSpec

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container


def create_and_start(
    client: docker.DockerClient, spec: ServiceSpec, stack_name: str, host_label: str = ""
) -> Container:
    """Create the container ``spec`` describes on the stack network and start it.

    A start that fails (no GPU runtime, a taken port) leaves nothing behind. ``host_label``
    names a remote engine's host in the errors ("gpu-box over ssh").
    """
    from docker.errors import APIError
    from docker.types import DeviceRequest

    device_requests = None
    if spec.gpu is not None:
        device_requests = [
            DeviceRequest(
                count=spec.gpu.count,
                device_ids=list(spec.gpu.device_ids),
                capabilities=[["gpu"]],
            )
        ]
    ports = {f"{cport}/tcp": (address, hport) for cport, address, hport in spec.ports}
    try:
        container = client.containers.create(
            spec.image,
            command=list(spec.command),
            name=spec.name,
            detach=True,
            labels=spec.labels(stack_name),
            environment=spec.environment,
            volumes={host: {"bind": inside, "mode": mode} for host, inside, mode in spec.mounts},
            ports=ports,
            network=stack_name,
            init=True,
            healthcheck=spec.healthcheck,
            device_requests=device_requests,
        )
    except APIError as exc:
        raise explain_api_error(exc, image=spec.image, spec=spec) from None
    try:
        if spec.files:
            put_files(container, spec.files)
        container.start()
    except APIError as exc:
        # A failed start (no GPU runtime, port taken) leaves it in `created`: remove it.
        container.remove(force=True)
        raise explain_api_error(exc, image=spec.image, spec=spec, host=host_label) from None
    except BaseException:
        container.remove(force=True)
        raise
    return container


def put_files(container: Container, files: tuple[tuple[str, str], ...]) -> None:
    """Write each (absolute path, text) into ``container`` (created, not yet started)."""
    container.put_archive("/", tar_of({path.lstrip("/"): text.encode() for path, text in files}))


def tar_of(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    """A tar archive (gzip) holding ``files`` (relative path -> bytes), folders implied."""
    import io
    import tarfile
    import time

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as archive:
        now = time.time()
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, now
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def remove_container(container: Container, timeout: int = 10) -> None:
    """Stop (SIGTERM; `init=True` makes it quick) then remove."""
    from docker.errors import APIError, NotFound

    try:
        container.reload()
        if container.status in ("running", "restarting", "paused"):
            container.stop(timeout=timeout)
        container.remove(force=True)
    except NotFound:
        pass
    except APIError as exc:
        raise EngineError(
            f"the Docker Engine could not remove {container.name}: {api_error_text(exc)}",
            fix=f"retry, or remove it yourself (`docker rm -f {container.name}`)",
        ) from None


def check_ports_free(spec: ServiceSpec) -> None:
    """Refuse to start when a port the spec publishes is taken by another program."""
    from stack.doctor import port_is_free

    for _, address, port in spec.ports:
        if not port_is_free(address, port):
            key = "API_GATEWAY_PORT" if spec.role == svc.GATEWAY else "INFERENCE_PORT"
            raise EngineError(
                f"port {port} on {address} is already in use by another program "
                f"({key} for {spec.name})",
                fix=f"stop that program (see `ss -ltnp | grep {port}`) or "
                f"`llm-tui config set {key} <free port>`",
            )
