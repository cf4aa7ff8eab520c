"""A fake `libnvidia-ml.so.1` (fake_nvml.c) that the real `pynvml` loads, and its script.

`build()` compiles the library with gcc into the test cache (keyed by the source's hash,
so an edit rebuilds it); `scripts/test` does that up front. A test writes what the GPUs
report with `NvmlScript.write(...)` and runs the code under test in a process started
with `NvmlScript.environment()`: LD_LIBRARY_PATH puts the fake ahead of any real driver,
for that process only. The pytest process itself never loads it, so on a machine with a
GPU the real-driver tests beside these still reach the real driver.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.tiers import unavailable

SOURCE = Path(__file__).with_name("fake_nvml.c")
LIBRARY = "libnvidia-ml.so.1"
SCRIPT_VARIABLE = "LLM_TUI_FAKE_NVML"
LOG_VARIABLE = "LLM_TUI_FAKE_NVML_LOG"
GIB = 2**30
NOT_SUPPORTED = "NOT_SUPPORTED"
GPU_IS_LOST = "GPU_IS_LOST"

Value = int | str | None  # a number, an NVML error name, or None (left out: NOT_SUPPORTED)


class BuildFailed(RuntimeError):
    pass


def cache_dir() -> Path:
    base = os.environ.get("LLM_TUI_CACHE") or Path.home() / ".cache" / "llm-tui-test"
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    return Path(base).expanduser() / f"fake-nvml-{digest}"


def build() -> Path:
    """The folder holding the built library (compiled now if this source is not yet)."""
    folder = cache_dir()
    if (folder / LIBRARY).is_file():
        return folder
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise BuildFailed("gcc is not installed (apt-get install gcc)")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        target = Path(scratch) / LIBRARY
        command = [
            compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
            f"-Wl,-soname,{LIBRARY}", "-o", str(target), str(SOURCE), "-lpthread",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BuildFailed(f"gcc failed:\n{result.stderr.strip()}")
        os.replace(target, folder / LIBRARY)  # whole, even with builds racing
    return folder


def require_fake_nvml() -> Path:
    """For fixtures: the built library's folder, or skip (fail under CI) saying why."""
    try:
        return build()
    except (BuildFailed, OSError) as error:
        unavailable("fake NVML library", str(error))


@dataclass
class FakeGpu:
    """What one GPU reports. Numbers as NVML gives them (bytes, %, °C, mW, MHz)."""

    name: str = "NVIDIA GeForce RTX 4050 Laptop GPU"
    memory_total: int = 6 * GIB
    memory_used: Value = int(4.3 * GIB)  # or an error name for the whole memory call
    utilization: Value = 63
    memory_utilization: int = 41
    temperature: Value = 61
    power_mw: Value = 28_400
    power_limit_mw: Value = 80_000
    clock_graphics: Value = 1_800
    clock_memory: Value = 7_001
    max_clock_graphics: Value = 2_505
    # (pid, bytes or None where the driver does not say), or an error name.
    compute_processes: Sequence[tuple[int, int | None]] | str = ()
    graphics_processes: Sequence[tuple[int, int | None]] | str = ()
    lost: bool = False


def _processes(listing: Sequence[tuple[int, int | None]] | str) -> str:
    if isinstance(listing, str):
        return listing
    return " ".join(f"{pid}:{'NA' if used is None else used}" for pid, used in listing)


def render(
    gpus: Sequence[FakeGpu], *, init: str = "OK", driver: str = "550.54.15", count: Value = None
) -> str:
    lines = [
        f"init = {init}",
        f"driver = {driver}",
        f"count = {len(gpus) if count is None else count}",
    ]
    for index, gpu in enumerate(gpus):
        values: dict[str, Value] = {
            "name": gpu.name,
            "memory": gpu.memory_used
            if isinstance(gpu.memory_used, str)
            else f"{gpu.memory_total} {gpu.memory_used}",
            "utilization": gpu.utilization
            if not isinstance(gpu.utilization, int)
            else f"{gpu.utilization} {gpu.memory_utilization}",
            "temperature": gpu.temperature,
            "power": gpu.power_mw,
            "power_limit": gpu.power_limit_mw,
            "clock.graphics": gpu.clock_graphics,
            "clock.sm": gpu.clock_graphics,
            "clock.memory": gpu.clock_memory,
            "max_clock.graphics": gpu.max_clock_graphics,
            "compute_processes": _processes(gpu.compute_processes),
            "graphics_processes": _processes(gpu.graphics_processes),
            "lost": 1 if gpu.lost else 0,
        }
        lines += [
            f"gpu.{index}.{key} = {value}" for key, value in values.items() if value is not None
        ]
    return "\n".join(lines) + "\n"


@dataclass
class NvmlScript:
    """The script file the fake library reads, and the environment that loads it."""

    path: Path
    library_dir: Path
    log: Path | None = None
    written: list[str] = field(default_factory=list)

    def write(self, gpus: Sequence[FakeGpu], **options: str | Value) -> None:
        """Replace what the GPUs report; a running process sees it on its next call."""
        text = render(gpus, **options)  # type: ignore[arg-type]
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(text)
        os.replace(temporary, self.path)  # atomic: the library never reads half a file
        self.written.append(text)

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        existing = env.get("LD_LIBRARY_PATH", "")
        env["LD_LIBRARY_PATH"] = str(self.library_dir) + (f":{existing}" if existing else "")
        env[SCRIPT_VARIABLE] = str(self.path)
        if self.log is not None:
            env[LOG_VARIABLE] = str(self.log)
        return env

    def calls(self) -> list[str]:
        """The NVML entry points called so far (when a log was asked for)."""
        if self.log is None or not self.log.exists():
            return []
        return self.log.read_text().split()


def nvml_script(folder: Path, *, log: bool = False) -> NvmlScript:
    """A script in ``folder`` with one default GPU, and the library built."""
    script = NvmlScript(
        folder / "fake-nvml.txt", require_fake_nvml(), folder / "nvml-calls.log" if log else None
    )
    script.write([FakeGpu()])
    return script


ROOT = Path(__file__).resolve().parents[3]


class GpuProbe:
    """`probe.py` in a process that loads the fake library: ``tick()`` / ``read()``."""

    def __init__(self, script: NvmlScript, options: Mapping[str, object] | None = None) -> None:
        import json
        import sys

        env = script.environment()
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_nvml.probe", json.dumps(options or {})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )

    def ask(self, command: str) -> dict[str, object]:
        import json

        process = self._process
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(command + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        if not line:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"the probe died answering {command!r}:\n{stderr}")
        answer: dict[str, object] = json.loads(line)
        return answer

    def tick(self) -> dict[str, object]:
        return self.ask("tick")

    def read(self) -> dict[str, object]:
        return self.ask("read")

    def close(self) -> None:
        process = self._process
        if process.poll() is None:
            assert process.stdin is not None
            process.stdin.write("quit\n")
            process.stdin.close()
            process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> GpuProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_app_probe(
    script: NvmlScript, env_file: Path, extra: Mapping[str, str] | None = None
) -> dict[str, object]:
    """`app_probe.py` (the real app, headless) in a process that loads the fake library."""
    import json
    import sys

    env = script.environment()
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.fake_nvml.app_probe", str(env_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=env_file.parent,
        timeout=240,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"the app probe failed ({done.returncode}):\n{done.stderr[-4000:]}")
    shown: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return shown
