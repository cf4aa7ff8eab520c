"""One snapshot per screen at a fixed size, with frozen checks and a fixed master key.

Regenerate after an intended change with `pytest tests/tui/test_snapshots.py
--snapshot-update`, and look at the SVGs before accepting them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from stack.doctor import Check, Status
from stack.logs import LogLine
from stack.settings import load_settings
from tests.support.gguf_factory import write_tiny_model, write_truncated
from tests.tui.conftest import FROZEN_CHECKS, write_env
from tests.tui.fakes import (
    FakeChat,
    FakeEngine,
    FakeLogs,
    fake_services,
    frozen_gpu,
    running,
    running_stack,
)
from tui.__main__ import make_app
from tui.screens.settings import SettingsTable

pytestmark = pytest.mark.tui

SIZE = (100, 32)
SnapCompare = Callable[..., bool]


def keys(*presses: str) -> Callable[[Pilot[int]], Awaitable[None]]:
    """Press keys, letting every worker finish and its messages land after each."""

    async def run(pilot: Pilot[int]) -> None:
        await settle(pilot)
        for key in presses:
            await pilot.press(key)
            await settle(pilot)

    return run


async def settle(pilot: Pilot[int]) -> None:
    for _ in range(2):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


READY_CHECKS = [
    Check("settings", Status.OK, "./.env is valid"),
    Check("docker", Status.OK, "Docker Engine 27.3.1 (API 1.47), NVIDIA runtime present"),
    Check("images", Status.OK, "inference and gateway images present"),
    Check("gpu", Status.OK, "NVIDIA GeForce RTX 4050 Laptop GPU, 1.7 GiB free of VRAM"),
    Check("models", Status.OK, "serving Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf (2 local)"),
    Check("ports", Status.OK, "127.0.0.1:8001, 127.0.0.1:8000 serve this stack"),
    Check("disk", Status.OK, "120 GiB free for models"),
]
ANSWER = [
    "Sure. A **GGUF** file holds the weights and the tokenizer in one file:\n\n",
    "1. the header (architecture, context length)\n",
    "2. the tensors, quantised\n\n",
    "```python\nprint('hello from local-chat')\n```\n",
]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Log times are shown in local time: fix the zone so pictures match everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def snapshot_app(home: Path, services: Any = None, **values: str) -> object:
    write_env(home, **values)
    return make_app(load_settings(home / ".env"), services or fake_services(FROZEN_CHECKS))


def check(snap_compare: SnapCompare, app: object, presses: Iterable[str] = ()) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=keys(*presses))


def test_dashboard(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home))


def test_dashboard_keys_panel(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), ["question_mark"])


def test_dashboard_running(snap_compare: SnapCompare, home: Path) -> None:
    engine = FakeEngine(statuses=running_stack())
    services = fake_services(READY_CHECKS, engine=engine, gpus=frozen_gpu)
    model = "Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf"
    write_tiny_model(home / "models" / model)  # CHAT_MODEL must name a file to be valid
    check(snap_compare, snapshot_app(home, services, CHAT_MODEL=model))


def test_dashboard_service_died(snap_compare: SnapCompare, home: Path) -> None:
    dead = replace(running("inference"), state="exited", health="", exit_code=137, oom_killed=True)
    engine = FakeEngine(statuses=[dead, running("api-gateway")])
    services = fake_services(READY_CHECKS, engine=engine, gpus=frozen_gpu)
    check(snap_compare, snapshot_app(home, services))


def test_models_empty(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), ["2"])


def test_models_listed(snap_compare: SnapCompare, home: Path) -> None:
    models = home / "models"
    write_tiny_model(models / "tiny-chat-F16.gguf", name="tiny-chat", seed=1)
    write_tiny_model(models / "family" / "tiny-code-Q8_0.gguf", name="tiny-code", file_type=7)
    write_truncated(models / "cut-short.gguf", name="cut-short")
    services = fake_services(FROZEN_CHECKS, gpus=frozen_gpu)
    app = snapshot_app(home, services, CHAT_MODEL="tiny-chat-F16.gguf")
    check(snap_compare, app, ["2"])


def test_logs(snap_compare: SnapCompare, home: Path) -> None:
    lines = [
        LogLine("load_model: loading model '/models/alpha.gguf'", "2025-01-01T10:00:00.10Z"),
        LogLine(
            "load_model: initializing, n_slots = 4, n_ctx_slot = 2048", "2025-01-01T10:00:00.40Z"
        ),
        LogLine("llama_server: model loaded", "2025-01-01T10:00:00.41Z"),
        LogLine("llama_server: listening on http://0.0.0.0:8080", "2025-01-01T10:00:00.41Z"),
        LogLine("srv  log_server_r: request: GET /health 127.0.0.1 200", "2025-01-01T10:00:02.00Z"),
    ]
    engine = FakeEngine(statuses=running_stack())
    logs = FakeLogs({"inference": [lines]}, hold=False)
    check(
        snap_compare,
        snapshot_app(home, fake_services(FROZEN_CHECKS, engine=engine, logs=logs)),
        ["3"],
    )


def test_logs_stack_stopped(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), ["3"])


def test_chat_empty(snap_compare: SnapCompare, home: Path) -> None:
    # Esc leaves the input: no blinking cursor in the picture.
    check(snap_compare, snapshot_app(home), ["4", "escape"])


def test_chat_after_an_answer(snap_compare: SnapCompare, home: Path) -> None:
    engine = FakeEngine(statuses=running_stack())
    chat = FakeChat(pieces=ANSWER, usage={"completion_tokens": 38})
    app = snapshot_app(home, fake_services(FROZEN_CHECKS, engine=engine, chat=chat))

    async def run(pilot: Pilot[int]) -> None:
        await keys("4")(pilot)
        await pilot.press(*"What is in a GGUF file?", "enter")
        await settle(pilot)
        pilot.app.screen.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_settings(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), ["5"])


def test_settings_with_problems(snap_compare: SnapCompare, home: Path) -> None:
    write_env(home)
    env = home / ".env"
    env.write_text(env.read_text() + "PARALLEL=lots\nMY_OWN_SETTING=kept\n")
    app = make_app(load_settings(env), fake_services(FROZEN_CHECKS))
    check(snap_compare, app, ["5"])


def test_settings_edit_error(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home)

    async def run(pilot: Pilot[int]) -> None:
        await keys("5")(pilot)
        table = pilot.app.screen.query_one(SettingsTable)
        table.move_cursor(row=table.get_row_index("CTX_SIZE"))
        await pilot.press("enter")
        await settle(pilot)
        field = pilot.app.screen.query_one("#edit-value", Input)
        field.value = "abc"
        await pilot.press("enter")
        await settle(pilot)
        pilot.app.screen.set_focus(None)  # no blinking cursor in the picture
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_connect(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), ["6"])


def test_connect_claude_code_revealed(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home)

    async def run(pilot: Pilot[int]) -> None:
        await keys("6", "s")(pilot)
        pilot.app.screen.query_one("TabbedContent").active = "tab-claude_code"
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run)
