"""The real `llm-tui` in tmux driving a Docker Engine on another machine over SSH.

The dashboard names the engine, `u` starts the stack on the host, the chat pane talks to
the gateway through the SSH forward the dashboard keeps open, the GPU panel reads the host's
GPUs, the Hugging Face screen downloads a model onto the host, the Models screen lists the
host's models (their headers read there), Enter swaps, the Logs screen follows, `d` stops.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.tmux_session import Tmux, llm_tui_in_tmux
from tests.support.fakehub import FakeHub
from tests.support.remote_host import RemoteHost
from tests.support.remote_stack import RemoteStack, hub_with_models

pytestmark = pytest.mark.e2e

STACK_DEADLINE_S = 120.0


@pytest.fixture
def stack(remote_host: RemoteHost, tmp_path: Path) -> Iterator[RemoteStack]:
    hub: FakeHub = hub_with_models(remote_host, tmp_path)
    made = RemoteStack(remote_host, tmp_path / "home", "ssh", HF_ENDPOINT=hub.url)
    try:
        made.cli("pull", "org/alpha-GGUF", "Q8_0", "--yes")
        made.cli("config", "set", "CHAT_MODEL", "alpha-Q8_0.gguf")
        yield made
    finally:
        made.cleanup()
        hub.stop()


@pytest.fixture
def tmux(stack: RemoteStack) -> Iterator[Tmux]:
    folder = stack.folder
    # The pane's HOME holds the same SSH key and known_hosts as the host's client.
    shutil.copytree(stack.host.home / ".ssh", folder / "user-home" / ".ssh")
    with llm_tui_in_tmux(folder, stack.env_file, {"DOCKER_HOST": stack.host.ssh_url}) as server:
        yield server


def row_of(screen: str, name: str) -> str:
    return next((line.strip() for line in screen.splitlines() if name in line), "")


def test_dashboard_drives_the_remote_host(tmux: Tmux, stack: RemoteStack) -> None:
    host = stack.host.address
    screen = tmux.wait_for("Stack — stopped (u starts it)", 30)
    assert f"{host} over ssh · models in the volume {stack.stack}-models" in screen
    assert "(via SSH forward)" in screen
    # The GPU panel reads the host's GPUs (in its inference container), never this machine's.
    tmux.wait_for(f"the GPU numbers of {host} over ssh come from its inference container", 30)

    tmux.send("u")
    tmux.wait_for("✓ Stack up: 2 started", STACK_DEADLINE_S)
    tmux.wait_for("2 of 2 running", 30)
    tmux.wait_for(f"the inference container on {host} over ssh has no nvidia-smi", 30)
    assert {c.name for c in stack.containers()} == {
        f"{stack.stack}-inference",
        f"{stack.stack}-api-gateway",
    }

    tmux.send("4")
    tmux.wait_for("Message local-chat (Enter sends)")
    tmux.send("Tell me a story", "Enter")
    answer = tmux.wait_for(lambda text: "tokens ·" in text and "tok/s" in text, 60)
    assert "✗" not in answer  # the gateway answered, through the forward

    tmux.send("Escape")
    tmux.wait_for("i Type")
    tmux.send("2")
    tmux.wait_for(lambda text: row_of(text, "alpha-Q8_0.gguf").startswith("● chat"), 30)

    # beta comes from the Hugging Face screen: the helper downloads it on the host.
    tmux.send("h")
    tmux.wait_for("Search GGUF models (Enter")
    tmux.send("beta", "Enter")
    tmux.wait_for("org/beta-GGUF")
    tmux.send("Enter")
    tmux.wait_for("beta-Q8_0.gguf")
    tmux.send("Enter")
    question = tmux.wait_for("Download (y)")
    assert "Download beta-Q8_0.gguf (Q8_0, 270 KiB) from org/beta-GGUF" in question
    assert f"into the volume {stack.stack}-models on {host}?" in question
    tmux.send("y")
    done = tmux.wait_for("100% ✓ done · s serves it", 60)  # the host's progress, shown here
    assert row_of(done, "✓ done").startswith("beta-Q8_0.gguf  org/beta-GGUF")
    assert stack.models_on_host() == ["alpha-Q8_0.gguf", "beta-Q8_0.gguf"]
    assert not any(stack.local_models.iterdir())

    # s serves it: the inference container on the host is swapped, the gateway stays.
    gateway_id = stack.container("api-gateway").id
    tmux.send("s")
    # The swap is done when the new model answers the engine's healthcheck (every 2 s).
    tmux.wait_for(lambda text: "Model swapped" in text or "Now serving" in text, STACK_DEADLINE_S)
    assert stack.container("inference").labels["llm-tui.model"] == "beta-Q8_0.gguf"
    assert stack.container("api-gateway").id == gateway_id
    models = tmux.wait_for(lambda text: row_of(text, "beta-Q8_0.gguf").startswith("● chat"), 30)
    assert " · llama · 2 layers" in models  # the header, read on the host
    assert f"2 models in the volume {stack.stack}-models on {host}" in models

    tmux.send("3")
    logs = tmux.wait_for("model loaded", 30)
    assert "inference  ·  following" in logs

    tmux.send("1")
    tmux.wait_for("2 of 2 running", 30)
    tmux.send("d")
    tmux.wait_for("Stop the stack")
    tmux.send("y")
    tmux.wait_for("✓ Stack stopped: removed", 40)
    assert stack.containers() == []

    tmux.send("q")
    assert tmux.wait_dead() == 0
