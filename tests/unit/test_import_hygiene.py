"""The import contract, checked in fresh interpreters.

- `stack/` is the pure core: no module of it loads Textual, Rich or a front end (`tui`,
  `cli`), and none loads a heavy client (docker, huggingface_hub, httpx, pynvml) at import.
- `cli/` is a front end that stays fast: none of its modules loads Textual, Rich or `tui`
  at import (only starting the TUI does), nor a heavy client.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import cli
import stack

pytestmark = pytest.mark.unit

UI = ("textual", "rich", "tui")
FRONT_ENDS = ("tui", "cli")
# Heavy clients are imported inside the functions that use them, never at module scope.
HEAVY = ("docker", "huggingface_hub", "httpx", "pynvml", "paramiko")


def modules_of(package: object) -> list[str]:
    path = [str(Path(package.__file__).parent)]  # type: ignore[attr-defined]
    prefix = package.__name__ + "."  # type: ignore[attr-defined]
    found = [info.name for info in pkgutil.walk_packages(path, prefix)]
    return sorted([package.__name__, *found])  # type: ignore[attr-defined]


STACK_MODULES = modules_of(stack)
CLI_MODULES = [m for m in modules_of(cli) if m != "cli.__main__"]

PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))
"""


def loaded_by(module: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, module], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


@pytest.mark.parametrize("module", STACK_MODULES)
def test_core_module_imports_no_front_end_and_no_heavy_client(module: str) -> None:
    loaded = loaded_by(module)
    assert not loaded & {*UI, *FRONT_ENDS}, f"{module} loaded {sorted(loaded & {*UI, 'cli'})}"
    assert not loaded & set(HEAVY), f"{module} loaded {sorted(loaded & set(HEAVY))} at import"


@pytest.mark.parametrize("module", CLI_MODULES)
def test_cli_module_imports_no_textual_and_no_heavy_client(module: str) -> None:
    loaded = loaded_by(module)
    assert not loaded & set(UI), f"{module} loaded {sorted(loaded & set(UI))}"
    assert not loaded & set(HEAVY), f"{module} loaded {sorted(loaded & set(HEAVY))} at import"


def test_building_every_command_loads_no_textual() -> None:
    """What `llm-tui status` pays before it talks to Docker: the parser and its commands."""
    probe = (
        "import json, sys; from cli.main import build_parser; build_parser(); "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {*UI, *HEAVY}, sorted(loaded & {*UI, *HEAVY})


@pytest.mark.parametrize(
    ("argv", "loads"),
    [
        (["--env-file", ".env", "status", "--json"], [False, False]),
        (["--context=gpu-box", "up"], [False, False]),
        (["tune", "--use", "chat"], [True, False]),
        (["--env-file", ".env", "connect"], [True, True]),
        (["statuss"], [True, True]),  # a typo: every command, for the error's list
        (["--help"], [True, True]),
    ],
)
def test_a_named_command_builds_no_other_commands_tables(
    argv: list[str], loads: list[bool]
) -> None:
    """`llm-tui status` does not import the tuning tables or the IDE clients for the
    choices of `tune` and `connect`; those and `--help` still get every command."""
    probe = (
        "import json, sys; from cli.main import build_parser; "
        f"build_parser({argv!r}); "
        "print(json.dumps(['stack.models.tune' in sys.modules, 'stack.clients' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == loads


def test_the_probe_can_fail() -> None:
    # Guard against a probe that never sees anything: importing the UI must be detected.
    assert "textual" in loaded_by("textual.app")
    assert "tui" in loaded_by("tui.app")
    assert len(STACK_MODULES) >= 30 and "stack.engine.engine" in STACK_MODULES
    assert "cli.main" in CLI_MODULES


SSH_PROBE = """
import json, sys
from stack.engine.docker_sdk import load
docker = load(ssh=False)
local = "paramiko" in sys.modules
from docker.errors import DockerException
client = docker.DockerClient(base_url="unix:///nonexistent.sock", version="1.41")
client.close()
load(ssh=True)
try:  # nothing listens on port 1: paramiko's connection error, not "install paramiko"
    docker.DockerClient(base_url="ssh://nobody@127.0.0.1:1", version="1.41", timeout=2)
    error = ""
except DockerException as exc:
    error = str(exc)
except Exception as exc:
    error = type(exc).__name__
print(json.dumps([local, "paramiko" in sys.modules, error]))
"""


def test_a_local_engine_loads_no_ssh_transport_and_ssh_still_works_after() -> None:
    # docker[ssh] makes docker-py import paramiko (~0.25 s) at import: hidden unless used.
    out = subprocess.run(
        [sys.executable, "-c", SSH_PROBE], capture_output=True, text=True, check=True
    ).stdout
    local, after, error = json.loads(out)
    assert local is False and after is True
    assert "Install paramiko" not in error, error
