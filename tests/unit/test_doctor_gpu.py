"""Doctor checks and NVML readings (a fake NVML module stands in where no GPU exists)."""

from __future__ import annotations

import socket
import types
from pathlib import Path
from typing import Any

import pytest

from stack import doctor
from stack.doctor import Status
from stack.gpu import GpuUnavailable, read_gpus
from stack.settings import load_settings
from tests.support.gguf_factory import write_split_set, write_tiny_model, write_truncated


class FakeNvml(types.ModuleType):
    """The subset of pynvml we call, with one 6 GiB GPU (an RTX 4050 laptop)."""

    class NVMLError(Exception):
        pass

    class NVMLError_LibraryNotFound(NVMLError):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    def __init__(self, *, fail_init: bool = False, power: bool = True) -> None:
        super().__init__("pynvml")
        self.fail_init = fail_init
        self.power = power
        self.shut = False

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise self.NVMLError_LibraryNotFound("libnvidia-ml.so.1 not found")

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlSystemGetDriverVersion(self) -> str:
        return "560.94"

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"NVIDIA GeForce RTX 4050 Laptop GPU"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return types.SimpleNamespace(total=6 * 2**30, used=2**30, free=5 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return types.SimpleNamespace(gpu=37, memory=12)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return 61

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        if not self.power:
            raise self.NVMLError_NotSupported("N/A")
        return 42_500

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return 80_000


def test_gpu_reading_from_nvml() -> None:
    nvml = FakeNvml()
    (gpu,) = read_gpus(nvml)
    assert gpu.name == "NVIDIA GeForce RTX 4050 Laptop GPU"
    assert gpu.memory_free == 5 * 2**30
    assert (gpu.utilization, gpu.temperature, gpu.power_watts) == (37, 61, 42.5)
    assert nvml.shut


def test_unsupported_metric_is_none_not_a_failure() -> None:
    (gpu,) = read_gpus(FakeNvml(power=False))
    assert gpu.power_watts is None and gpu.utilization == 37


def test_no_driver_is_explained() -> None:
    with pytest.raises(GpuUnavailable, match="no NVIDIA driver found"):
        read_gpus(FakeNvml(fail_init=True))
    check = doctor.check_gpu(FakeNvml(fail_init=True))
    assert check.status is Status.WARN and "WSL2" in check.detail


def _driver_present() -> bool:
    """Whether the NVIDIA driver's NVML library loads here, asked without pynvml."""
    import ctypes

    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


def test_real_nvml_on_this_machine_answers_plainly() -> None:
    # The real pynvml, checked against an independent probe of the driver: a machine with
    # the driver must report its GPU, one without must say the driver is missing.
    check = doctor.check_gpu()
    if _driver_present():
        assert check.status is Status.OK, check
        assert "GiB free of VRAM" in check.detail
    else:
        assert check.status is Status.WARN, check
        assert "no NVIDIA driver found" in check.detail


def test_gpu_check_ok_with_a_gpu() -> None:
    check = doctor.check_gpu(FakeNvml())
    assert check.status is Status.OK and "5.0 GiB free" in check.detail


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write_tiny_model(tmp_path / "models" / "ok.gguf")
    return tmp_path


def settings_with(home: Path, text: str) -> Any:
    (home / ".env").write_text(text)
    return load_settings(home / ".env")


def test_models_check_reads_the_header(home: Path) -> None:
    assert doctor.check_models(settings_with(home, "CHAT_MODEL=ok.gguf\n")).status is Status.OK
    write_truncated(home / "models" / "cut.gguf")
    check = doctor.check_models(settings_with(home, "CHAT_MODEL=cut.gguf\n"))
    assert check.status is Status.FAIL and "short of its last tensor" in check.detail
    shards = write_split_set(home / "models", "set", shards=3)
    shards[2].unlink()
    check = doctor.check_models(settings_with(home, "CHAT_MODEL=set-00001-of-00003.gguf\n"))
    assert check.status is Status.FAIL and "set-00003-of-00003.gguf" in check.detail


def test_models_check_without_models(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    check = doctor.check_models(settings_with(tmp_path, ""))
    assert check.status is Status.WARN and "Models screen" in check.fix


def test_ports_check_names_a_taken_port(home: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        settings = settings_with(home, f"API_GATEWAY_PORT={port}\nINFERENCE_PORT=\n")
        check = doctor.check_ports(settings, stack_ports=set)
        ours = doctor.check_ports(settings, stack_ports=lambda: {port})
    assert check.status is Status.WARN and f"API_GATEWAY_PORT {port}" in check.detail
    assert ours.status is Status.OK and "in use by this stack" in ours.detail


def test_a_port_its_last_server_closed_is_free_though_a_connection_lingers() -> None:
    # A server that closes a connection first leaves it in TIME_WAIT on the server's port
    # (a swap removes llama-server while the GPU panel has just read its /metrics): the
    # engine can publish that port again at once, so it is not "in use by another program".
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    assert not doctor.port_is_free("127.0.0.1", port)  # listening: taken
    served.close()  # the server closes first: TIME_WAIT stays on its side
    client.recv(1)
    client.close()
    listener.close()
    # What a bind without SO_REUSEADDR meets:
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    assert doctor.port_is_free("127.0.0.1", port)
