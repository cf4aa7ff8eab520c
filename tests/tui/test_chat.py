"""The Chat screen with a fake streamer and real conversation files in a temporary home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, TextArea

from stack.chat import ChatError, ContextOverflow, KeyRefused
from stack.chat.conversation import ChatSettings, Message
from stack.chat.store import ConversationStore, answer_record, end_record, user_record
from tests.tui.fakes import FakeChat, FakeEngine, running_stack
from tests.tui.helpers import DEADLINE_S, SIZE, answer_meta, go_to, settle, text, until
from tui.__main__ import LlmTuiApp
from tui.screens.chat import ChatScreen
from tui.screens.chat_dialogs import ChatSettingsScreen, ConversationsScreen, CopyScreen
from tui.widgets.chat_markdown import render_markdown
from tui.widgets.chat_messages import AnswerView, SystemLine, UserMessage, pack

pytestmark = [pytest.mark.tui, pytest.mark.anyio]

ANSWER = "Hello from the **local** model."


@pytest.fixture
def up(engine: FakeEngine) -> FakeEngine:
    engine.statuses = running_stack()
    return engine


def test_the_numbers_wrap_between_figures_never_inside_one() -> None:
    parts = ["stopped — partial answer", "≈1,234 tokens", "123.4 tok/s", "first token 0.12 s"]
    shown = [row.plain for row in pack([Content(part) for part in [*parts, "12.3 s"]], 40)]
    assert shown == [
        "stopped — partial answer · ≈1,234 tokens",
        "123.4 tok/s · first token 0.12 s",
        "12.3 s",
    ]
    assert [row.plain for row in pack([Content("a" * 14), Content("b")], 6)] == [
        "aaaaaa",
        "aaaaaa",
        "aa · b",  # a part wider than the box wraps on its own; the next one follows it
    ]


@pytest.fixture
def store(home: Path) -> ConversationStore:
    return ConversationStore()  # XDG_DATA_HOME is the test's folder (conftest)


def chat_screen(app: LlmTuiApp) -> ChatScreen:
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    return screen


def answers(app: LlmTuiApp) -> list[AnswerView]:
    return list(app.screen.query(AnswerView))


def rows(view: AnswerView) -> list[str]:
    return view.rows_text()


def field(app: LlmTuiApp) -> Input:
    return app.screen.query_one("#chat-input", Input)


def records(store: ConversationStore) -> list[dict[str, Any]]:
    (path,) = store.folder.glob("*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


async def open_chat(app: LlmTuiApp, pilot: Pilot[int]) -> None:
    await settle(app)
    await go_to(app, pilot, "chat")
    await settle(app)


async def send(app: LlmTuiApp, pilot: Pilot[int], prompt: str) -> None:
    assert app.focused is field(app)
    field(app).value = prompt
    await pilot.press("enter")


async def test_an_answer_streams_in_is_saved_and_the_conversation_grows(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat, store: ConversationStore
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "hi there")
        await settle(app)

        assert [text(user) for user in app.screen.query(UserMessage)] == ["hi there"]
        (view,) = answers(app)
        assert view.text == ANSWER
        assert view.title == "local-chat"
        assert rows(view)[0] == "Hello from the local model."  # Markdown, drawn
        # The frozen clock's numbers: 5 chunks, 0.25 s apart.
        assert answer_meta(view) == "≈5 tokens · 4.0 tok/s · first token 0.25 s · 1.8 s"
        (request,) = chat.requests
        assert request["base_url"] == "http://127.0.0.1:8000/v1"
        assert request["key"] == app.settings.litellm_master_key
        assert request["model"] == "local-chat"
        # Nothing overridden: the .env defaults go with the request.
        assert (request["temperature"], request["max_tokens"]) == (0.2, 1024)
        assert request["top_p"] is None

        await send(app, pilot, "and again")
        await settle(app)
        sent = chat.requests[1]["messages"]
        assert sent == [
            {"role": "user", "content": "hi there"},
            {"role": "assistant", "content": ANSWER},
            {"role": "user", "content": "and again"},
        ]
        assert not app.screen.query_one("#chat-empty").display

    saved = store.load(store.list()[0].id)
    assert [(m.role, m.content, m.status) for m in saved.messages] == [
        ("user", "hi there", "done"),
        ("assistant", ANSWER, "done"),
        ("user", "and again", "done"),
        ("assistant", ANSWER, "done"),
    ]
    kinds = [record.get("type", "delta") for record in records(store)]
    assert kinds[0] == "conversation"
    assert kinds.count("delta") == 10  # every piece written as it came
    assert kinds.count("end") == 2


async def test_usage_from_the_gateway_gives_exact_tokens(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    chat.usage = {"completion_tokens": 9, "prompt_tokens": 31}
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "count")
        await settle(app)
        line = answer_meta(answers(app)[0])
        assert line.startswith("9 tokens · ")
        assert line.endswith(" · prompt 31")


async def test_the_input_stays_live_while_an_answer_streams(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    chat.hold_after = 2
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "tell me everything")
        await until(lambda: answers(app)[0].text == "Hello from", "part of the answer")
        await settle(app, allow=("chat",))
        assert not field(app).disabled and app.focused is field(app)
        await pilot.press(*"next one", "enter")  # typed meanwhile; Enter waits its turn
        await settle(app, allow=("chat",))
        assert field(app).value == "next one"
        assert len(chat.requests) == 1
        chat.release.set()
        await settle(app)
        assert answers(app)[0].text == ANSWER


async def test_escape_stops_the_answer_and_keeps_what_came(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat, store: ConversationStore
) -> None:
    chat.hold_after = 2
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "tell me everything")
        await until(lambda: answers(app)[0].text == "Hello from", "part of the answer")
        await settle(app, allow=("chat",))
        await pilot.press("escape")
        await settle(app)  # the stream was closed: its worker ended, nothing more lands
        assert chat.cancelled.is_set()
        (view,) = answers(app)
        assert view.text == "Hello from"
        assert answer_meta(view).startswith("stopped — partial answer · ≈2 tokens")
        screen = chat_screen(app)
        assert screen.turn is None and field(app).value == ""
        assert [m.status for m in screen.conversation.messages] == ["done", "stopped"]
        # The next question builds on what the model said, as far as it got.
        chat.hold_after = None
        await send(app, pilot, "go on")
        await settle(app)
        assert chat.requests[-1]["messages"][1] == {"role": "assistant", "content": "Hello from"}
    ends = [r for r in records(store) if r.get("type") == "end"]
    assert [(e["status"], e["content"]) for e in ends] == [
        ("stopped", "Hello from"),
        ("done", ANSWER),
    ]


async def test_escape_before_the_first_token_gives_the_message_back(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat, store: ConversationStore
) -> None:
    chat.hold_after = 0
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "think hard")
        await until(lambda: bool(chat.requests), "the request went out")
        await settle(app, allow=("chat",))
        assert answer_meta(answers(app)[0]) == "waiting for the model…"
        await pilot.press("escape")
        await settle(app)
        assert answers(app) == [] and not app.screen.query(UserMessage)
        assert field(app).value == "think hard"
        assert chat_screen(app).conversation.messages == []
    assert store.load(store.list()[0].id).messages == []  # written, then dropped


async def test_a_gateway_error_shows_the_fix_and_gives_the_message_back(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    chat.error = KeyRefused("wrong key: the gateway refused it", fix="use LITELLM_MASTER_KEY")
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "hello?")
        await settle(app)
        (line,) = app.screen.query(SystemLine)
        assert "✗ wrong key: the gateway refused it" in text(line)
        # The pane sent the key in .env: the gateway runs with another, `u` recreates it.
        assert "→ the gateway was started with another key" in text(line)
        assert "u on the Dashboard (1) recreates it" in text(line)
        assert answers(app) == []  # no empty answer box is left behind
        assert field(app).value == "hello?"
        assert chat_screen(app).conversation.messages == []


async def test_a_conversation_longer_than_a_slot_says_how_long_and_what_to_do(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    chat.error = ContextOverflow(2300, 2048)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "a long question")
        await settle(app)
        (line,) = app.screen.query(SystemLine)
        assert "this conversation is 2,300 tokens; a slot holds 2,048" in text(line)
        assert "new conversation (ctrl+n)" in text(line) and "`llm-tui tune`" in text(line)


async def test_a_stream_that_breaks_off_keeps_the_text_and_says_why(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    chat.error = ChatError("the connection to the gateway broke off mid-answer", fix="check it")
    chat.error_after = 3
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "tell me")
        await settle(app)
        (view,) = answers(app)
        assert view.text == "Hello from the"
        assert " ".join(rows(view)[2:]).startswith("broke off — the connection to the gateway")
        (line,) = app.screen.query(SystemLine)
        assert "→ check it" in text(line)
        assert field(app).value == ""  # the question stays in the conversation


async def test_a_stopped_stack_is_named_before_asking_the_gateway(
    app: LlmTuiApp, chat: FakeChat
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "hello?")
        await settle(app)
        (line,) = app.screen.query(SystemLine)
        assert "the gateway (api-gateway) is not running" in text(line)
        assert "start the stack with u on the Dashboard" in text(line)
        assert chat.requests == []


async def test_regenerate_replaces_the_last_answer(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat, store: ConversationStore
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "hi")
        await settle(app)
        chat.pieces = ["A ", "second ", "try."]
        await pilot.press("ctrl+r")
        await settle(app)
        (view,) = answers(app)
        assert view.text == "A second try."
        assert chat.requests[-1]["messages"] == [{"role": "user", "content": "hi"}]
    (saved,) = store.list()
    messages = store.load(saved.id).messages
    assert [(m.role, m.content) for m in messages] == [
        ("user", "hi"),
        ("assistant", "A second try."),
    ]


async def test_up_edits_the_last_message_and_resends_it(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat, store: ConversationStore
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "hi ther")
        await settle(app)
        await pilot.press("up")
        await settle(app)
        assert field(app).value == "hi ther"
        assert "Edit your last message" in field(app).placeholder
        await pilot.press("e", "enter")
        await settle(app)
        assert [text(user) for user in app.screen.query(UserMessage)] == ["hi there"]
        assert len(answers(app)) == 1
        assert chat.requests[-1]["messages"] == [{"role": "user", "content": "hi there"}]
        # Esc leaves an edit untouched.
        await pilot.press("up", "escape")
        await settle(app)
        assert field(app).value == "" and chat_screen(app).editing is None
    (saved,) = store.list()
    assert [m.content for m in store.load(saved.id).messages] == ["hi there", ANSWER]


async def test_copy_takes_the_answer_or_a_chosen_code_block(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat, store: ConversationStore
) -> None:
    chat.pieces = ["Run this:\n\n```bash\necho one\n```\n\nor\n\n```python\nprint(2)\n```\n"]
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "how?")
        await settle(app)
        assert any(row.startswith(" 1 · bash") for row in rows(answers(app)[0]))
        await pilot.press("ctrl+y")
        await settle(app)
        dialog = app.screen
        assert isinstance(dialog, CopyScreen)
        labels = [choice.label for choice in dialog.choices]
        assert labels[1:] == ["Code 1 · bash · echo one", "Code 2 · python · print(2)"]
        await pilot.press("down", "down", "enter")
        await settle(app)
        assert app.clipboard == "print(2)\n"
        assert (store.folder.parent / "clipboard.txt").read_text() == "print(2)\n"
        ((_, note),) = [n for n in _notes(app) if n[0] == "Copied"]
        assert "the code block (9 characters)" in note and "OSC 52" in note


async def test_reasoning_is_folded_under_the_answer(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    chat.reasoning = ["The user ", "greets me. ", "I greet back."]
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "hi")
        await settle(app)
        (view,) = answers(app)
        assert rows(view)[0] == "▸ reasoning · 7 words (ctrl+f shows it)"
        assert rows(view)[2] == "Hello from the local model."
        await pilot.press("ctrl+f")
        await settle(app)
        assert rows(view)[:2] == [
            "▾ reasoning · 7 words (ctrl+f folds it)",
            "The user greets me. I greet back.",
        ]
        assert chat.requests[0]["messages"] == [{"role": "user", "content": "hi"}]


async def test_ctrl_t_switches_the_model_and_ctrl_n_starts_over(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat, store: ConversationStore
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "write code")
        await settle(app)
        await pilot.press("ctrl+t")
        await settle(app)
        assert chat_screen(app).conversation.settings.model == "local-code"
        assert "local-code" in field(app).placeholder
        await send(app, pilot, "more code")
        await settle(app)
        assert chat.requests[-1]["model"] == "local-code"
        assert answers(app)[-1].title == "local-code"

        await pilot.press("ctrl+n")
        await settle(app)
        assert answers(app) == [] and not app.screen.query(UserMessage)
        assert chat_screen(app).conversation.messages == []
        assert app.screen.query_one("#chat-empty").display
    (saved,) = store.list()  # the new one has no file until its first message
    assert store.load(saved.id).settings.model == "local-code"


async def test_settings_of_a_conversation_go_with_its_requests(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat, store: ConversationStore
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await pilot.press("ctrl+s")
        await settle(app)
        dialog = app.screen
        assert isinstance(dialog, ChatSettingsScreen)
        dialog.query_one("#chat-settings-system", TextArea).text = "Answer in French."
        dialog.query_one("#chat-settings-temperature", Input).value = "7"
        await pilot.press("ctrl+s")
        await settle(app)
        assert "temperature: 7 is outside 0 to 2" in text(dialog.query_one("#chat-settings-error"))
        dialog.query_one("#chat-settings-temperature", Input).value = "0.7"
        dialog.query_one("#chat-settings-max-tokens", Input).value = "64"
        dialog.query_one("#chat-settings-top-p", Input).value = "0.9"
        dialog.query_one("#chat-settings-title", Input).value = "French lessons"
        await pilot.press("ctrl+s")
        await settle(app)
        assert isinstance(app.screen, ChatScreen)
        heading = text(app.screen.query_one("#chat-heading"))
        assert heading.startswith("French lessons")
        assert "temperature 0.7 · max 64 tokens · top_p 0.9 · system prompt" in heading
        await send(app, pilot, "bonjour")
        await settle(app)
        request = chat.requests[-1]
        assert request["messages"][0] == {"role": "system", "content": "Answer in French."}
        assert (request["temperature"], request["max_tokens"], request["top_p"]) == (0.7, 64, 0.9)
    (saved,) = store.list()
    assert saved.title == "French lessons"
    assert store.load(saved.id).settings == ChatSettings(
        system="Answer in French.", temperature=0.7, max_tokens=64, top_p=0.9
    )


def write_conversation(store: ConversationStore, turns: int, *, finished: bool = True) -> str:
    """A saved conversation of ``turns`` questions and answers, written as the pane would."""
    conversation = store.new(ChatSettings())
    file = store.file(conversation)
    for turn in range(turns):
        user = conversation.new_message("user", content=f"question {turn}")
        answer = conversation.new_message("assistant", model="local-chat", status="streaming")
        out = [user_record(user), answer_record(answer), {"d": answer.n, "c": f"answer {turn}"}]
        if finished or turn < turns - 1:
            answer.content, answer.status = f"answer {turn}", "done"
            out.append(end_record(answer))
        file.append(out)
    return conversation.id


async def test_the_newest_conversation_is_resumed_and_an_unfinished_answer_is_marked(
    app: LlmTuiApp, up: FakeEngine, store: ConversationStore
) -> None:
    write_conversation(store, 2, finished=False)  # the app was killed mid-answer
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        views = answers(app)
        assert [view.text for view in views] == ["answer 0", "answer 1"]
        assert answer_meta(views[1]) == "interrupted — llm-tui stopped mid-answer"
        assert text(app.screen.query_one("#chat-heading")).startswith("question 0")


async def test_a_long_conversation_opens_with_its_newest_messages(
    app: LlmTuiApp, up: FakeEngine, store: ConversationStore
) -> None:
    write_conversation(store, 250)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        screen = chat_screen(app)
        shown = len(screen.chat_log.views)
        assert 0 < shown < 500 and screen.chat_log.hidden == 500 - shown
        assert text(screen.query_one("#chat-earlier")).startswith(f"▲ {500 - shown} earlier")
        assert answers(app)[-1].text == "answer 249"
        screen.chat_log.scroll_home(animate=False)
        await until(lambda: screen.chat_log.hidden < 500 - shown, "older messages mounted")
        await settle(app)
        assert len(screen.chat_log.views) > shown


async def test_the_list_opens_renames_exports_and_deletes(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat, store: ConversationStore, home: Path
) -> None:
    older = write_conversation(store, 1)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await pilot.press("ctrl+n")
        await send(app, pilot, "a new one")
        await settle(app)
        newest = chat_screen(app).conversation.id
        await pilot.press("ctrl+o")
        await settle(app)
        dialog = app.screen
        assert isinstance(dialog, ConversationsScreen)
        options = dialog.query_one(OptionList)
        assert [options.get_option_at_index(i).id for i in range(2)] == [newest, older]
        assert options.highlighted == 0  # the one shown
        await pilot.press("down", "r")
        await settle(app)
        await pilot.press(*"First steps", "enter")  # the old title is selected: replaced
        await settle(app)
        assert store.list()[1].title == "First steps"
        await pilot.press("e")
        await settle(app)
        exported = home / "chat-first-steps.md"
        assert exported.read_text().startswith("# First steps\n")
        await pilot.press("enter")  # open it
        await settle(app)
        assert chat_screen(app).conversation.id == older
        assert [view.text for view in answers(app)] == ["answer 0"]

        await pilot.press("ctrl+o")
        await settle(app)
        await pilot.press("d")
        await settle(app)
        await pilot.press("y")
        await settle(app)
        assert [summary.id for summary in store.list()] == [newest]
        await pilot.press("escape")
        await settle(app)
        screen = chat_screen(app)  # the one shown was deleted: a new, empty one instead
        assert screen.conversation.messages == [] and screen.conversation.id != older


async def test_quitting_mid_answer_closes_the_stream(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    chat.hold_after = 2  # and never released: the model "thinks" until cancelled
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "tell me everything")
        await until(lambda: answers(app)[0].text == "Hello from", "part of the answer")
        await pilot.press("ctrl+q")
    assert not app.is_running
    assert chat.cancelled.wait(timeout=DEADLINE_S)  # the answer's stream was cancelled


async def test_a_long_markdown_answer_is_drawn_exactly_as_a_whole_render(
    app: LlmTuiApp, up: FakeEngine, chat: FakeChat
) -> None:
    section = (
        "## Part\n\nSome **bold** text and `code`, then a list:\n\n- one\n- two\n  - three\n\n"
        "| a | b |\n|---|--:|\n| 1 | 22 |\n\n```python\nfor i in range(3):\n    print(i)\n```\n\n"
        "> quoted\n\n"
    )
    whole = section * 12
    chat.pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(app, pilot)
        await send(app, pilot, "long one")
        await settle(app)
        (view,) = answers(app)
        assert view.text == whole
        drawn = rows(view)[:-2]  # without the blank row and the numbers
        width = view.size.width - 4
        assert drawn == [row.plain for row in render_markdown(whole, width)]


def _notes(app: LlmTuiApp) -> list[tuple[str, str]]:
    return [(note.title, note.message) for note in app._notifications]


def test_messages_keep_control_characters_off_the_terminal() -> None:
    message = Message(1, "user", content="bell\x07 escape\x1b[2J")
    assert "\x1b" not in str(UserMessage(message).visual)
    assert "␛[2J" in str(UserMessage(message).visual)
