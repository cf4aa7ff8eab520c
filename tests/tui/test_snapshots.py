"""One snapshot per screen at a fixed size, with frozen checks and a fixed master key.

Regenerate after an intended change with `pytest tests/tui/test_snapshots.py
--snapshot-update`, and look at the SVGs before accepting them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.screen import ModalScreen, Screen
from textual.widgets import HelpPanel, Input, Log, TabbedContent

from stack.chat import ContextOverflow, explain_status
from stack.chat.conversation import ChatSettings
from stack.chat.store import ConversationStore, answer_record, end_record, user_record
from stack.doctor import Check, Status
from stack.engine.logs import LogLine
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
from tests.tui.helpers import SIZE, freeze, settle, until
from tui.__main__ import LlmTuiApp, make_app
from tui.screens.chat import ChatScreen
from tui.screens.connect import ConnectScreen
from tui.screens.dashboard import DashboardScreen
from tui.screens.edit_setting import EditSettingScreen
from tui.screens.logs import LogsScreen
from tui.screens.models import ModelsScreen, ModelTable
from tui.screens.settings import SettingsScreen, SettingsTable
from tui.widgets.chat_messages import AnswerView
from tui.widgets.checklist import Checklist
from tui.widgets.gpu_panel import GpuPanel
from tui.widgets.service_card import ServiceCard

pytestmark = pytest.mark.tui

SnapCompare = Callable[..., bool]
RunBefore = Callable[[Pilot[int]], Awaitable[None]]
Ready = Callable[[LlmTuiApp], bool]


def shows(
    *presses: str,
    ready: Ready,
    what: str,
    then: Callable[[Pilot[int]], Awaitable[None]] | None = None,
) -> RunBefore:
    """Press keys (settling after each), run ``then``, wait until ``ready`` says the
    picture's state is there, and freeze the app so the picture is taken of exactly that."""

    async def run(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, LlmTuiApp)
        await settle(app)
        for key in presses:
            await pilot.press(key)
            await settle(app)
        if then is not None:
            await then(pilot)
        await until(lambda: ready(app), what)
        await freeze(app)
        assert ready(app), f"no longer so when pictured: {what}"

    return run


async def unfocus(pilot: Pilot[int]) -> None:
    """No focus, so no blinking cursor in the picture (after the app set its own focus)."""
    pilot.app.screen.set_focus(None)
    await settle(pilot.app)


# --- what each picture waits for -----------------------------------------------------------


def dashboard_ready(app: LlmTuiApp) -> bool:
    screen = app.screen
    if not isinstance(screen, DashboardScreen):
        return False
    panel = screen.stack_panel
    gpu = screen.query_one(GpuPanel)
    focused = app.focused
    return (
        screen.query_one(Checklist).checks is not None
        and (panel.statuses is not None or bool(panel.engine_problem))
        and gpu.reading is not None
        and isinstance(focused, ServiceCard)
        and focused.role == "inference"
    )


def keys_panel_ready(app: LlmTuiApp) -> bool:
    return dashboard_ready(app) and bool(app.screen.query(HelpPanel))


def models_ready(count: int) -> Ready:
    def ready(app: LlmTuiApp) -> bool:
        screen = app.screen
        if not isinstance(screen, ModelsScreen) or screen.has_class("-scanning"):
            return False
        table = screen.query_one(ModelTable)
        if count == 0:
            return screen.has_class("-empty") and table.row_count == 0
        return table.row_count == count and app.focused is table

    return ready


def logs_ready(state: str, lines: int, focus: str) -> Ready:
    def ready(app: LlmTuiApp) -> bool:
        screen = app.screen
        return (
            isinstance(screen, LogsScreen)
            and screen._state == state
            and screen.query_one(Log).line_count == lines
            and app.focused is screen.query_one(focus)
        )

    return ready


def unfocused(kind: type[Screen[Any]]) -> Ready:
    return lambda app: isinstance(app.screen, kind) and app.focused is None


def table_ready(app: LlmTuiApp) -> bool:
    screen = app.screen
    if not isinstance(screen, SettingsScreen):
        return False
    table = screen.query_one(SettingsTable)
    return table.row_count > 0 and app.focused is table


def check(snap_compare: SnapCompare, app: object, run_before: RunBefore) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


