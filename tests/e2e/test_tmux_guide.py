"""The first-run guide in the real `llm-tui`: an empty home, tmux, the engine, the fake Hub.

Counts the keys pressed and the wall time from launch to the first streamed token, the
download aside, and prints them (the README's numbers come from this run); the test holds
the guide to at most 6 keys.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.tmux_session import llm_tui_in_tmux
from tests.support.docker_engine import (
    LITELLM_IMAGE,
    LLAMA_IMAGE,
    require_engine,
    require_images,
)
from tests.support.fakehub import FakeHub
from tests.support.gguf_factory import write_tiny_model

pytestmark = pytest.mark.e2e

CATALOG = """
[[model]]
repo = "acme/Tiny-Chat-GGUF"
use = "chat"
params = 0.1
quants = ["Q8_0"]
note = "a tiny chat model"
"""
MAX_KEYS = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def client() -> Iterator[Any]:
    docker = require_engine()
    require_images(docker, LLAMA_IMAGE, LITELLM_IMAGE)
    yield docker
    docker.close()


def test_the_guide_reaches_a_first_answer_in_a_few_keys(
    tmp_path: Path, client: Any, record_property: Any
) -> None:
    source = write_tiny_model(tmp_path / "src" / "chat.gguf", name="chat", seed=4, file_type=7)
    stack = "guide" + uuid.uuid4().hex[:8]
    home = tmp_path / "home"
    home.mkdir()
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG)
    with FakeHub() as hub:
        hub.add_repo("acme/Tiny-Chat-GGUF", {"tiny-chat-Q8_0.gguf": source.read_bytes()})
        # What a user on this machine kind sets before a first run: the engine's images
        # (the real ones cannot be pulled here), the CPU, and the Hub (the fake one).
        (home / ".env").write_text(
            f"STACK_NAME={stack}\nGPU=none\nINFERENCE_IMAGE={LLAMA_IMAGE}\n"
            f"GATEWAY_IMAGE={LITELLM_IMAGE}\nAPI_GATEWAY_PORT={free_port()}\n"
            f"INFERENCE_PORT=\nHF_ENDPOINT={hub.url}\nMAX_TOKENS=24\n"
        )
        (home / ".env").chmod(0o600)
        extra = {"LLM_TUI_CATALOG": str(catalog)}
        if "DOCKER_HOST" in os.environ:
            extra["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
        keys = 0
        try:
            with llm_tui_in_tmux(home, home / ".env", extra) as tmux:
                launched = time.monotonic()
                tmux.wait_for("Step 1 of 7", deadline_s=30)
                tmux.wait_for("Enter: continue", deadline_s=60)
                tmux.send("Enter")
                keys += 1
                tmux.wait_for("What will talk to the model?")
                tmux.send("2")  # chat
                keys += 1
                tmux.wait_for("Enter downloads the highlighted one", deadline_s=60)
                assert "acme/Tiny-Chat-GGUF Q8_0" in tmux.screen()
                tmux.send("Enter")
                keys += 1
                download_started = time.monotonic()
                tmux.wait_for("Enter writes these to .env", deadline_s=120)
                download_s = time.monotonic() - download_started  # with the tuning read
                tmux.send("Enter")
                keys += 1
                screen = tmux.wait_for("(ready ", deadline_s=150)
                first_answer = time.monotonic() - launched - download_s
                assert "local-chat:" in screen
                tmux.send("Enter")  # on to Connect
                tmux.wait_for("OpenAI API")
                tmux.send("q")
                assert tmux.wait_dead() == 0
        finally:
            _down(client, stack)
    assert keys <= MAX_KEYS
    record_property("guide", json.dumps({"keys": keys, "seconds": round(first_answer, 1)}))
    print(f"\nguide: {keys} keys, first token {first_answer:.1f} s after launch (download aside)")


def _down(client: Any, stack: str) -> None:
    label = f"llm-tui.stack={stack}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
    for network in client.networks.list(names=[stack]):
        network.remove()
