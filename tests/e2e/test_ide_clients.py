"""The real Claude Code CLI and Continue's `cn`, configured from `llm-tui connect`.

A real stack (the engine tier's images: llama-server on the CPU behind LiteLLM) serves a
tiny model with a 64k training context. Each client runs with exactly the configuration
`llm-tui connect --client …` prints, against the real gateway. The tiny model ends its
answers (``eos_bias``) so a client sees a finished answer; output is still capped, since
it may run on.

The clients come from `scripts/ide-clients` (npm, pinned, cached outside the clone):
``$LLM_TUI_IDE_CLIENTS`` or the default cache folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_engine import LITELLM_IMAGE, LLAMA_IMAGE, require_engine, require_images
from tests.support.gguf_factory import write_tiny_model
from tests.support.net import free_port
from tests.support.tiers import unavailable

pytestmark = pytest.mark.e2e

CLAUDE_CODE_VERSION = "2.1.328"
CONTINUE_CLI_VERSION = "1.5.47"
KEY = "sk-ide-" + "c" * 32
TRAINING_CONTEXT = 65_536
# Test-only: answers of the tiny model may run on, and a CPU writes them slowly.
OUTPUT_CAP = "256"
CLIENT_TIMEOUT_S = 300


def clients_folder() -> Path:
    folder = os.environ.get("LLM_TUI_IDE_CLIENTS") or str(
        Path(os.environ.get("LLM_TUI_CACHE") or Path.home() / ".cache" / "llm-tui-test") / "npm"
    )
    return Path(folder).expanduser()


def client_binary(folder: str, name: str) -> Path:
    binary = clients_folder() / folder / "node_modules" / ".bin" / name
    if not os.access(binary, os.X_OK):
        unavailable(name, f"{binary} is missing; run scripts/ide-clients")
    return binary


@dataclass
class Home:
    folder: Path
    stack: str
    client: Any

    @property
    def env_file(self) -> Path:
        return self.folder / ".env"

    def llm_tui(self, *args: str, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", "--env-file", str(env_file or self.env_file), *args],
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "XDG_CACHE_HOME": str(self.folder / "cache")},
        )

    def container_ids(self) -> dict[str, str]:
        label = f"llm-tui.stack={self.stack}"
        found = self.client.containers.list(all=True, filters={"label": label})
        return {c.name.removeprefix(f"{self.stack}-"): c.id for c in found}

    def remove_everything(self) -> None:
        label = f"llm-tui.stack={self.stack}"
        for container in self.client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for network in self.client.networks.list(names=[self.stack]):
            if (network.attrs.get("Labels") or {}).get("llm-tui.stack") == self.stack:
                network.remove()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    client = require_engine()
    require_images(client, LLAMA_IMAGE, LITELLM_IMAGE)
    folder = tmp_path_factory.mktemp("ide")
    write_tiny_model(
        folder / "models" / "tiny.gguf", name="tiny", seed=1,
        context_length=TRAINING_CONTEXT, eos_bias=2.0,
    )  # fmt: skip
    home = Home(folder, "ide" + uuid.uuid4().hex[:8], client)
    # The stack's defaults (CTX_SIZE 8192, PARALLEL 4) on the test images.
    home.env_file.write_text(
        f"STACK_NAME={home.stack}\nCHAT_MODEL=tiny.gguf\nGPU=none\n"
        f"INFERENCE_IMAGE={LLAMA_IMAGE}\nGATEWAY_IMAGE={LITELLM_IMAGE}\n"
        f"API_GATEWAY_PORT={free_port()}\nINFERENCE_PORT=\nLITELLM_MASTER_KEY={KEY}\n"
    )
    try:
        up = home.llm_tui("up")
        assert up.returncode == 0, up.stderr
        yield home
    finally:
        home.remove_everything()
        client.close()


def exports(text: str) -> dict[str, str]:
    """The ``export KEY=value`` lines of a printed configuration."""
    return dict(re.findall(r"^export ([A-Z_0-9]+)=(\S+)$", text, re.MULTILINE))


def run_claude(home: Home, variables: dict[str, str], prompt: str) -> dict[str, Any]:
    claude = client_binary(f"claude-code-{CLAUDE_CODE_VERSION}", "claude")
    (home.folder / "claude-home").mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home.folder / "claude-home"),
        "DISABLE_TELEMETRY": "1",
        **variables,
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": OUTPUT_CAP,
    }
    done = subprocess.run(
        [str(claude), "-p", prompt, "--max-turns", "1", "--output-format", "json"],
        capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, env=env,
        stdin=subprocess.DEVNULL, cwd=home.folder,
    )  # fmt: skip
    assert done.stdout.strip(), done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    result["returncode"] = done.returncode
    return result


def claude_config(home: Home) -> tuple[dict[str, str], str]:
    printed = home.llm_tui("connect", "--client", "claude-code")
    assert printed.returncode == 0, printed.stderr
    return exports(printed.stdout), printed.stderr


def test_claude_code_needs_the_tuned_window_and_then_answers(home: Home) -> None:
    # With the defaults each of 4 slots holds 2,048 tokens: connect warns, and Claude Code,
    # told that window, refuses its own first request (~11k tokens).
    variables, warning = claude_config(home)
    assert "each of the 4 slots holds 2,048 tokens; Claude Code needs 32,768" in warning
    assert variables["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == "2048"
    refused = run_claude(home, variables, "Say hello")
    assert refused["is_error"] is True and refused["returncode"] != 0
    assert "context" in refused["result"].lower() or "too long" in refused["result"].lower()

    # tune sizes the stack for an agent and applies it to the running stack: inference is
    # recreated, the gateway keeps running.
    before = home.container_ids()
    tuned = home.llm_tui("tune", "--use", "agent", "--vram", "8", "--yes")
    assert tuned.returncode == 0, tuned.stderr
    assert "applied to the running stack" in tuned.stdout
    after = home.container_ids()
    assert after["api-gateway"] == before["api-gateway"]
    assert after["inference"] != before["inference"]
    settings = home.env_file.read_text()
    assert "PARALLEL=1\n" in settings and f"CTX_SIZE={TRAINING_CONTEXT}\n" in settings

    check = home.llm_tui("connect", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("ok  ") == 3

    variables, warning = claude_config(home)
    assert warning == ""
    assert variables["CLAUDE_CODE_MAX_CONTEXT_TOKENS"] == str(TRAINING_CONTEXT)
    assert variables["ANTHROPIC_AUTH_TOKEN"] == KEY
    answer = run_claude(home, variables, "Say hello")
    assert answer["is_error"] is False, answer
    assert answer["stop_reason"] == "end_turn" and answer["result"].strip()
    # Claude Code took the window from the configuration (it would assume 1M otherwise).
    assert answer["modelUsage"]["local-chat"]["contextWindow"] == TRAINING_CONTEXT


def test_claude_code_with_a_wrong_key_fails_and_connect_says_why(home: Home) -> None:
    variables, _ = claude_config(home)
    # Whatever the window (tuned or not), the request must reach the gateway: the wrong key
    # is what fails.
    variables |= {"ANTHROPIC_AUTH_TOKEN": "sk-wrong", "CLAUDE_CODE_MAX_CONTEXT_TOKENS": "65536"}
    failed = run_claude(home, variables, "Say hello")
    assert failed["is_error"] is True and failed["returncode"] != 0
    # LiteLLM without a database answers a wrong key with 400 "No connected db".
    assert "API Error: 400" in failed["result"]
    wrong = home.folder / "wrong.env"
    wrong.write_text(
        re.sub(r"^LITELLM_MASTER_KEY=.*$", "LITELLM_MASTER_KEY=sk-wrong-" + "0" * 24,
               home.env_file.read_text(), flags=re.MULTILINE)
    )  # fmt: skip
    check = home.llm_tui("connect", "--check", env_file=wrong)
    assert check.returncode == 1
    assert check.stdout.count("the gateway refused the key") == 3
    assert "fix: use LITELLM_MASTER_KEY" in check.stdout


def run_cn(home: Home, config: Path) -> subprocess.CompletedProcess[str]:
    cn = client_binary(f"continue-cli-{CONTINUE_CLI_VERSION}", "cn")
    (home.folder / "cn-home").mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home.folder / "cn-home")}
    return subprocess.run(
        [str(cn), "-p", "Say hello", "--config", str(config)],
        capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, env=env,
        stdin=subprocess.DEVNULL, cwd=home.folder,
    )  # fmt: skip


def test_continue_cli_answers_with_the_printed_config_and_refuses_a_wrong_key(home: Home) -> None:
    printed = home.llm_tui("connect", "--client", "continue")
    assert printed.returncode == 0, printed.stderr
    assert "contextLength:" in printed.stdout and f"apiKey: {KEY}" in printed.stdout
    config = home.folder / "continue.yaml"
    config.write_text(printed.stdout)
    answered = run_cn(home, config)
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.strip()

    config.write_text(printed.stdout.replace(f"apiKey: {KEY}", "apiKey: sk-wrong"))
    refused = run_cn(home, config)
    assert refused.returncode != 0
    assert "400" in refused.stdout + refused.stderr
