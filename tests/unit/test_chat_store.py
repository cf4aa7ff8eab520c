"""Conversations on disk: append-only JSONL, read back whole, torn, killed or deleted."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stack.chat.conversation import (
    AnswerStats,
    ChatSettings,
    Conversation,
    export_markdown,
    measure,
    settings_from_text,
)
from stack.chat.store import (
    ConversationStore,
    answer_record,
    default_conversations_dir,
    drop_record,
    end_record,
    settings_record,
    title_record,
    user_record,
)
from stack.errors import LlmTuiError

pytestmark = pytest.mark.unit

NOON = datetime(2026, 12, 30, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    return ConversationStore(tmp_path / "conversations", clock=lambda: NOON)


def turn(conversation: Conversation, question: str, answer: str) -> list[dict[str, object]]:
    """The records the pane writes for one question and its answer (delta by delta)."""
    user = conversation.new_message("user", content=question, at="2026-12-30T12:00:00Z")
    reply = conversation.new_message("assistant", model="local-chat", status="streaming")
    records: list[dict[str, object]] = [user_record(user), answer_record(reply)]
    records += [{"d": reply.n, "c": word} for word in answer.split(" ")]
    reply.content, reply.status = " ".join(answer.split(" ")), "done"
    reply.stats = AnswerStats(completion_tokens=len(answer.split()), counted=True)
    return [*records, end_record(reply)]


def test_the_default_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_conversations_dir() == tmp_path / "llm-tui" / "conversations"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/is/ignored")
    assert default_conversations_dir() == Path.home() / ".local/share/llm-tui/conversations"


def test_a_conversation_is_written_as_it_goes_and_read_back(store: ConversationStore) -> None:
    conversation = store.new(ChatSettings(system="Be brief.", temperature=0.5))
    assert not store.path(conversation.id).exists()  # no file until something is written
    file = store.file(conversation)
    file.append(turn(conversation, "hi", "hello there"))
    file.append([title_record("Greetings"), settings_record(ChatSettings(model="local-code"))])
    path = store.path(conversation.id)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    first = json.loads(path.read_text().splitlines()[0])
    assert first["type"] == "conversation" and first["settings"]["system"] == "Be brief."

    loaded = store.load(conversation.id)
    assert loaded.title == "Greetings"
    assert loaded.settings == ChatSettings(model="local-code")
    assert [(m.n, m.role, m.content, m.status) for m in loaded.messages] == [
        (1, "user", "hi", "done"),
        (2, "assistant", "hello there", "done"),
    ]
    assert loaded.messages[1].stats == AnswerStats(completion_tokens=2, counted=True)
    assert loaded.next_n == 3


def test_an_answer_without_an_end_is_put_together_and_marked(store: ConversationStore) -> None:
    conversation = store.new(ChatSettings())
    file = store.file(conversation)
    user = conversation.new_message("user", content="tell me")
    answer = conversation.new_message("assistant", model="local-chat", status="streaming")
    file.append([user_record(user), answer_record(answer)])
    for piece in ("Once ", "upon ", "a time"):
        file.deltas(answer.n, piece, reasoning="hmm " if piece == "Once " else "")
    # kill -9 here: no end record; a torn last line too.
    with store.path(conversation.id).open("ab") as raw:
        raw.write(b'{"d":2,"c":"lost in the te')
    (message,) = [m for m in store.load(conversation.id).messages if m.role == "assistant"]
    assert (message.content, message.reasoning, message.status) == (
        "Once upon a time",
        "hmm ",
        "interrupted",
    )


def test_drops_take_messages_back_and_ends_of_dropped_answers_do_nothing(
    store: ConversationStore,
) -> None:
    conversation = store.new(ChatSettings())
    file = store.file(conversation)
    file.append(turn(conversation, "first", "one"))
    records = turn(conversation, "second", "two")
    file.append([*records[:-1], drop_record(4), records[-1]])  # regenerated mid-answer
    file.append(turn(conversation, "third", "three"))
    loaded = store.load(conversation.id)
    assert [m.content for m in loaded.messages] == ["first", "one", "second", "third", "three"]


def test_the_list_is_newest_first_and_reads_no_answer_text(
    store: ConversationStore, tmp_path: Path
) -> None:
    times = iter([datetime(2026, 12, 30, hour, tzinfo=UTC) for hour in (9, 10)])
    stamped = ConversationStore(store.folder, clock=lambda: next(times))
    older, newer = stamped.new(ChatSettings()), stamped.new(ChatSettings(model="local-code"))
    store.file(older).append(turn(older, "old question", "old answer"))
    store.file(newer).append(turn(newer, "new question " + "x" * 100, "new answer"))
    (store.folder / "notes.txt").write_text("not a conversation")
    (store.folder / "garbage.jsonl").write_text("{}")
    store.rename(older.id, "Renamed")  # a rename does not move it up
    summaries = store.list()
    assert [s.id for s in summaries] == [newer.id, older.id]  # same message time: by id
    assert summaries[1].title == "Renamed" and summaries[1].messages == 2
    assert summaries[0].title.startswith("new question x") and summaries[0].title.endswith("…")
    assert summaries[0].model == "local-code"


def test_delete_and_a_late_write_does_not_bring_it_back(store: ConversationStore) -> None:
    conversation = store.new(ChatSettings())
    file = store.file(conversation)
    file.append(turn(conversation, "q", "a"))
    file.forget()
    store.delete(conversation.id)
    file.deltas(2, "late")  # an answer still streaming
    assert not store.path(conversation.id).exists()
    store.rename(conversation.id, "gone")  # neither does a rename
    assert not store.path(conversation.id).exists()
    store.delete(conversation.id)  # twice is fine


def test_concurrent_appends_keep_the_header_first_and_every_line_whole(
    store: ConversationStore,
) -> None:
    conversation = store.new(ChatSettings())
    file = store.file(conversation)

    def write(n: int) -> None:
        for index in range(200):
            file.deltas(n, f"{n}:{index} " * 20)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = store.path(conversation.id).read_text().splitlines()
    assert json.loads(lines[0])["type"] == "conversation"
    assert len(lines) == 801 and all(json.loads(line) for line in lines)


def test_ids_are_checked_before_they_become_paths(store: ConversationStore) -> None:
    with pytest.raises(LlmTuiError, match="no such conversation"):
        store.load("../../etc/passwd")


def test_an_unwritable_folder_is_one_line_with_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder should be")  # fails for root too
    store = ConversationStore(blocker / "conversations")
    with pytest.raises(LlmTuiError) as error:
        store.file(store.new(ChatSettings())).append([title_record("x")])
    assert "data" in error.value.message and error.value.fix


def test_export_is_markdown_and_never_overwrites(store: ConversationStore, tmp_path: Path) -> None:
    conversation = store.new(ChatSettings(system="Be brief.\nAnd kind.", max_tokens=64))
    store.file(conversation).append(turn(conversation, "What is GGUF?", "A file format."))
    loaded = store.load(conversation.id)
    loaded.messages[1].reasoning = "They ask about GGUF."
    first = store.export(loaded, tmp_path)
    second = store.export(loaded, tmp_path)
    assert (first.name, second.name) == ("chat-what-is-gguf.md", "chat-what-is-gguf-2.md")
    assert first.read_text() == export_markdown(loaded)
    assert export_markdown(loaded) == (
        "# What is GGUF?\n\n"
        "model `local-chat` · started 2026-12-30T12:00:00Z · max_tokens 64\n\n"
        "**System prompt**\n\n> Be brief.\n> And kind.\n\n"
        "## You\n\nWhat is GGUF?\n\n"
        "## local-chat\n\n<details><summary>Reasoning</summary>\n\nThey ask about GGUF.\n\n"
        "</details>\n\nA file format.\n\n_≈3 tokens_\n"
    )


def test_what_is_sent_has_the_system_prompt_and_every_turn_with_text() -> None:
    conversation = Conversation("x", "", ChatSettings(system="Be brief."))
    conversation.new_message("user", content="q1")
    conversation.new_message("assistant", content="partial", status="stopped")
    conversation.new_message("user", content="q2")
    conversation.new_message("assistant", status="streaming")  # the answer on its way
    assert conversation.request_messages() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "partial"},
        {"role": "user", "content": "q2"},
    ]


def test_settings_typed_in_the_form_are_checked() -> None:
    settings, problems = settings_from_text(
        system=" hi ", model="local-code", temperature="0.7", max_tokens="", top_p="1"
    )
    assert problems == []
    assert settings == ChatSettings(system="hi", model="local-code", temperature=0.7, top_p=1.0)
    _, problems = settings_from_text(
        system="", model="gpt-4", temperature="hot", max_tokens="0", top_p="2"
    )
    assert problems == [
        "max tokens: at least 1",
        "model: one of local-chat, local-code",
        "temperature: 'hot' is not a number",
        "top_p: 2 is outside 0 to 1",
    ]


def test_stats_from_usage_or_counted_chunks() -> None:
    counted = measure(sent_at=0, first_at=0.5, last_at=2.5, ended_at=3, chunks=41, usage=None)
    assert counted.line() == "≈41 tokens · 20.0 tok/s · first token 0.50 s · 3.0 s"
    usage = {"completion_tokens": 81, "prompt_tokens": 1200}
    exact = measure(sent_at=0, first_at=0.5, last_at=2.5, ended_at=3, chunks=41, usage=usage)
    assert exact.line() == "81 tokens · 40.0 tok/s · first token 0.50 s · 3.0 s · prompt 1,200"
    nothing = measure(sent_at=0, first_at=None, last_at=None, ended_at=1, chunks=0, usage=None)
    assert nothing.line() == "≈0 tokens · 1.0 s"
