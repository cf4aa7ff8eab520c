"""The TUI by key on a real Docker Engine: start, restart, swap, apply a setting, a container
killed from outside, stop — the test images (llama-server on CPU, LiteLLM), GPU=none.

Pilot drives the real app with the real services; only the doctor's checks (slow and not
what is tested) and the GPU sampler (no GPU here) are stand-ins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from stack.settings import load_settings
from tests.support.docker_engine import (
    LITELLM_IMAGE,
    LLAMA_IMAGE,
    require_engine,
    require_images,
)
from tests.support.gguf_factory import write_tiny_model
from tests.support.net import free_port
from tests.tui.fakes import fake_gpu_sampler, no_gpu
from tests.tui.helpers import notes, settle, until
from tui.__main__ import LlmTuiApp, make_app
from tui.screens.dashboard import DashboardScreen
from tui.screens.dialogs import PickServiceScreen
from tui.screens.edit_setting import EditSettingScreen
from tui.screens.models import ModelTable
from tui.screens.settings import SettingsScreen, SettingsTable
from tui.services import Services
from tui.widgets.service_card import ServiceCard

pytestmark = [pytest.mark.engine, pytest.mark.anyio]

KEY = "sk-tui-engine-" + "k" * 32
SIZE = (100, 32)
DEADLINE_S = 120.0
CALM = ("stack-events", "stack-status", "gpu-sample", "doctor", "settings-drift")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Stack:
    def __init__(self, root: Path, client: Any) -> None:
        self.root = root
        self.client = client
        self.name = "tui" + uuid.uuid4().hex[:8]
        write_tiny_model(root / "models" / "alpha.gguf", name="alpha", seed=1)
        write_tiny_model(root / "models" / "beta.gguf", name="beta", seed=2)
        self.env = root / ".env"
        self.env.write_text(
            f"STACK_NAME={self.name}\nCHAT_MODEL=alpha.gguf\nGPU=none\n"
            f"INFERENCE_IMAGE={LLAMA_IMAGE}\nGATEWAY_IMAGE={LITELLM_IMAGE}\n"
            f"API_GATEWAY_PORT={free_port()}\nINFERENCE_PORT={free_port()}\n"
            f"LITELLM_MASTER_KEY={KEY}\nCTX_SIZE=2048\nPARALLEL=1\nMAX_TOKENS=16\n"
        )

    def container(self, role: str) -> Any:
        return self.client.containers.get(f"{self.name}-{role}")

    def ids(self) -> dict[str, str]:
        label = f"llm-tui.stack={self.name}"
        found = self.client.containers.list(all=True, filters={"label": label})
        return {c.labels.get("llm-tui.role", "?"): c.id for c in found}

    def remove(self) -> None:
        label = f"llm-tui.stack={self.name}"
        for container in self.client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for network in self.client.networks.list(names=[self.name]):
            if (network.attrs.get("Labels") or {}).get("llm-tui.stack") == self.name:
                network.remove()


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    client = require_engine()
    require_images(client, LLAMA_IMAGE, LITELLM_IMAGE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    home = Stack(tmp_path, client)
    try:
        yield home
    finally:
        home.remove()
        client.close()


def real_app(stack: Stack) -> LlmTuiApp:
    services = replace(
        Services(),
        run_checks=lambda settings: [],
        make_gpu_sampler=lambda: fake_gpu_sampler(no_gpu),
        first_run_guide=False,
    )
    return make_app(load_settings(stack.env), services)


async def go_to(app: LlmTuiApp, pilot: Any, mode: str) -> None:
    """Like the TUI tier's `go_to`, but the dashboard's real event stream stays open."""
    key = {"dashboard": "1", "models": "2", "settings": "5"}[mode]
    await pilot.press(key)
    await settle(app, allow=CALM)
    assert app.current_mode == mode


def card(app: LlmTuiApp, role: str) -> ServiceCard:
    return next(c for c in app.screen.query(ServiceCard) if c.role == role)


def healthy(app: LlmTuiApp, *roles: str) -> bool:
    screen = app.screen
    if not isinstance(screen, DashboardScreen):
        return False
    statuses = {s.role: s for s in screen.stack_panel.statuses or []}
    return all(
        statuses.get(role) is not None
        and statuses[role].state == "running"
        and statuses[role].health in ("healthy", "")
        for role in roles
    )


def titled(app: LlmTuiApp, title: str) -> bool:
    return any(t == title for t, _ in notes(app))


async def test_start_restart_swap_and_stop_by_key(stack: Stack) -> None:
    app = real_app(stack)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, allow=CALM)
        await pilot.press("u")
        await until(lambda: titled(app, "Stack started"), "the stack started", DEADLINE_S)
        await until(lambda: healthy(app, "inference", "api-gateway"), "both healthy", DEADLINE_S)
        first = stack.ids()
        assert set(first) == {"inference", "api-gateway"}

        # R restarts the selected card's service (after asking which).
        card(app, "inference").focus()
        await settle(app, allow=CALM)
        started = stack.container("inference").attrs["State"]["StartedAt"]
        await pilot.press("R")
        await until(lambda: isinstance(app.screen, PickServiceScreen), "which service?")
        await pilot.press("enter")  # the selected card's service is highlighted
        await until(lambda: titled(app, "Restarted"), "restarted", DEADLINE_S)
        assert stack.container("inference").attrs["State"]["StartedAt"] != started
        assert stack.ids() == first  # restarted in place, not recreated

        # Enter on another model in Models swaps it; the gateway keeps running.
        await go_to(app, pilot, "models")
        await until(lambda: app.screen.query_one(ModelTable).row_count == 2, "two models")
        table = app.screen.query_one(ModelTable)
        table.move_cursor(row=next(i for i in range(2) if "beta" in str(table.get_row_at(i))))
        await settle(app, allow=CALM)
        await pilot.press("enter")
        await until(lambda: titled(app, "Model swapped"), "swapped", DEADLINE_S)
        after = stack.ids()
        assert after["api-gateway"] == first["api-gateway"]
        assert after["inference"] != first["inference"]
        assert stack.container("inference").labels["llm-tui.model"] == "beta.gguf"
        assert "CHAT_MODEL=beta.gguf\n" in stack.env.read_text()

        # d asks, then stops and removes both.
        await go_to(app, pilot, "dashboard")
        await pilot.press("d")
        await until(lambda: app.screen.id == "confirm-stop", "asked first")
        await pilot.press("y")
        await until(lambda: titled(app, "Stack stopped"), "stopped", DEADLINE_S)
        assert stack.ids() == {}


async def test_a_setting_applied_recreates_only_inference(stack: Stack) -> None:
    app = real_app(stack)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, allow=CALM)
        await pilot.press("u")
        await until(lambda: titled(app, "Stack started"), "the stack started", DEADLINE_S)
        before = stack.ids()

        await go_to(app, pilot, "settings")
        table = app.screen.query_one(SettingsTable)
        table.move_cursor(row=table.get_row_index("CTX_SIZE"))
        await settle(app, allow=CALM)
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, EditSettingScreen), "the editor")
        dialog = app.screen
        assert isinstance(dialog, EditSettingScreen)
        dialog.query_one("#edit-value", Input).value = "1024"
        await until(lambda: dialog.preview is not None and dialog.preview.new == "1024", "checked")
        assert dialog.preview is not None and dialog.preview.affected == ("inference",)
        await pilot.press("enter")  # the diff
        await until(lambda: dialog.reviewing, "the diff shows")
        await pilot.press("enter")  # written
        await until(lambda: isinstance(app.screen, SettingsScreen), "back on Settings")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        assert "CTX_SIZE=1024\n" in stack.env.read_text()

        # The running inference container now differs from .env: said, then applied.
        def drift_shown() -> bool:
            return any(
                s.role == "inference" and s.drift == ("CTX_SIZE",) for s in screen.statuses or []
            )

        await until(drift_shown, "the drift is known", DEADLINE_S)
        await settle(app, allow=CALM)
        assert screen.query_one("#settings-apply").display
        await pilot.press("a")
        await until(lambda: titled(app, "Settings applied"), "applied", DEADLINE_S)
        after = stack.ids()
        assert after["api-gateway"] == before["api-gateway"]  # kept running
        assert after["inference"] != before["inference"]  # recreated with -c 1024
        assert "1024" in stack.container("inference").attrs["Args"]
        await until(lambda: not any(s.drift for s in screen.statuses or []), "nothing left")
        await go_to(app, pilot, "dashboard")


async def test_a_container_killed_from_outside_is_announced(stack: Stack) -> None:
    app = real_app(stack)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, allow=CALM)
        await pilot.press("u")
        await until(lambda: titled(app, "Stack started"), "the stack started", DEADLINE_S)
        await until(lambda: healthy(app, "inference"), "inference healthy", DEADLINE_S)
        stack.container("inference").kill()  # SIGKILL, as the OOM killer or a person would
        await until(lambda: titled(app, "Service stopped"), "the death announced", DEADLINE_S)
        message = next(m for t, m in notes(app) if t == "Service stopped")
        assert f"{stack.name}-inference stopped with exit code 137" in message
        await until(
            lambda: (
                card(app, "inference").status is not None
                and card(app, "inference").status.state == "exited"
            ),  # type: ignore[union-attr]
            "the card shows it",
        )
        assert card(app, "inference").has_class("-bad")
        await pilot.press("u")  # and u brings it back
        await until(lambda: healthy(app, "inference"), "running again", DEADLINE_S)
