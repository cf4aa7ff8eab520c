"""GPU numbers from a remote engine's host, read there by `nvidia-smi` in our inference container.

This machine's NVML describes this machine's GPU, not the host's. The NVIDIA runtime puts
`nvidia-smi` into every container it gives a GPU (the ``utility`` capability), so the
running inference container on the host can say what the host's GPUs do: one ``exec`` per
reading, a few hundred bytes back, the same `GpuSample`s the panels and charts draw.
Per-process memory is not split by container there (host PIDs mean nothing here).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from stack.engine import plan as svc
from stack.errors import LlmTuiError
from stack.gpu.llama_metrics import LlamaMetrics, MetricsUnavailable
from stack.gpu.nvml import GpuSample, GpuUnavailable, open_nvml
from stack.gpu.sampler import GpuSampler

if TYPE_CHECKING:
    import docker

    from stack.engine.endpoint import Endpoint
    from stack.gpu.sampler import GpuReader

MiB = 1024 * 1024
QUERY = (
    "index",
    "name",
    "memory.total",
    "memory.used",
    "utilization.gpu",
    "temperature.gpu",
    "power.draw",
    "power.limit",
    "clocks.gr",
    "clocks.mem",
    "clocks.max.gr",
)
COMMAND = ["nvidia-smi", f"--query-gpu={','.join(QUERY)}", "--format=csv,noheader,nounits"]


def _number(text: str) -> float | None:
    """nvidia-smi's value, or None for "[N/A]", "[Not Supported]" and the like."""
    try:
        return float(text)
    except ValueError:
        return None


def _whole(text: str) -> int | None:
    value = _number(text)
    return None if value is None else round(value)


def parse_gpu_query(text: str) -> list[GpuSample]:
    """``nvidia-smi --query-gpu=QUERY --format=csv,noheader,nounits`` as samples."""
    samples = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != len(QUERY) or _whole(fields[0]) is None:
            continue  # a warning line, not a GPU
        value = dict(zip(QUERY, fields, strict=True))
        samples.append(
            GpuSample(
                index=_whole(value["index"]) or 0,
                name=value["name"],
                memory_total=(_whole(value["memory.total"]) or 0) * MiB,
                memory_used=(_whole(value["memory.used"]) or 0) * MiB,
                utilization=_whole(value["utilization.gpu"]),
                temperature=_whole(value["temperature.gpu"]),
                power_watts=_number(value["power.draw"]),
                power_limit_watts=_number(value["power.limit"]),
                clock_graphics_mhz=_whole(value["clocks.gr"]),
                clock_memory_mhz=_whole(value["clocks.mem"]),
                clock_graphics_max_mhz=_whole(value["clocks.max.gr"]),
                processes=None,
            )
        )
    return samples


class HostGpus:
    """A `GpuReader` for the engine's host: `nvidia-smi` in our running inference container.

    The sampler closes its reader after each failed reading and opens it again on the
    next tick; `close` keeps a live connection for that (an SSH login per tick would be
    wasted while the stack is down) and drops a dead one. `shutdown` ends it.
    """

    def __init__(self, endpoint: Endpoint, client: docker.DockerClient | None = None) -> None:
        self.endpoint = endpoint
        self.host = endpoint.label  # "gpu-box over ssh", for messages
        self.client = client
        self._container: Any = None

    def _connected(self) -> docker.DockerClient:
        if self.client is None:
            from stack.engine.connection import connect

            try:
                self.client = connect(endpoint=self.endpoint)
            except LlmTuiError as error:
                raise GpuUnavailable(error.message) from None
        return self.client

    def _find(self) -> Any:
        roles = (svc.INFERENCE, svc.INFERENCE_CODE)
        found = self._connected().containers.list(
            filters={"label": svc.LABEL_ROLE, "status": "running"}, sparse=True
        )
        ours = [c for c in found if (c.attrs.get("Labels") or {}).get(svc.LABEL_ROLE) in roles]
        if not ours:
            raise GpuUnavailable(
                f"the GPU numbers of {self.host} come from its inference container: "
                "they show once the stack runs there"
            )
        return ours[0]

    def sample(self) -> list[GpuSample]:
        from docker.errors import APIError, NotFound

        try:
            for attempt in (1, 2):
                if self._container is None:
                    self._container = self._find()
                try:
                    code, output = self._container.exec_run(COMMAND)
                    break
                except (NotFound, APIError):
                    self._container = None  # stopped or replaced (a swap): look again
                    if attempt == 2:
                        raise
        except GpuUnavailable:
            raise
        except Exception as exc:  # the engine went away: said, and tried again next tick
            raise GpuUnavailable(f"cannot read the GPUs of {self.host}: {exc}") from None
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        if code in (126, 127) or "executable file not found" in text:
            raise GpuUnavailable(
                f"the inference container on {self.host} has no nvidia-smi: it runs without "
                "the NVIDIA runtime (GPU=none, or no nvidia-container-toolkit there: "
                "`llm-tui doctor`)"
            )
        if code != 0:
            last = text.strip().splitlines()[-1:] or [f"exit code {code}"]
            raise GpuUnavailable(f"nvidia-smi on {self.host} failed: {last[0]}")
        return parse_gpu_query(text)

    def close(self) -> None:
        from stack.engine.connection import client_is_alive

        self._container = None
        if self.client is not None and not client_is_alive(self.client):
            self.shutdown()

    def shutdown(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):  # its connection may be gone already
                client.close()


def open_engine_gpus(endpoint: Endpoint | None = None) -> GpuReader:
    """This machine's NVML for a local engine; the host's GPUs for one on another machine."""
    from stack.engine.endpoint import resolve_endpoint

    target = endpoint or resolve_endpoint()
    if not target.is_remote:
        return open_nvml()
    return HostGpus(target)


class HostMetrics(LlamaMetrics):
    """llama-server's /metrics on a remote host listens on that host's network, not ours:
    said at once, instead of a connection that waits for its timeout on every tick."""

    def read(self) -> dict[str, float]:
        raise MetricsUnavailable(
            "tokens/s is not read from the engine's host (its /metrics is there)"
        )


def engine_gpu_sampler() -> GpuSampler:
    """The GPU sampler for the engine this process drives (chosen once: it never changes)."""
    from stack.engine.endpoint import resolve_endpoint

    endpoint = resolve_endpoint()
    if not endpoint.is_remote:
        return GpuSampler()
    reader = HostGpus(endpoint)  # one per sampler: its connection outlives failed readings
    return GpuSampler(lambda: reader, metrics=HostMetrics)