READY_CHECKS = [
    Check("settings", Status.OK, "./.env is valid"),
    Check("docker", Status.OK, "Docker Engine 27.3.1 (API 1.47), NVIDIA runtime present"),
    Check("images", Status.OK, "inference and gateway images present"),
    Check("gpu", Status.OK, "NVIDIA GeForce RTX 4050 Laptop GPU, 1.7 GiB free of VRAM"),
    Check("models", Status.OK, "serving Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf (2 local)"),
    Check("ports", Status.OK, "127.0.0.1:8001, 127.0.0.1:8000 serve this stack"),
    Check("disk", Status.OK, "120 GiB free for models"),
]
NO_DB = '{"error":{"message":"No connected db.","type":"no_db_connection","code":"400"}}'
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


def snapshot_app(home: Path, services: Any = None, **values: str) -> LlmTuiApp:
    write_env(home, **values)
    return make_app(load_settings(home / ".env"), services or fake_services(FROZEN_CHECKS))


DASHBOARD = shows(ready=dashboard_ready, what="checks, statuses, GPU line and card focus")


def test_dashboard(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), DASHBOARD)


def test_dashboard_keys_panel(snap_compare: SnapCompare, home: Path) -> None:
    run = shows("question_mark", ready=keys_panel_ready, what="the dashboard with its keys")
    check(snap_compare, snapshot_app(home), run)


def test_dashboard_running(snap_compare: SnapCompare, home: Path) -> None:
    engine = FakeEngine(statuses=running_stack())
    services = fake_services(READY_CHECKS, engine=engine, gpus=frozen_gpu)
    model = "Qwen2.5-Coder-7B-Instruct-Q4_K_M.gguf"
    write_tiny_model(home / "models" / model)  # CHAT_MODEL must name a file to be valid
    check(snap_compare, snapshot_app(home, services, CHAT_MODEL=model), DASHBOARD)


def test_dashboard_service_died(snap_compare: SnapCompare, home: Path) -> None:
    dead = replace(running("inference"), state="exited", health="", exit_code=137, oom_killed=True)
    engine = FakeEngine(statuses=[dead, running("api-gateway")])
    services = fake_services(READY_CHECKS, engine=engine, gpus=frozen_gpu)
    check(snap_compare, snapshot_app(home, services), DASHBOARD)


def test_models_empty(snap_compare: SnapCompare, home: Path) -> None:
    run = shows("2", ready=models_ready(0), what="the scan found nothing")
    check(snap_compare, snapshot_app(home), run)


def test_models_listed(snap_compare: SnapCompare, home: Path) -> None:
    models = home / "models"
    write_tiny_model(models / "tiny-chat-F16.gguf", name="tiny-chat", seed=1)
    write_tiny_model(models / "family" / "tiny-code-Q8_0.gguf", name="tiny-code", file_type=7)
    write_truncated(models / "cut-short.gguf", name="cut-short")
    services = fake_services(FROZEN_CHECKS, gpus=frozen_gpu)
    app = snapshot_app(home, services, CHAT_MODEL="tiny-chat-F16.gguf")
    run = shows("2", ready=models_ready(3), what="three rows, and the table has focus")
    check(snap_compare, app, run)


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
    logs = FakeLogs({"inference": [lines]}, hold=False)  # the stream ends: the stop note
    app = snapshot_app(home, fake_services(FROZEN_CHECKS, engine=engine, logs=logs))
    run = shows(
        "3",
        ready=logs_ready("stopped", len(lines) + 1, "#logs-view"),
        what="the lines and the note",
    )
    check(snap_compare, app, run)


def test_logs_stack_stopped(snap_compare: SnapCompare, home: Path) -> None:
    run = shows("3", ready=logs_ready("not available", 0, "#logs-tabs"), what="no container")
    check(snap_compare, snapshot_app(home), run)


# --- chat ---------------------------------------------------------------------------------

CHAT_CLOCK = datetime(2026, 12, 30, 14, 25, 0, tzinfo=UTC)


