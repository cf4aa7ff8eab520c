"""The real `llm-tui` in tmux against a real Docker Engine: u, chat, logs, swap, d.

Runs the locally built CPU images with a tiny generated model under a STACK_NAME of its
own; whatever happens, every container and network carrying that name is removed after.
"""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.tmux_session import Tmux, llm_tui_in_tmux
from tests.support.docker_engine import (
    LITELLM_IMAGE,
    LLAMA_IMAGE,
    require_engine,
    require_images,
)
from tests.support.gguf_factory import write_tiny_model

pytestmark = pytest.mark.e2e

STACK_DEADLINE_S = 60.0
KEY = "sk-e2e-" + "q" * 32


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StackHome:
    folder: Path
    stack: str
    client: Any
    inference_port: int

    def containers_named(self, name: str) -> list[Any]:
        return [c for c in self.containers() if c.name == name]

    def containers(self) -> list[Any]:
        label = f"llm-tui.stack={self.stack}"
        return list(self.client.containers.list(all=True, filters={"label": label}))

    def remove_everything(self) -> None:
        for container in self.containers():
            container.remove(force=True)
        for network in self.client.networks.list(names=[self.stack]):
            if (network.attrs.get("Labels") or {}).get("llm-tui.stack") == self.stack:
                network.remove()


@pytest.fixture
def stack_home(tmp_path: Path) -> Iterator[StackHome]:
    client = require_engine()
    require_images(client, LLAMA_IMAGE, LITELLM_IMAGE)
    home = StackHome(tmp_path, "e2e" + uuid.uuid4().hex[:8], client, free_port())
    write_tiny_model(tmp_path / "models" / "alpha.gguf", name="alpha", seed=1)
    write_tiny_model(tmp_path / "models" / "beta.gguf", name="beta", seed=2)  # to swap to
    (tmp_path / ".env").write_text(
        f"STACK_NAME={home.stack}\nCHAT_MODEL=alpha.gguf\nGPU=none\n"
        f"INFERENCE_IMAGE={LLAMA_IMAGE}\nGATEWAY_IMAGE={LITELLM_IMAGE}\n"
        f"API_GATEWAY_PORT={free_port()}\nINFERENCE_PORT={home.inference_port}\n"
        f"LITELLM_MASTER_KEY={KEY}\nCTX_SIZE=2048\nPARALLEL=2\nMAX_TOKENS=24\n"
    )
    try:
        yield home
    finally:
        home.remove_everything()
        client.close()


@pytest.fixture
def tmux(stack_home: StackHome) -> Iterator[Tmux]:
    engine = {"DOCKER_HOST": os.environ["DOCKER_HOST"]} if "DOCKER_HOST" in os.environ else {}
    folder = stack_home.folder
    with llm_tui_in_tmux(folder, folder / ".env", engine) as server:
        yield server


def row_of(screen: str, name: str) -> str:
    """The screen line that names ``name``, stripped ("" when none does)."""
    return next((line.strip() for line in screen.splitlines() if name in line), "")


def container_id(home: StackHome, name: str) -> str:
    (container,) = home.containers_named(name)
    return str(container.id)


def served_model(port: int) -> str:
    """What llama-server says it loaded (its /props), or "" while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/props", timeout=5) as response:
            return str(json.load(response).get("model_path", ""))
    except OSError:
        return ""


def wait_until_served(home: StackHome, model_path: str) -> None:
    end = time.monotonic() + STACK_DEADLINE_S
    seen = ""
    while time.monotonic() < end:
        seen = served_model(home.inference_port)
        if seen == model_path:
            return
        time.sleep(0.2)
    raise AssertionError(f"llama-server never served {model_path}; last it said {seen!r}")


def test_start_chat_logs_and_stop_a_real_stack(tmux: Tmux, stack_home: StackHome) -> None:
    stack = stack_home.stack
    tmux.wait_for("Stack — stopped (u starts it)")

    tmux.send("u")
    started = tmux.wait_for("✓ Stack up: 2 started", STACK_DEADLINE_S)
    assert "2 of 2 running" in started
    tmux.wait_for("● running · healthy", STACK_DEADLINE_S)  # the inference health check
    states = {c.name: c.status for c in stack_home.containers()}
    assert states == {f"{stack}-inference": "running", f"{stack}-api-gateway": "running"}

    tmux.send("4")
    tmux.wait_for("Message local-chat (Enter sends)")
    tmux.send("Tell me a story", "Enter")
    answer = tmux.wait_for(lambda text: "tokens ·" in text and "tok/s" in text, 30)
    assert "Tell me a story" in answer
    assert "✗" not in answer  # no system line: the gateway answered

    tmux.send("Escape")  # leave the input, so 3 switches screens
    tmux.wait_for("i Type")
    tmux.send("3")
    logs = tmux.wait_for("llama_server: model loaded", 20)
    assert "inference  ·  following" in logs
    tmux.send("]")
    tmux.wait_for("api-gateway  ·  following", 20)

    # Swap from the Models screen: only the inference container is recreated.
    gateway_id = container_id(stack_home, f"{stack}-api-gateway")
    tmux.send("2")
    tmux.wait_for(lambda text: row_of(text, "alpha.gguf").startswith("● chat"))
    tmux.send("Down")
    tmux.wait_for(" beta · ")  # the detail line names the highlighted model
    tmux.send("Enter")
    tmux.wait_for(lambda text: row_of(text, "beta.gguf").startswith("● chat"), STACK_DEADLINE_S)
    wait_until_served(stack_home, "/models/beta.gguf")
    inference = stack_home.containers_named(f"{stack}-inference")
    assert [c.labels.get("llm-tui.model") for c in inference] == ["beta.gguf"]
    assert container_id(stack_home, f"{stack}-api-gateway") == gateway_id  # kept running
    assert "CHAT_MODEL=beta.gguf\n" in (stack_home.folder / ".env").read_text()

    tmux.send("1")
    tmux.wait_for("2 of 2 running")
    tmux.send("d")
    tmux.wait_for("Stop the stack")
    tmux.send("y")
    tmux.wait_for("✓ Stack stopped: removed", 30)
    tmux.wait_for("Stack — stopped (u starts it)", 15)
    assert stack_home.containers() == []

    tmux.send("q")
    assert tmux.wait_dead() == 0
