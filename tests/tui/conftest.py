"""Fixtures for the Textual tests: a stack home in tmp_path and frozen doctor results."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import envfile
from stack.doctor import Check, Status
from stack.settings import Settings, load_settings, render_env_example
from tui.__main__ import LlmTuiApp, Services, make_app

FAKE_MASTER_KEY = "sk-test-0123456789abcdefghij"

FROZEN_CHECKS = (
    Check("settings", Status.OK, "./.env is valid"),
    Check(
        "docker",
        Status.FAIL,
        "no Docker Engine answers at the default socket (/var/run/docker.sock)",
        "start Docker (Docker Desktop with WSL integration on, or `sudo systemctl start "
        "docker`), or set DOCKER_HOST",
    ),
    Check(
        "gpu",
        Status.WARN,
        "no NVIDIA driver found (libnvidia-ml is missing)",
        "models can still run on the CPU (slowly)",
    ),
    Check(
        "models",
        Status.WARN,
        "no GGUF files in ./models",
        "download one in the Models screen (press 2), or copy a .gguf file there",
    ),
    Check("ports", Status.OK, "8000, 8001 free on 127.0.0.1"),
    Check("disk", Status.OK, "120 GiB free for models"),
)


def frozen_checks(settings: Settings) -> list[Check]:
    return list(FROZEN_CHECKS)


def write_env(home: Path, **values: str) -> Path:
    """A `.env` from the template with a fixed master key (nothing random on screen)."""
    text = render_env_example()
    for key, value in {"LITELLM_MASTER_KEY": FAKE_MASTER_KEY, **values}.items():
        text = envfile.with_value(envfile.parse(text), key, value)
    path = home / ".env"
    path.write_text(text)
    return path


def write_gguf(path: Path, size: int = 4096) -> Path:
    """A tiny file that passes the GGUF magic check (not a loadable model)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + b"\0" * (size - 4))
    return path


@pytest.fixture
def anyio_backend() -> str:
    """Pilot tests run on asyncio (anyio's pytest plugin drives the async tests)."""
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The stack home; also the working folder, so paths show as ./… on screen."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    write_env(tmp_path)
    yield tmp_path


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home / ".env", create=True)


@pytest.fixture
def app(settings: Settings) -> LlmTuiApp:
    return make_app(settings, Services(run_checks=frozen_checks))