def chat_services(chat: FakeChat | None = None, *, up: bool = True) -> Any:
    """Fakes for the stack, a real conversation store with a fixed clock (dates on screen)."""
    engine = FakeEngine(statuses=running_stack() if up else [])
    return fake_services(
        FROZEN_CHECKS,
        engine=engine,
        chat=chat or FakeChat(),
        conversation_store=lambda: ConversationStore(clock=lambda: CHAT_CLOCK),
    )


def chat_idle(app: LlmTuiApp) -> bool:
    screen = app.screen
    return isinstance(screen, ChatScreen) and screen.turn is None and app.focused is None


def asks(question: str, *then: str, streaming: bool = False, new: bool = False) -> RunBefore:
    """Go to Chat (``new``: a new conversation), ask ``question``, wait for the answer (or
    its start), press ``then``, and freeze with no focus (no blinking cursor)."""

    async def run(pilot: Pilot[int]) -> None:
        app = pilot.app
        assert isinstance(app, LlmTuiApp)
        allow = ("chat",) if streaming else ()
        await settle(app)
        await pilot.press("4", *(("ctrl+n",) if new else ()))
        await settle(app)
        await pilot.press(*question, "enter")
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        if streaming:
            await until(
                lambda: bool(screen.query(AnswerView)) and screen.query_one(AnswerView).shows_text,
                "text",
            )
        await settle(app, allow=allow)
        for key in then:
            await pilot.press(key)
            await settle(app, allow=allow)
        if not isinstance(app.screen, ModalScreen):
            app.screen.set_focus(None)
        await freeze(app, allow=allow)

    return run


def test_chat_empty(snap_compare: SnapCompare, home: Path) -> None:
    # Esc leaves the input: no blinking cursor in the picture.
    run = shows("4", "escape", ready=unfocused(ChatScreen), what="the input left")
    check(snap_compare, snapshot_app(home, chat_services()), run)


def test_chat_after_an_answer(snap_compare: SnapCompare, home: Path) -> None:
    chat = FakeChat(pieces=ANSWER, usage={"completion_tokens": 38, "prompt_tokens": 24})
    check(snap_compare, snapshot_app(home, chat_services(chat)), asks("What is in a GGUF file?"))


def test_chat_streaming(snap_compare: SnapCompare, home: Path) -> None:
    chat = FakeChat(pieces=ANSWER, hold_after=2)  # the model pauses mid-answer
    run = asks("What is in a GGUF file?", streaming=True)
    check(snap_compare, snapshot_app(home, chat_services(chat)), run)


def test_chat_stopped(snap_compare: SnapCompare, home: Path) -> None:
    chat = FakeChat(pieces=ANSWER, hold_after=2)
    run = asks("What is in a GGUF file?", "escape", streaming=True)
    check(snap_compare, snapshot_app(home, chat_services(chat)), run)


def test_chat_reasoning_folded(snap_compare: SnapCompare, home: Path) -> None:
    chat = FakeChat(pieces=ANSWER, reasoning=["The user asks about GGUF. ", "List the parts."])
    check(snap_compare, snapshot_app(home, chat_services(chat)), asks("What is in a GGUF file?"))


def test_chat_bad_key(snap_compare: SnapCompare, home: Path) -> None:
    chat = FakeChat(error=explain_status(400, NO_DB))
    check(snap_compare, snapshot_app(home, chat_services(chat)), asks("hello?"))


def test_chat_context_overflow(snap_compare: SnapCompare, home: Path) -> None:
    chat = FakeChat(error=ContextOverflow(2300, 2048))
    check(snap_compare, snapshot_app(home, chat_services(chat)), asks("one more question"))


def test_chat_stack_stopped(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home, chat_services(up=False)), asks("hello?"))


def test_chat_copy_picker(snap_compare: SnapCompare, home: Path) -> None:
    chat = FakeChat(pieces=ANSWER)
    check(snap_compare, snapshot_app(home, chat_services(chat)), asks("GGUF?", "ctrl+y"))


def test_chat_settings_dialog(snap_compare: SnapCompare, home: Path) -> None:
    chat = FakeChat(pieces=ANSWER)
    check(snap_compare, snapshot_app(home, chat_services(chat)), asks("GGUF?", "ctrl+s"))


