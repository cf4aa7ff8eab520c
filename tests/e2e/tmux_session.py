"""A private tmux server running the real `llm-tui`: keys in, screen text out.

Each session gets its own server (`tmux -L`), a clean environment (no COLUMNS/LINES, no CI
variables, HOME in the test's folder) and `remain-on-exit`, so the exit status stays
readable however fast llm-tui exits.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.tiers import unavailable

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
    return [installed] if installed else [sys.executable, "-m", "cli.main"]


@contextmanager
def llm_tui_in_tmux(
    folder: Path, env_file: Path, extra_environment: Mapping[str, str] | None = None
) -> Iterator[Tmux]:
    """Start `llm-tui --env-file ENV_FILE` in ``folder``; the server is gone afterwards."""
    if shutil.which("tmux") is None:
        unavailable("tmux", "the tmux binary is not on PATH (apt-get install tmux)")
    user_home = folder / "user-home"  # XDG folders land here, not in the real home
    user_home.mkdir(exist_ok=True)
    server = Tmux(
        f"llm-tui-e2e-{uuid.uuid4().hex[:12]}",
        {**clean_environment(user_home), **(extra_environment or {})},
        status_file=folder / "exit-status",
    )
    llm_tui = shlex.join([*llm_tui_command(), "--env-file", str(env_file)])
    status = shlex.quote(str(server.status_file))
    command = f"{llm_tui}; status=$?; echo $status > {status}; exit $status"
    # The session starts detached with a shell that waits, so remain-on-exit is set before
    # llm-tui runs: its exit status stays readable however fast it exits.
    server.run(
        "-f", "/dev/null", "new-session", "-d", "-s", server.session,
        "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(folder), "sleep 600",
    )  # fmt: skip
    socket_path = Path(server.pane("#{socket_path}"))
    try:
        server.run("set-option", "-g", "default-terminal", "xterm-256color")
        server.run("set-option", "-t", server.session, "remain-on-exit", "on")
        server.run("set-option", "-t", server.session, "status", "off")
        server.run("respawn-pane", "-k", "-t", server.session, "-c", str(folder), command)
        yield server
    finally:
        server.run("kill-server", check=False)
        socket_path.unlink(missing_ok=True)  # tmux may leave the socket file behind
