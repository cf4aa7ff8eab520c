"""Expected failures of the headless commands: exit 1, one plain reason and the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port

DEAD_ENGINE = "unix:///tmp/llm-tui-no-engine-here.sock"


def llm_tui(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--env-file", str(home / ".env"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DOCKER_HOST": DEAD_ENGINE, **env},
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    (tmp_path / ".env").write_text(
        f"CHAT_MODEL=m.gguf\nAPI_GATEWAY_PORT={free_port()}\nLITELLM_MASTER_KEY=sk-k\n"
    )
    return tmp_path


def assert_plain_failure(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("llm-tui: error: ")
    for fragment in fragments:
        assert fragment in result.stderr


def test_up_without_an_engine(home: Path) -> None:
    result = llm_tui(home, "up")
    assert_plain_failure(result, f"no Docker Engine answers at {DEAD_ENGINE}", "fix: start Docker")


def test_status_and_down_without_an_engine(home: Path) -> None:
    assert_plain_failure(llm_tui(home, "status"), "no Docker Engine answers")
    assert_plain_failure(llm_tui(home, "down"), "no Docker Engine answers")


def test_up_without_a_model(home: Path) -> None:
    (home / ".env").write_text("LITELLM_MASTER_KEY=sk-k\n")
    assert_plain_failure(llm_tui(home, "up"), "no model chosen", "config set CHAT_MODEL")


def test_up_with_invalid_settings(home: Path) -> None:
    (home / ".env").write_text("CHAT_MODEL=m.gguf\nCTX_SIZE=big\n")
    assert_plain_failure(llm_tui(home, "up"), "invalid settings: line 2: CTX_SIZE=big")


def test_swap_refuses_bad_files_before_touching_anything(home: Path) -> None:
    before = (home / ".env").read_text()
    assert_plain_failure(llm_tui(home, "swap", "../etc.gguf"), "no '..'")
    assert_plain_failure(llm_tui(home, "swap", "absent.gguf"), "file not found")
    (home / "models" / "text.gguf").write_text("not gguf")
    assert_plain_failure(llm_tui(home, "swap", "text.gguf"), "not a GGUF file")
    assert (home / ".env").read_text() == before


def test_chat_when_the_gateway_is_down(home: Path) -> None:
    assert_plain_failure(llm_tui(home, "chat", "hello"), "nothing answers at", "llm-tui up")


def test_doctor_json_lists_every_check(home: Path) -> None:
    result = llm_tui(home, "doctor", "--json")
    checks = json.loads(result.stdout)
    assert [c["name"] for c in checks] == [
        "settings",
        "docker",
        "images",
        "gpu",
        "models",
        "context",
        "ports",
        "disk",
    ]
    docker = checks[1]
    assert docker["status"] == "fail" and "no Docker Engine answers" in docker["detail"]
    assert result.returncode == 1  # a failing check fails the command


def test_usage_errors_exit_2(home: Path) -> None:
    assert llm_tui(home, "swap").returncode == 2
    assert llm_tui(home, "swap", "m.gguf", "--role", "vision").returncode == 2


def test_compose_export_holds_no_secret(home: Path) -> None:
    result = llm_tui(home, "compose", "--stdout")
    assert result.returncode == 0, result.stderr
    assert "sk-k" not in result.stdout
    # GPU=auto exports the GPU reservation (Compose has no "if there is one").
    assert "devices:" in result.stdout and "driver: nvidia" in result.stdout
    (home / ".env").write_text((home / ".env").read_text() + "GPU=none\n")
    cpu = llm_tui(home, "compose", "--stdout")
    assert cpu.returncode == 0, cpu.stderr
    assert "deploy:" not in cpu.stdout and "image:" in cpu.stdout


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 500 Internal Server Error\r\n\r\n{}", b"SSH-2.0-OpenSSH_9.6\r\n", b""],
    ids=["error-status", "not-http", "closed"],
)
def test_status_on_a_socket_that_is_not_an_engine(home: Path, answer: bytes) -> None:
    """The socket read `status` makes first (no docker import) gives up on anything odd, and
    the SDK path then fails as plainly as for a missing engine."""
    import socket
    import tempfile
    import threading

    with tempfile.TemporaryDirectory(prefix="llm-tui-sock-") as folder:
        path = f"{folder}/docker.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen()

            def answer_all() -> None:
                while True:
                    try:
                        client, _ = server.accept()
                    except OSError:
                        return
                    with client:
                        client.recv(65536)
                        client.sendall(answer)

            threading.Thread(target=answer_all, daemon=True).start()
            result = llm_tui(home, "status", DOCKER_HOST=f"unix://{path}")
    assert_plain_failure(result, f"the Docker Engine at unix://{path}")
