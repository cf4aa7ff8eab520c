"""Fixtures for the Textual tests: a stack home in tmp_path, frozen checks, faked seams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.doctor import Check, Status
from stack.settings import Settings, envfile, load_settings, render_env_example
from tests.tui.fakes import FakeChat, FakeEngine, FakeLogs, fake_services
from tui.__main__ import LlmTuiApp, make_app

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


def write_env(home: Path, **values: str) -> Path:
    """A `.env` from the template with a fixed master key (nothing random on screen)."""
    text = render_env_example()
    for key, value in {"LITELLM_MASTER_KEY": FAKE_MASTER_KEY, **values}.items():
        text = envfile.with_value(envfile.parse(text), key, value)
    path = home / ".env"
    path.write_text(text)
    return path


@pytest.fixture
def anyio_backend() -> str:
    """Pilot tests run on asyncio (anyio's pytest plugin drives the async tests)."""
    return "asyncio"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The stack home; also the working folder, so paths show as ./… on screen."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))  # the library's cache
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / ".data"))  # saved conversations
    (tmp_path / "models").mkdir()
    write_env(tmp_path)
    yield tmp_path


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home / ".env", create=True)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def logs() -> FakeLogs:
    return FakeLogs()


@pytest.fixture
def chat() -> FakeChat:
    return FakeChat()


@pytest.fixture
def app(settings: Settings, engine: FakeEngine, logs: FakeLogs, chat: FakeChat) -> LlmTuiApp:
    services = fake_services(FROZEN_CHECKS, engine=engine, logs=logs, chat=chat)
    return make_app(settings, services)
