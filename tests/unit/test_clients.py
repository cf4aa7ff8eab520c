"""Each IDE client's configuration from the settings, the window warnings, and `connect`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stack.clients import (
    CLIENT_IDS,
    Connection,
    client_config,
    connection_for,
    served_window,
    window_warning,
)
from stack.clients.configs import CLIENTS, output_cap
from stack.doctor import Status, check_context
from stack.settings import load_settings
from tests.support.gguf_factory import write_tiny_model

pytestmark = pytest.mark.unit

KEY = "sk-clients-" + "k" * 30


def connection(window: int = 32768, parallel: int = 1) -> Connection:
    return Connection("http://localhost:8000/v1", KEY, window, parallel)


def test_claude_code_gets_the_window_and_an_output_cap_that_fits_it() -> None:
    text = client_config("claude-code", connection(65536)).text
    variables = dict(
        line.removeprefix("export ").split("=", 1)
        for line in text.splitlines()
        if line.startswith("export ")
    )
    assert variables == {
        "ANTHROPIC_BASE_URL": "http://localhost:8000",  # Claude Code adds /v1/messages
        "ANTHROPIC_AUTH_TOKEN": KEY,
        "ANTHROPIC_MODEL": "local-chat",
        "ANTHROPIC_DEFAULT_OPUS_MODEL": "local-chat",
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "local-chat",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "local-chat",
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS": "65536",
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "8192",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    # Everything else is a comment: the text can be eval'ed as it is.
    assert all(line.startswith(("export ", "#")) for line in text.splitlines())


@pytest.mark.parametrize(
    ("window", "cap"), [(2048, 256), (32768, 4096), (131072, 16384), (1_000_000, 32000)]
)
def test_the_output_cap_is_an_eighth_of_the_window(window: int, cap: int) -> None:
    # Claude Code keeps 13k + the cap free before it compacts: at 32k, 17k of 32k.
    assert output_cap(window) == cap


def test_continue_gets_a_model_with_its_context_length() -> None:
    config = yaml.safe_load(client_config("continue", connection(32768)).text)
    chat, code = config["models"]
    assert chat == {
        "name": "Local chat (llm-tui)",
        "provider": "openai",
        "model": "local-chat",
        "apiBase": "http://localhost:8000/v1",
        "apiKey": KEY,
        "roles": ["chat", "edit", "apply"],
        "defaultCompletionOptions": {"contextLength": 32768, "maxTokens": 4096},
    }
    assert code["model"] == "local-code" and code["roles"] == ["autocomplete"]


def test_cursor_is_told_the_truth_about_localhost() -> None:
    text = client_config("cursor", connection()).text
    assert "Cursor's own servers" in text and "public HTTPS" in text
    assert "ngrok http 8000" in text and f"OpenAI API Key:            {KEY}" in text


def test_openai_and_curl_cap_their_answers() -> None:
    openai = client_config("openai", connection()).text
    assert "export OPENAI_BASE_URL=http://localhost:8000/v1" in openai
    assert f"export OPENAI_API_KEY={KEY}" in openai and "max_tokens=1024" in openai
    curl = client_config("curl", connection()).text
    assert '"max_tokens": 64' in curl and f"Bearer {KEY}" in curl


def test_a_window_below_a_clients_need_is_said_with_the_fix() -> None:
    small = connection(window=2048, parallel=4)
    warning = window_warning(CLIENTS["claude-code"], small)
    assert warning == (
        "each of the 4 slots holds 2,048 tokens; Claude Code needs 32,768. Fix: "
        "`llm-tui tune --use agent` (Models screen: t), or PARALLEL=1 and CTX_SIZE=32768"
    )
    assert window_warning(CLIENTS["continue"], small).startswith("each of the 4 slots")
    assert window_warning(CLIENTS["curl"], small) == ""
    assert window_warning(CLIENTS["claude-code"], connection(32768)) == ""
    assert set(CLIENT_IDS) == {"claude-code", "continue", "cursor", "openai", "curl"}


def test_the_window_is_a_slot_capped_at_the_training_context(tmp_path: Path) -> None:
    write_tiny_model(tmp_path / "models" / "m.gguf", context_length=4096)
    env = tmp_path / ".env"
    env.write_text("CHAT_MODEL=m.gguf\nCTX_SIZE=8192\nPARALLEL=4\n")
    assert served_window(load_settings(env)) == 2048
    env.write_text("CHAT_MODEL=m.gguf\nCTX_SIZE=32768\nPARALLEL=1\n")
    assert served_window(load_settings(env)) == 4096  # llama-server caps a slot there
    env.write_text("CTX_SIZE=7424\nPARALLEL=4\n")  # no model: the slot as llama.cpp pads it
    settings = load_settings(env)
    assert served_window(settings) == 2048
    assert connection_for(settings).key == "no-key"


def test_doctor_warns_when_a_slot_is_too_small_for_claude_code(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("CTX_SIZE=8192\nPARALLEL=4\n")
    check = check_context(load_settings(env))
    assert check.status is Status.WARN
    assert check.detail == "each of the 4 slots holds 2,048 tokens; Claude Code needs 32,768"
    assert check.fix.startswith("`llm-tui tune --use agent`")
    env.write_text("CTX_SIZE=32768\nPARALLEL=1\n")
    check = check_context(load_settings(env))
    assert check.status is Status.OK
    assert check.detail == "1 slot holds 32,768 tokens: enough for Claude Code"


def llm_tui(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--env-file", str(home / ".env"), *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**os.environ, "XDG_CACHE_HOME": str(home / "cache")},
    )  # fmt: skip


def test_connect_prints_a_clients_config_on_stdout_and_warnings_on_stderr(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text(f"LITELLM_MASTER_KEY={KEY}\nAPI_GATEWAY_PORT=8010\n")
    result = llm_tui(tmp_path, "connect", "--client", "claude-code")
    assert result.returncode == 0, result.stderr
    assert f"export ANTHROPIC_AUTH_TOKEN={KEY}\n" in result.stdout
    assert "export ANTHROPIC_BASE_URL=http://localhost:8010\n" in result.stdout
    assert result.stderr.startswith("warning: each of the 4 slots holds 2,048 tokens")
    overview = llm_tui(tmp_path, "connect")
    assert overview.returncode == 0 and KEY not in overview.stdout  # masked
    assert "one request holds 2,048 tokens" in overview.stdout
    (tmp_path / ".env").write_text("LITELLM_MASTER_KEY=\n")  # no key: the one to paste is no secret
    overview = llm_tui(tmp_path, "connect")
    assert "API key         no-key  (LITELLM_MASTER_KEY is empty: any key works)\n" in (
        overview.stdout
    )


def test_connect_check_with_nothing_listening_fails_with_the_fix(tmp_path: Path) -> None:
    from tests.support.net import free_port

    (tmp_path / ".env").write_text(f"LITELLM_MASTER_KEY={KEY}\nAPI_GATEWAY_PORT={free_port()}\n")
    result = llm_tui(tmp_path, "connect", "--check")
    assert result.returncode == 1
    assert (
        result.stdout.count("FAIL") == 3 and "nothing answers at http://localhost:" in result.stdout
    )
    assert "fix: start the stack (`llm-tui up`)" in result.stdout
