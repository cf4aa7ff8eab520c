"""`llm-tui quickstart --yes` from a folder with no model: the real CLI, the fake Hub, the engine.

The catalog is the test's own (LLM_TUI_CATALOG), its repos on the fake Hub hold the tiny
test models, and the images are the locally built ones; everything else is what a user's
first run does: checks, a pick, a verified download, tuned settings, `up`, an answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.engine import Engine
from stack.settings import load_settings
from tests.support.docker_engine import (
    BUSYBOX_IMAGE,
    LITELLM_IMAGE,
    LLAMA_IMAGE,
    require_engine,
    require_images,
)
from tests.support.fakehub import FakeHub
from tests.support.gguf_factory import write_tiny_model
from tests.support.net import free_port

CLI = [sys.executable, "-m", "cli", "--env-file"]
CATALOG = """
[[model]]
repo = "acme/Tiny-Chat-GGUF"
use = "chat"
params = 0.1
quants = ["Q8_0", "F16"]
note = "a tiny chat model"

[[model]]
repo = "acme/Tiny-Coder-GGUF"
use = "code"
params = 0.1
quants = ["F16"]
note = "a tiny coder"
"""


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    docker = require_engine()
    require_images(docker, LLAMA_IMAGE, LITELLM_IMAGE, BUSYBOX_IMAGE)
    yield docker
    docker.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeHub]:
    chat = write_tiny_model(tmp_path / "src" / "chat.gguf", name="chat", seed=1, file_type=7)
    code = write_tiny_model(tmp_path / "src" / "code.gguf", name="code", seed=2)
    with FakeHub() as fake:
        fake.add_repo("acme/Tiny-Chat-GGUF", {"tiny-chat-Q8_0.gguf": chat.read_bytes()})
        fake.add_repo("acme/Tiny-Coder-GGUF", {"tiny-coder-F16.gguf": code.read_bytes()})
        yield fake


def test_quickstart_goes_from_no_model_to_an_answer(
    tmp_path: Path, hub: FakeHub, client: Any
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    stack = "qs" + uuid.uuid4().hex[:8]
    (home / ".env").write_text(
        f"STACK_NAME={stack}\nGPU=none\nINFERENCE_IMAGE={LLAMA_IMAGE}\n"
        f"GATEWAY_IMAGE={LITELLM_IMAGE}\nAPI_GATEWAY_PORT={free_port()}\nINFERENCE_PORT=\n"
        f"LITELLM_MASTER_KEY=sk-quickstart-{'q' * 30}\nHF_ENDPOINT={hub.url}\n"
        "MAX_TOKENS=16\n"
    )
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    env = {
        **os.environ,
        "LLM_TUI_CATALOG": str(catalog),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    try:
        done = subprocess.run(
            [*CLI, str(home / ".env"), "quickstart", "--yes", "--use", "chat"],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        for step in ("1/7 checks", "3/7 models for chat", "4/7 downloading", "5/7 settings",
                     "6/7 starting the stack", "7/7 a first answer"):  # fmt: skip
            assert step in done.stderr, done.stderr
        assert "→ acme/Tiny-Chat-GGUF Q8_0" in done.stderr
        assert done.stdout.strip(), "the model said nothing"
        assert "ready in" in done.stderr and "llm-tui connect" in done.stderr
        settings = load_settings(home / ".env")
        assert settings.chat_model == "tiny-chat-Q8_0.gguf"
        assert (home / "models" / "tiny-chat-Q8_0.gguf").is_file()
        statuses = {row.role: row for row in Engine(settings, client=client).status()}
        assert statuses["inference"].state == "running"
        assert statuses["inference"].model == "tiny-chat-Q8_0.gguf"
        assert statuses["inference"].up_to_date
    finally:
        Engine(load_settings(home / ".env"), client=client).down(remove_network=True)
