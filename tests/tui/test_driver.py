"""The terminal driver's input thread on a real pseudo-terminal: keys and a lone Escape
arrive, it does not wake while nothing is typed, and quitting ends it at once."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.tui

APP = """
import selectors, sys
from pathlib import Path
from textual.app import App
from textual.widgets import Static
from tui.driver import QuietLinuxDriver

out = Path(sys.argv[1])
woke = [0]
select = selectors.SelectSelector.select
def counting(self, timeout=None):
    found = select(self, timeout)
    woke[0] += 1
    return found
selectors.SelectSelector.select = counting

class Keys(App):
    def compose(self):
        yield Static("ready")
    def on_ready(self):
        out.write_text("ready\\n")
    def on_key(self, event):
        with out.open("a") as f:
            f.write(f"{event.key} {woke[0]}\\n")
        if event.key == "q":
            self.exit()

Keys(driver_class=QuietLinuxDriver).run()
"""


def wait_for(path: Path, text: str, process: subprocess.Popen[bytes]) -> list[str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if any(line.startswith(text) for line in lines):
            return lines
        assert process.poll() is None, f"the app ended: {process.returncode}"
        time.sleep(0.02)
    raise AssertionError(f"never saw {text!r} in {path.read_text() if path.exists() else ''}")


def test_keys_arrive_and_the_input_thread_sleeps_between_them(tmp_path: Path) -> None:
    script, out = tmp_path / "keys.py", tmp_path / "keys.txt"
    script.write_text(APP)
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(Path.cwd())}
    process = subprocess.Popen(
        [sys.executable, str(script), str(out)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    drained = b""
    try:
        wait_for(out, "ready", process)
        os.write(master, b"a")
        lines = wait_for(out, "a ", process)
        woke_at_a = int(lines[-1].split()[1])
        began = time.monotonic()
        while time.monotonic() - began < 1.0:  # an idle second: Textual's thread wakes 10x
            drained += os.read(master, 65536) if _readable(master) else b""
        os.write(master, b"b")
        lines = wait_for(out, "b ", process)
        woke_at_b = int(lines[-1].split()[1])
        assert woke_at_b - woke_at_a <= 2, lines  # the "b" itself, and nothing while idle
        os.write(master, b"\x1b")  # a lone Escape: a key once no sequence follows it
        wait_for(out, "escape", process)
        os.write(master, b"q")
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            try:
                drained += os.read(master, 65536) if _readable(master) else b""
            except OSError:  # the app closed its terminal: it is ending
                break
        assert process.wait(timeout=10) == 0, drained[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(master)


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0.05)[0])