def test_chat_conversations(snap_compare: SnapCompare, home: Path) -> None:
    store = ConversationStore(clock=lambda: CHAT_CLOCK)
    older = store.new(ChatSettings(model="local-code"))
    file = store.file(older)
    file.append(
        [
            user_record(
                older.new_message("user", content="Write a quicksort", at="2026-12-29T09:00:00Z")
            )
        ]
    )
    store.rename(older.id, "Sorting in Python")
    chat = FakeChat(pieces=ANSWER)
    run = asks("GGUF?", "ctrl+o", new=True)
    check(snap_compare, snapshot_app(home, chat_services(chat)), run)


def test_chat_resumed_after_a_kill(snap_compare: SnapCompare, home: Path) -> None:
    """The newest conversation comes back; an answer cut off by kill -9 is marked."""
    store = ConversationStore(clock=lambda: CHAT_CLOCK)
    conversation = store.new(ChatSettings())
    file = store.file(conversation)
    for turn in range(40):
        user = conversation.new_message(
            "user", content=f"Question {turn}?", at="2026-12-30T14:25:00Z"
        )
        answer = conversation.new_message("assistant", model="local-chat", status="streaming")
        out = [
            user_record(user),
            answer_record(answer),
            {"d": answer.n, "c": f"Answer **{turn}**."},
        ]
        if turn < 39:
            answer.content, answer.status = f"Answer **{turn}**.", "done"
            out.append(end_record(answer))
        file.append(out)

    def resumed(app: LlmTuiApp) -> bool:
        screen = app.screen
        shown = isinstance(screen, ChatScreen) and len(screen.chat_log.views) > 0
        return shown and app.focused is None

    async def leave(pilot: Pilot[int]) -> None:
        await settle(pilot.app)
        pilot.app.screen.set_focus(None)

    run = shows("4", ready=resumed, what="the conversation back, no focus", then=leave)
    check(snap_compare, snapshot_app(home, chat_services()), run)


def test_settings(snap_compare: SnapCompare, home: Path) -> None:
    check(snap_compare, snapshot_app(home), shows("5", ready=table_ready, what="the table"))


def test_settings_with_problems(snap_compare: SnapCompare, home: Path) -> None:
    write_env(home)
    env = home / ".env"
    env.write_text(env.read_text() + "PARALLEL=lots\nMY_OWN_SETTING=kept\n")
    app = make_app(load_settings(env), fake_services(FROZEN_CHECKS))
    check(snap_compare, app, shows("5", ready=table_ready, what="the table"))


def test_settings_edit_error(snap_compare: SnapCompare, home: Path) -> None:
    app = snapshot_app(home)

    def rejected(app: LlmTuiApp) -> bool:
        dialog = app.screen
        return (
            isinstance(dialog, EditSettingScreen)
            and dialog.query_one("#edit-error").has_class("-visible")
            and app.focused is dialog.query_one("#edit-value")  # refocused on the error
        )

    async def edit(pilot: Pilot[int]) -> None:
        table = app.screen.query_one(SettingsTable)
        table.move_cursor(row=table.get_row_index("CTX_SIZE"))
        await pilot.press("enter")
        await settle(app)
        field = app.screen.query_one("#edit-value", Input)
        field.value = "abc"
        await pilot.press("enter")
        await until(lambda: rejected(app), "the edit was rejected and the field refocused")
        await unfocus(pilot)

    run = shows("5", ready=unfocused(EditSettingScreen), what="the error, no focus", then=edit)
    check(snap_compare, app, run)


def test_connect(snap_compare: SnapCompare, home: Path) -> None:
    run = shows("6", ready=lambda app: isinstance(app.screen, ConnectScreen), what="Connect")
    check(snap_compare, snapshot_app(home), run)


def test_connect_claude_code_revealed(snap_compare: SnapCompare, home: Path) -> None:
    def revealed(app: LlmTuiApp) -> bool:
        screen = app.screen
        return (
            isinstance(screen, ConnectScreen)
            and screen.reveal
            and screen.query_one(TabbedContent).active == "tab-claude-code"
        )

    async def claude(pilot: Pilot[int]) -> None:
        pilot.app.screen.query_one(TabbedContent).active = "tab-claude-code"
        await settle(pilot.app)

    run = shows("6", "s", ready=revealed, what="the key shown, Claude Code's tab", then=claude)
    check(snap_compare, snapshot_app(home), run)
