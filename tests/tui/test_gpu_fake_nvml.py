"""The GPU views of the real app on the fake `libnvidia-ml.so.1`, through the real pynvml.

The app runs in a process of its own that loads the library (LD_LIBRARY_PATH is read at
process start, and this test process must keep the real driver for the tests that want
it); it prints what the views show. No engine here: every GPU process is "other".
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.fake_nvml import GIB, NOT_SUPPORTED, FakeGpu, nvml_script, run_app_probe
from tests.tui.conftest import write_env

pytestmark = pytest.mark.tui

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/llm-tui-test.sock"}


def test_values_na_and_a_lost_gpu_through_pynvml(tmp_path: Path) -> None:
    env_file = write_env(tmp_path, CHAT_MODEL="")
    (tmp_path / "models").mkdir()
    script = nvml_script(tmp_path)
    script.write(
        [
            FakeGpu(
                name="NVIDIA GeForce RTX 4090",
                memory_total=24 * GIB,
                memory_used=10 * GIB,
                utilization=88,
                temperature=NOT_SUPPORTED,
                power_mw=301_000,
                power_limit_mw=450_000,
                compute_processes=[(os.getpid(), GIB)],  # a host process: "other"
            ),
            FakeGpu(name="NVIDIA RTX A2000", lost=True),
        ]
    )
    shown = run_app_probe(script, env_file, NO_ENGINE)
    assert shown["panel_title"] == "GPUs (2)"
    panel = str(shown["panel"])
    assert "util  88%" in panel and "10.0/24.0 GiB" in panel and "temp N/A" in panel
    assert "301/450 W" in panel
    assert "GPU 1 is lost" in panel  # lost from the first reading: no name was ever read
    title = str(shown["title"])
    assert "GPU 0 RTX 4090" in title and "[ ] other GPUs (2)" in title
    assert "other process 1.00 GiB (1)" in str(shown["usage"])
    charts = shown["charts"]
    assert isinstance(charts, dict)
    assert charts["temp"]["empty"] == "N/A: this GPU does not report temperature"
    assert charts["util"]["title"] == "Utilisation 88%" and not charts["util"]["empty"]
    assert charts["power"]["title"] == "Power W (limit 450)"
    assert charts["tokens"]["empty"] == "no llama-server running"


def test_a_driver_that_is_not_loaded(tmp_path: Path) -> None:
    env_file = write_env(tmp_path)
    (tmp_path / "models").mkdir()
    script = nvml_script(tmp_path)
    script.write([FakeGpu()], init="DRIVER_NOT_LOADED")
    shown = run_app_probe(script, env_file, NO_ENGINE)
    assert "the NVIDIA driver is not loaded" in str(shown["panel"])
    assert "No GPU reading" in str(shown["title"])
