"""The Chat screen with a fake streamer: answers stream in, Esc cancels, errors show fixes."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Markdown, Static

from stack.chat import ChatError
from tests.tui.fakes import FakeChat, FakeEngine, running_stack
from tests.tui.helpers import DEADLINE_S, SIZE, go_to, settle, text, until
from tui.__main__ import LlmTuiApp
from tui.screens.chat import ChatScreen, PendingAnswer
from tui.widgets.chat_messages import AssistantMessage, SystemLine, UserMessage, split_point

pytestmark = [pytest.mark.tui, pytest.mark.anyio]

ANSWER = "Hello from the **local** model."


@pytest.fixture
def up(engine: FakeEngine) -> FakeEngine:
    engine.statuses = running_stack()
    return engine


def chat_screen(app: LlmTuiApp) -> ChatScreen:
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    return screen


def answers(app: LlmTuiApp) -> list[AssistantMessage]:
    return list(app.screen.query(AssistantMessage))


def meta(view: AssistantMessage) -> str:
    return text(view.query_one(".chat-meta", Static))


async def send(app: LlmTuiApp, pilot: Pilot[int], prompt: str) -> None:
    field = app.screen.query_one("#chat-input", Input)
    assert app.focused is field  # given back when the last answer finished: settled before
    field.value = prompt
    await pilot.press("enter")


def test_split_point_cuts_at_paragraphs_outside_code() -> None:
    prose = "word " * 40 + "\n\n"
    assert split_point(prose * 2, 100) == len(prose)
    assert split_point(prose, 1000) is None
    fenced = "```python\n" + "x = 1\n\n" * 30 + "more"
    assert split_point(fenced, 50) is None  # every blank line is inside the fence
    closed = fenced + "\n```\n\nafter\n\n"
    assert split_point(closed, 50) == len(fenced + "\n```\n\n")


async def test_an_answer_streams_in_and_the_conversation_grows(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "chat")
        await send(app, pilot, "hi there")
        await settle(app)

        assert [text(user) for user in app.screen.query(UserMessage)] == ["hi there"]
        (view,) = answers(app)
        assert view.text == ANSWER
        assert view.border_title == "local-chat"
        assert view.query_one(Markdown).source == ANSWER
        assert meta(view) == "≈5 tokens · 4.0 tok/s · 1.8 s"  # the frozen clock's numbers
        screen = chat_screen(app)
        assert screen.history == [
            {"role": "user", "content": "hi there"},
            {"role": "assistant", "content": ANSWER},
        ]
        (request,) = chat.requests
        assert request["base_url"] == "http://127.0.0.1:8000/v1"
        assert request["key"] == app.settings.litellm_master_key
        assert request["model"] == "local-chat"

        await send(app, pilot, "and again")
        await settle(app)
        assert [m["role"] for m in chat.requests[1]["messages"]] == ["user", "assistant", "user"]
        assert len(screen.history) == 4
        assert not screen.query_one("#chat-empty").display


async def test_usage_from_the_gateway_gives_exact_tokens(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    chat.usage = {"completion_tokens": 9, "prompt_tokens": 3}
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "chat")
        await send(app, pilot, "count")
        await settle(app)
        assert meta(answers(app)[0]).startswith("9 tokens · ")


async def test_escape_cancels_and_gives_the_message_back(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    chat.hold_after = 2
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "chat")
        await send(app, pilot, "tell me everything")
        await until(lambda: answers(app)[0].text == "Hello from", "part of the answer")
        await settle(app, allow=("chat",))  # the answer waits for release
        field = app.screen.query_one("#chat-input", Input)
        assert field.disabled
        await pilot.press("escape")
        await settle(app)  # the cancel closes the stream: its worker ends, nothing more lands
        assert chat.cancelled.is_set()
        assert field.value == "tell me everything"
        assert not field.disabled and app.focused is field
        assert chat_screen(app).history == []
        assert "cancelled" in meta(answers(app)[0])
        assert answers(app)[0].text == "Hello from"


async def test_a_gateway_error_shows_the_fix_in_the_conversation(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    chat.error = ChatError("the gateway refused the key", fix="use LITELLM_MASTER_KEY from .env")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "chat")
        await send(app, pilot, "hello?")
        await settle(app)
        (line,) = app.screen.query(SystemLine)
        assert "✗ the gateway refused the key" in text(line)
        assert "→ use LITELLM_MASTER_KEY from .env" in text(line)
        assert answers(app) == []  # no empty answer box is left behind
        assert app.screen.query_one("#chat-input", Input).value == "hello?"
        assert chat_screen(app).history == []


async def test_a_stopped_stack_is_named_before_asking_the_gateway(
    app: LlmTuiApp, chat: FakeChat
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "chat")
        await send(app, pilot, "hello?")
        await settle(app)
        (line,) = app.screen.query(SystemLine)
        assert "the gateway (api-gateway) is not running" in text(line)
        assert "start the stack with u on the Dashboard" in text(line)
        assert chat.requests == []


async def test_ctrl_t_switches_to_local_code_and_ctrl_n_starts_over(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "chat")
        await pilot.press("ctrl+t")
        await settle(app)
        assert chat_screen(app).model == "local-code"
        assert "local-code" in app.screen.query_one("#chat-input", Input).placeholder
        await send(app, pilot, "write code")
        await settle(app)
        assert chat.requests[-1]["model"] == "local-code"
        assert answers(app)[0].border_title == "local-code"

        await pilot.press("ctrl+n")
        await settle(app)
        assert answers(app) == [] and not app.screen.query(UserMessage)
        assert chat_screen(app).history == []
        assert app.screen.query_one("#chat-empty").display


def test_stats_without_text_do_not_divide_by_zero() -> None:
    ticks = iter([1.0, 2.0])
    answer = PendingAnswer("p", "local-chat", lambda: next(ticks), mailbox=None)  # type: ignore[arg-type]
    answer.sent_at = 0.0
    assert answer.stats() == "≈0 tokens · 1.0 s"


async def test_a_long_answer_streams_into_several_markdown_blocks(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    paragraph = "All work and no play makes a dull model. " * 12 + "\n\n"
    chat.pieces = [paragraph] * 8 + ["```python\nprint('done')\n```\n"]
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "chat")
        await send(app, pilot, "go on")
        await settle(app)
        (view,) = answers(app)
        blocks = list(view.query(Markdown))
        assert len(blocks) > 1
        assert "\n\n".join(block.source for block in blocks) == view.text.rstrip("\n")


async def test_quitting_mid_answer_closes_the_stream(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    chat.hold_after = 2  # and never released: the model "thinks" until cancelled
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "chat")
        await send(app, pilot, "tell me everything")
        await until(lambda: answers(app)[0].text == "Hello from", "part of the answer")
        await pilot.press("ctrl+q")
    assert not app.is_running
    assert chat.cancelled.wait(timeout=DEADLINE_S)  # the answer's stream was cancelled
