"""The real `llm-tui` entry point in a private tmux server: keys in, screen text out."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.tiers import unavailable

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 120, 40
DEADLINE_S = 15.0
POLL_S = 0.1


def clean_environment(home: Path) -> dict[str, str]:
    """What the pane gets: no COLUMNS/LINES (they would override the pane size), no CI vars."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


@dataclass
class Tmux:
    """One isolated tmux server (`-L`) with one session running the command."""

    socket: str
    environment: dict[str, str]
    status_file: Path
    session: str = "llm-tui"

    def run(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
            env=self.environment,  # the server, and so every pane, starts from this alone
        )
        if check and result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def send(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def pane(self, fmt: str) -> str:
        return self.run("display-message", "-p", "-t", self.session, fmt).strip()

    def wait_for(self, what: str | Callable[[str], bool], deadline_s: float = DEADLINE_S) -> str:
        """Poll the pane until ``what`` shows; fail with the last screen if it never does."""
        found = (lambda text: what in text) if isinstance(what, str) else what
        end = time.monotonic() + deadline_s
        text = ""
        while time.monotonic() < end:
            text = self.screen()
            if found(text):
                return text
            time.sleep(POLL_S)
        raise AssertionError(f"{what!r} never showed within {deadline_s:.0f} s; screen:\n{text}")

    def wait_dead(self, deadline_s: float = DEADLINE_S) -> int:
        """The exit status once the pane is dead (remain-on-exit keeps it to be read)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.pane("#{pane_dead}") == "1":
                status = self.pane("#{pane_dead_status}")
                if status:
                    return int(status)
                # Some tmux builds leave pane_dead_status empty; the wrapper wrote it too.
                return int(self.status_file.read_text().strip())
            time.sleep(POLL_S)
        raise AssertionError(f"llm-tui did not exit; screen:\n{self.screen()}")


def llm_tui_command() -> list[str]:
    installed = shutil.which("llm-tui") or shutil.which(
        "llm-tui", path=str(Path(sys.executable).parent)
    )
    return [installed] if installed else [sys.executable, "-m", "stack.cli"]


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        unavailable("tmux", "the tmux binary is not on PATH (apt-get install tmux)")
    user_home = tmp_path / "user-home"  # XDG folders land here, not in the real home
    user_home.mkdir()
    server = Tmux(
        f"llm-tui-e2e-{uuid.uuid4().hex[:12]}",
        clean_environment(user_home),
        status_file=tmp_path / "exit-status",
    )
    env_file = tmp_path / ".env"
    (tmp_path / "models").mkdir()
    llm_tui = shlex.join([*llm_tui_command(), "--env-file", str(env_file)])
    status = shlex.quote(str(server.status_file))
    command = f"{llm_tui}; status=$?; echo $status > {status}; exit $status"
    # The session starts detached with a shell that waits, so remain-on-exit is set before
    # llm-tui runs: its exit status stays readable however fast it exits.
    server.run(
        "-f", "/dev/null", "new-session", "-d", "-s", server.session,
        "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(tmp_path), "sleep 600",
    )  # fmt: skip
    socket_path = Path(server.pane("#{socket_path}"))
    try:
        server.run("set-option", "-g", "default-terminal", "xterm-256color")
        server.run("set-option", "-t", server.session, "remain-on-exit", "on")
        server.run("set-option", "-t", server.session, "status", "off")
        server.run("respawn-pane", "-k", "-t", server.session, "-c", str(tmp_path), command)
        yield server
    finally:
        server.run("kill-server", check=False)
        socket_path.unlink(missing_ok=True)  # tmux may leave the socket file behind


def test_real_llm_tui_starts_switches_modes_and_quits(tmux: Tmux, tmp_path: Path) -> None:
    dashboard = tmux.wait_for("Getting started")
    assert "Gateway" in dashboard and "http://localhost:8000/v1" in dashboard
    assert "none — press 2 to pick one" in dashboard
    # The real checks finish (no engine or GPU needed): each row gets ✓, ! or ✗.
    tmux.wait_for(lambda text: "ready ─" in text and "checking…" not in text)

    tmux.send("2")
    models = tmux.wait_for("No GGUF models in")
    assert "Copy a .gguf file into MODELS_DIR" in models

    tmux.send("6")
    connect = tmux.wait_for("Gateway URL")
    assert "http://localhost:8000/v1" in connect
    assert "curl http://localhost:8000/v1/chat/completions" in connect

    tmux.send("5")
    settings = tmux.wait_for("LITELLM_MASTER_KEY")
    assert "CTX_SIZE" in settings and "8192" in settings
    key = next(
        line.partition("=")[2]
        for line in (tmp_path / ".env").read_text().splitlines()
        if line.startswith("LITELLM_MASTER_KEY=")
    )
    assert key and key not in settings  # masked on screen

    tmux.send("q")
    assert tmux.wait_dead() == 0
