"""The Chat screen against a real LiteLLM proxy in front of a real llama-server.

Only the engine is a seam here (it says the stack runs, as Docker would); the pane's own
client, its worker, its conversation files and both servers are real.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from stack.chat.store import ConversationStore
from stack.engine.gateway import write_config
from stack.settings import Settings, load_settings
from tests.support.gguf_factory import write_tiny_model
from tests.support.litellm_proxy import LiteLLMProxy, litellm_executable
from tests.support.llama_server import LlamaServer, llama_server_binary
from tests.support.tiers import unavailable
from tests.tui.fakes import FakeEngine, running_stack
from tests.tui.helpers import answer_meta, settle, until
from tui.__main__ import LlmTuiApp, make_app
from tui.screens.chat import ChatScreen
from tui.services import Services
from tui.widgets.chat_messages import AnswerView

pytestmark = pytest.mark.anyio

KEY = "sk-pane-test-" + "p" * 32
SIZE = (100, 32)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, LlamaServer]]:
    """A stack home whose .env points at a real gateway (and llama-server behind it)."""
    if llama_server_binary() is None:
        unavailable("llama-server", "not built; run scripts/build-llama-server")
    if litellm_executable() is None:
        unavailable("LiteLLM", "not installed; run scripts/litellm-venv")
    home = tmp_path_factory.mktemp("pane")
    (home / "models").mkdir()
    model = write_tiny_model(home / "models" / "tiny.gguf", seed=3, context_length=8192)
    env = home / ".env"
    env.write_text(f"CHAT_MODEL=tiny.gguf\nLITELLM_MASTER_KEY={KEY}\nMAX_TOKENS=64\n")
    with LlamaServer(model, alias="local-chat", ctx=8192, parallel=1) as llama:
        config = write_config(load_settings(env), api_bases={"chat": llama.base_url})
        with LiteLLMProxy(config, master_key=KEY) as proxy:
            env.write_text(env.read_text() + f"API_GATEWAY_PORT={proxy.port}\n")
            yield home, llama


def pane_app(home: Path) -> LlmTuiApp:
    settings: Settings = load_settings(home / ".env")
    engine = FakeEngine(statuses=running_stack())
    return make_app(settings, Services(make_engine=engine.factory))


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ConversationStore:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    return ConversationStore()


def chat(app: LlmTuiApp) -> ChatScreen:
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    return screen


async def ask(app: LlmTuiApp, pilot: Pilot[int], question: str) -> None:
    field = app.screen.query_one("#chat-input", Input)
    field.focus()
    field.value = question
    await pilot.press("enter")


def max_tokens(screen: ChatScreen, tokens: int) -> None:
    screen.change_settings(replace(screen.conversation.settings, max_tokens=tokens))


async def test_answer_stop_regenerate_and_read_back(
    gateway: tuple[Path, LlamaServer], data: ConversationStore
) -> None:
    home, _llama = gateway
    app = pane_app(home)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("4")
        await settle(app)
        await ask(app, pilot, "Tell me a story")
        await until(lambda: chat(app).turn is None and bool(app.screen.query(AnswerView)), "done")
        await settle(app)
        (first,) = app.screen.query(AnswerView)
        assert first.text and first.message.status == "done"
        assert answer_meta(first).startswith("64 tokens · ")  # usage from the server

        # A long answer, stopped with Esc while it streams.
        screen = chat(app)
        max_tokens(screen, 6000)
        await ask(app, pilot, "And a much longer one")
        await until(lambda: len(app.screen.query(AnswerView)) == 2, "the second answer box")
        second = app.screen.query(AnswerView).last()
        await until(lambda: len(second.text) > 40, "the answer streams")
        await pilot.press("escape")
        await until(lambda: screen.turn is None, "the worker ended")
        await settle(app)
        assert second.message.status == "stopped"
        assert answer_meta(second).startswith("stopped — partial answer · ")
        stopped_text = second.text

        max_tokens(screen, 32)
        await pilot.press("ctrl+r")
        await until(lambda: screen.turn is None, "the regenerated answer ended")
        await settle(app)
        last = app.screen.query(AnswerView).last()
        assert last is not second and last.message.status == "done"
        conversation_id = screen.conversation.id

    saved = data.load(conversation_id)
    assert [(m.role, m.status) for m in saved.messages] == [
        ("user", "done"),
        ("assistant", "done"),
        ("user", "done"),
        ("assistant", "done"),
    ]
    assert saved.messages[3].content != stopped_text

    again = pane_app(home)  # the app started again: the conversation comes back
    async with again.run_test(size=SIZE) as pilot:
        await settle(again)
        await pilot.press("4")
        await settle(again)
        assert chat(again).conversation.id == conversation_id
        assert [view.text for view in again.screen.query(AnswerView)] == [
            m.content for m in saved.messages if m.role == "assistant"
        ]
