"""Log following and the events stream against real containers."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.engine import Engine, StackEvent
from stack.engine.logs import LogFollower
from stack.settings import load_settings
from tests.support.docker_engine import BUSYBOX_IMAGE, require_engine, require_images


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    engine_client = require_engine()
    require_images(engine_client, BUSYBOX_IMAGE)
    yield engine_client
    engine_client.close()


@pytest.fixture
def containers(client: Any) -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for container in made:
        container.remove(force=True)


def run(client: Any, made: list[Any], script: str, **kw: Any) -> Any:
    container = client.containers.run(
        BUSYBOX_IMAGE, ["sh", "-c", script], detach=True, init=True, **kw
    )
    made.append(container)
    return container


def consume_in_thread(
    follower: LogFollower,
) -> tuple[list[str], threading.Event, threading.Thread]:
    """Read ``follower`` on a thread: the lines seen so far, an event set at its end, the thread."""
    seen: list[str] = []
    done = threading.Event()

    def consume() -> None:
        for line in follower:
            seen.append(line.text)
        done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    return seen, done, thread


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` (another thread gets there); the timeout only bounds a failure."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


def blocked_in_read(thread: threading.Thread) -> bool:
    """The thread is inside a socket read right now (waiting for bytes that do not come)."""
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name in ("read", "read1", "readinto", "recv_into", "recv"):
            return True
        frame = frame.f_back
    return False


def test_flood_is_followed_line_for_line(client: Any, containers: list[Any]) -> None:
    container = run(client, containers, "seq 1 50000; printf 'no newline at end'")
    container.wait(timeout=60)
    lines = [line.text for line in LogFollower(container, timestamps=True)]
    assert len(lines) == 50_001
    assert lines[0] == "1" and lines[49_999] == "50000"
    assert lines[-1] == "no newline at end"


def test_escapes_stripped_stderr_merged_timestamps_kept(client: Any, containers: list[Any]) -> None:
    script = r"printf '\033[31mred\033[0m\n'; echo oops >&2; printf 'caf\303\251 \377\n'"
    container = run(client, containers, script)
    container.wait(timeout=30)
    lines = list(LogFollower(container, timestamps=True))
    # stdout and stderr are separate pipes: their relative order is not guaranteed.
    assert sorted(line.text for line in lines) == ["café \ufffd", "oops", "red"]
    assert all(line.timestamp.startswith("20") and line.timestamp.endswith("Z") for line in lines)
    tail = list(LogFollower(container, follow=False, tail=1, timestamps=False))
    assert len(tail) == 1 and tail[0].text == lines[-1].text


def test_follow_is_cancellable_from_another_thread(client: Any, containers: list[Any]) -> None:
    container = run(client, containers, "while true; do echo tick; sleep 0.05; done")
    follower = LogFollower(container, timestamps=False)
    seen, done, _ = consume_in_thread(follower)
    wait_until(lambda: len(seen) >= 3, "three lines followed")
    follower.close()
    assert done.wait(timeout=30), "close() did not end the iteration"


def test_close_ends_a_read_blocked_on_a_quiet_container(client: Any, containers: list[Any]) -> None:
    container = run(client, containers, "echo hello; sleep 60")
    follower = LogFollower(container, timestamps=False)
    seen, done, reader = consume_in_thread(follower)
    wait_until(lambda: seen == ["hello"], "the first line")
    # The reader is now blocked waiting for a line that never comes.
    wait_until(lambda: blocked_in_read(reader), "the reader blocked in a socket read")
    closer = threading.Thread(target=follower.close, daemon=True)
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive(), "close() blocked behind the reading thread"
    assert done.wait(timeout=30)


def test_events_report_start_and_die_with_exit_code(
    client: Any, containers: list[Any], tmp_path: Path
) -> None:
    stack = "ev" + uuid.uuid4().hex[:8]
    (tmp_path / ".env").write_text(f"STACK_NAME={stack}\nGPU=none\n")
    engine = Engine(load_settings(tmp_path / ".env"), client=client)
    events: list[StackEvent] = []
    stream = engine.events()
    thread = threading.Thread(target=lambda: events.extend(stream), daemon=True)
    thread.start()
    labels = {"llm-tui.stack": stack, "llm-tui.role": "inference"}
    container = run(client, containers, "sleep 30", labels=labels, name=f"{stack}-inference")
    wait_until(lambda: any(e.action == "start" for e in events), "the start event")
    container.kill()
    run(client, containers, "exit 0", labels={"other": "x"})  # not ours: not reported
    wait_until(lambda: any(e.action == "die" for e in events), "the die event")
    stream.close()
    thread.join(timeout=30)
    assert not thread.is_alive(), "close() did not end the events stream"
    actions = [(e.action, e.name, e.role) for e in events]
    assert ("start", f"{stack}-inference", "inference") in actions
    die = next(e for e in events if e.action == "die")
    assert die.exit_code == 137
    assert all(e.name == f"{stack}-inference" for e in events)
