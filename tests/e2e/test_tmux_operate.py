"""The real `llm-tui` in tmux operating a real stack, with the fake NVML library loaded.

`u` starts the stack (llama-server and LiteLLM containers from the locally built images, two
tiny models), the Logs screen searches llama-server's own startup log, the palette serves
the other model, and the GPU screen names the inference container as the holder of the
memory: the fake library lists that container's real host PID, so pynvml, /proc/<pid>/cgroup
and the engine's container ids all run for real.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stack.engine import Engine
from stack.settings import load_settings
from tests.e2e.tmux_session import llm_tui_in_tmux
from tests.support.docker_engine import LITELLM_IMAGE, LLAMA_IMAGE, require_engine, require_images
from tests.support.fake_nvml import GIB, FakeGpu, NvmlScript, nvml_script
from tests.support.gguf_factory import write_tiny_model
from tests.support.net import free_port

pytestmark = pytest.mark.e2e

KEY = "sk-e2e-operate-" + "k" * 32
STACK_DEADLINE_S = 120.0


@dataclass
class OperateHome:
    folder: Path
    stack: str
    client: Any
    script: NvmlScript

    def inference(self) -> Any:
        return self.client.containers.get(f"{self.stack}-inference")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[OperateHome]:
    client = require_engine()
    require_images(client, LLAMA_IMAGE, LITELLM_IMAGE)
    stack = "e2eop" + uuid.uuid4().hex[:6]
    for seed, name in enumerate(("alpha.gguf", "beta.gguf")):
        write_tiny_model(tmp_path / "models" / name, seed=seed + 1, context_length=2048)
    (tmp_path / ".env").write_text(
        f"STACK_NAME={stack}\nCHAT_MODEL=alpha.gguf\nGPU=none\n"
        f"INFERENCE_IMAGE={LLAMA_IMAGE}\nGATEWAY_IMAGE={LITELLM_IMAGE}\n"
        f"API_GATEWAY_PORT={free_port()}\nINFERENCE_PORT=\nLITELLM_MASTER_KEY={KEY}\n"
        "CTX_SIZE=2048\nPARALLEL=1\n"
    )
    script = nvml_script(tmp_path)
    try:
        yield OperateHome(tmp_path, stack, client, script)
    finally:
        Engine(load_settings(tmp_path / ".env"), client=client).down(remove_network=True)
        client.close()


def serving(home: OperateHome, model: str) -> Callable[[str], bool]:
    """The inference container runs ``model`` and the dashboard says both are up."""

    def check(screen: str) -> bool:
        if "2 of 2 running" not in screen:
            return False
        try:
            container = home.inference()
        except Exception:  # between the old container and the new one
            return False
        command = " ".join(container.attrs["Config"].get("Cmd") or [])
        return container.status == "running" and model in command

    return check


def test_up_search_swap_from_the_palette_and_the_vram_by_container(home: OperateHome) -> None:
    engine = {"DOCKER_HOST": os.environ["DOCKER_HOST"]} if "DOCKER_HOST" in os.environ else {}
    environment = {**engine, **home.script.environment({})}
    with llm_tui_in_tmux(home.folder, home.folder / ".env", environment) as tmux:
        tmux.wait_for("Stack — stopped (u starts it)")
        tmux.send("u")
        tmux.wait_for("✓ Stack up", STACK_DEADLINE_S)  # every service healthy: `up` is done
        assert serving(home, "alpha.gguf")(tmux.screen())

        # llama-server's own startup log, searched: matches counted and jumped to.
        tmux.send("3")
        tmux.wait_for(lambda s: "following" in s and "listening" in s, STACK_DEADLINE_S)
        tmux.send("/listening", "Enter")  # typed in one go, as a paste or a fast typist does
        tmux.wait_for(lambda s: re.search(r"search “listening”: match \d+ of \d+", s) is not None)

        # The palette serves the other model: the inference container is swapped.
        tmux.send("C-p")
        tmux.wait_for("Search for commands")
        tmux.send("Serve beta.gguf as chat")  # typed into the palette's focused input
        tmux.wait_for("local-chat answers from beta.gguf")
        tmux.send("Enter")
        tmux.wait_for("Model swapped", STACK_DEADLINE_S)
        tmux.send("1")
        tmux.wait_for(serving(home, "beta.gguf"), STACK_DEADLINE_S)

        # The new container's host PID holds 4.1 GiB; a host process holds the rest.
        pid = int(home.inference().attrs["State"]["Pid"])
        home.script.write(
            [FakeGpu(memory_used=5 * GIB, compute_processes=[(pid, int(4.1 * GIB)), (1, GIB)])]
        )
        tmux.send("7")
        gpu = tmux.wait_for("inference 4.10 GiB", STACK_DEADLINE_S)
        assert "RTX 4050" in gpu

        tmux.send("q")
        assert tmux.wait_dead() == 0
    assert (home.folder / ".env").read_text().count("CHAT_MODEL=beta.gguf") == 1
