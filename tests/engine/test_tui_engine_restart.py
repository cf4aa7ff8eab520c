"""The Dashboard while the Docker Engine goes away and comes back under the running app.

A Docker Engine of the test's own (the shared one must stay up for the other tests) runs two
busybox containers labelled as our stack's services; the real app watches them through the
real Engine. The engine is stopped as `systemctl stop docker` stops it, then started again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stack.engine.plan import LABEL_ROLE, LABEL_STACK
from stack.settings import load_settings
from tests.support.docker_engine import BUSYBOX_IMAGE, require_engine, require_images
from tests.support.own_dockerd import OwnDockerd
from tests.tui.conftest import write_env
from tests.tui.fakes import fake_gpu_sampler, no_gpu
from tests.tui.helpers import settle, until
from tui.__main__ import LlmTuiApp, make_app
from tui.screens.dashboard import DashboardScreen
from tui.services import Services

pytestmark = [pytest.mark.engine, pytest.mark.anyio]

SIZE = (100, 32)
DEADLINE_S = 60.0
CALM = ("stack-events", "stack-status", "gpu-sample", "doctor")
ROLES = ("inference", "api-gateway")
# busybox sleep as PID 1 ignores SIGTERM; this exits at once when the engine stops it.
QUICK_TO_STOP = ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[OwnDockerd]:
    shared = require_engine()
    require_images(shared, BUSYBOX_IMAGE)
    own = OwnDockerd()
    try:
        own.start()
        own.load_image(shared, BUSYBOX_IMAGE)
        monkeypatch.setenv("DOCKER_HOST", own.host)
        for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
            monkeypatch.setenv(variable, str(tmp_path / "xdg"))
        yield own
    finally:
        own.remove()
        shared.close()


def start_services(own: OwnDockerd, stack: str) -> None:
    client = own.client()
    try:
        for role in ROLES:
            name = f"{stack}-{role}"
            existing = client.containers.list(all=True, filters={"name": name})
            if existing:
                existing[0].start()
                continue
            client.containers.run(
                BUSYBOX_IMAGE,
                QUICK_TO_STOP,
                name=name,
                labels={LABEL_STACK: stack, LABEL_ROLE: role},
                network_mode="none",
                detach=True,
            )
    finally:
        client.close()


def title(app: LlmTuiApp) -> str:
    screen = app.screen
    return str(screen.stack_panel.border_title) if isinstance(screen, DashboardScreen) else ""


def real_app(env_file: Path) -> LlmTuiApp:
    services = replace(
        Services(),
        run_checks=lambda settings: [],
        make_gpu_sampler=lambda: fake_gpu_sampler(no_gpu),
        first_run_guide=False,
    )
    return make_app(load_settings(env_file), services)


async def test_the_dashboard_says_the_engine_left_and_picks_it_up_again(
    engine: OwnDockerd, tmp_path: Path
) -> None:
    stack = "gone" + uuid.uuid4().hex[:8]
    start_services(engine, stack)
    app = real_app(write_env(tmp_path, STACK_NAME=stack, GPU="none", CHAT_MODEL=""))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, allow=CALM)
        await until(lambda: title(app) == "Stack — 2 of 2 running", "both running", DEADLINE_S)

        engine.stop()  # its containers stop with it
        await until(lambda: title(app) == "Stack — Docker unavailable", "said", DEADLINE_S)
        notice: Any = app.screen.query_one("#stack-notice")
        assert notice.display

        engine.start()  # back: the same socket, the containers exited
        await until(lambda: title(app) == "Stack — stopped (u starts it)", "back", DEADLINE_S)
        start_services(engine, stack)  # and the app follows the engine again
        await until(lambda: title(app) == "Stack — 2 of 2 running", "followed", DEADLINE_S)
        await pilot.press("q")
