"""The Chat screen's keys besides sending: edit, copy, reasoning, model, settings, the list.

`ChatActions` is the Chat screen's base: what it does here touches the conversation shown
(its settings, its title, its file) and the dialogs in `chat_dialogs`, never a stream.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from textual import work
from textual.widgets import Input, Select

from stack.atomic import write_atomic
from stack.chat.conversation import MODELS, ChatSettings, Conversation, Message
from stack.chat.store import ConversationFile, ConversationStore, settings_record, title_record
from tui.screens.base import ModeScreen
from tui.screens.chat_dialogs import (
    ChatSettingsScreen,
    ConversationsScreen,
    Copyable,
    CopyScreen,
    ListOutcome,
    SettingsOutcome,
)
from tui.widgets.chat_log import ConversationLog
from tui.widgets.chat_markdown import code_blocks

CLIPBOARD_FILE = "clipboard.txt"  # beside the conversations folder


class ChatActions(ModeScreen):
    store: ConversationStore | None
    conversation: Conversation
    file: ConversationFile | None
    turn: object | None
    editing: Message | None

    # --- provided by the Chat screen -------------------------------------------------------

    @property
    def chat_log(self) -> ConversationLog:
        raise NotImplementedError

    @property
    def input(self) -> Input:
        raise NotImplementedError

    def placeholder(self) -> str:
        raise NotImplementedError

    def refresh_heading(self) -> None:
        raise NotImplementedError

    async def new_conversation(self) -> None:
        raise NotImplementedError

    def open_conversation(self, store: ConversationStore, conversation_id: str) -> object:
        raise NotImplementedError

    # --- typing ----------------------------------------------------------------------------

    def action_leave_input(self) -> None:
        self.set_focus(None)

    def action_focus_input(self) -> None:
        self.input.focus()

    def action_edit_last(self) -> None:
        last = self.conversation.last("user")
        if last is None:
            return
        self.editing = last
        field = self.input
        field.value = last.content
        field.cursor_position = len(last.content)
        field.placeholder = self.placeholder()
        field.focus()
        self.query_one("#chat-bar").add_class("-editing")

    def action_cancel_edit(self) -> None:
        self.editing = None
        self.input.value = ""
        self.input.placeholder = self.placeholder()
        self.query_one("#chat-bar").remove_class("-editing")

    async def action_new_chat(self) -> None:
        await self.new_conversation()

    # --- copying ---------------------------------------------------------------------------

    def action_copy(self) -> None:
        messages = self.conversation.messages
        answer = next((m for m in reversed(messages) if m.role == "assistant" and m.content), None)
        if answer is None:
            self.notify("No answer to copy yet.", markup=False)
            return
        blocks = code_blocks(answer.content)
        if not blocks:
            self.copy_text(answer.content, "the last answer")
            return
        whole = f"The whole answer ({len(answer.content):,} characters)"
        choices = [Copyable(whole, answer.content)]
        for number, (language, code) in enumerate(blocks, 1):
            first = next((line.strip() for line in code.splitlines() if line.strip()), "")
            label = f"Code {number}" + (f" · {language}" if language else "") + f" · {first[:40]}"
            choices.append(Copyable(label, code))

        def picked(text: str | None) -> None:
            if text is not None:
                self.copy_text(text, "the answer" if text == answer.content else "the code block")

        self.app.push_screen(CopyScreen(choices), picked)

    def copy_text(self, text: str, what: str) -> None:
        """OSC 52 to the terminal, and the same text in a file for terminals that refuse it
        (the terminal never says whether it took it)."""
        self.app.copy_to_clipboard(text)
        assert self.store is not None
        path = self.store.folder.parent / CLIPBOARD_FILE
        self.save_clipboard(path, text)
        self.notify(
            f"Copied {what} ({len(text):,} characters) to the clipboard. Nothing there? "
            f"Your terminal refused it (OSC 52): the text is also in {path}",
            title="Copied",
            markup=False,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-save")
    def save_clipboard(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, text, mode=0o600)

    # --- what the answers show and who answers ---------------------------------------------

    def action_toggle_reasoning(self) -> None:
        self.chat_log.toggle_reasoning()

    def action_toggle_model(self) -> None:
        select: Select[str] = self.query_one("#chat-model", Select)
        model = self.conversation.settings.model
        following = MODELS[(MODELS.index(model) + 1) % len(MODELS)] if model in MODELS else None
        select.value = following or MODELS[0]

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "chat-model" and isinstance(event.value, str):
            event.stop()
            if event.value != self.conversation.settings.model:
                self.change_settings(replace(self.conversation.settings, model=event.value))

    def action_conversation_settings(self) -> None:
        def saved(outcome: SettingsOutcome | None) -> None:
            if outcome is not None:
                self.change_settings(outcome.settings, outcome.title)

        self.app.push_screen(ChatSettingsScreen(self.conversation, self.settings), saved)

    def change_settings(self, settings: ChatSettings, title: str | None = None) -> None:
        """New settings (and title) for this conversation, kept in its file."""
        conversation = self.conversation
        records: list[dict[str, Any]] = []
        if settings != conversation.settings:
            conversation.settings = settings
            records.append(settings_record(settings))
        if title is not None and title != conversation.title:
            conversation.title = title
            records.append(title_record(title))
        # A conversation without messages has no file yet: its header will say all this.
        if records and conversation.messages and self.file is not None:
            self.save_records(self.file, records)
        if settings.model in MODELS:
            select: Select[str] = self.query_one("#chat-model", Select)
            with self.prevent(Select.Changed):
                select.value = settings.model
        self.refresh_heading()

    @work(thread=True, exit_on_error=False, group="chat-save")
    def save_records(self, file: ConversationFile, records: list[dict[str, Any]]) -> None:
        file.append(records, sync=True)

    # --- the list --------------------------------------------------------------------------

    def action_open_conversations(self) -> None:
        assert self.store is not None
        store = self.store

        def before_delete(conversation_id: str) -> None:
            if conversation_id == self.conversation.id and self.file is not None:
                self.file.forget()  # an answer still streaming must not write it back
                self.conversation.id = ""

        def renamed(conversation_id: str, title: str) -> None:
            if conversation_id == self.conversation.id:
                self.conversation.title = title
                self.refresh_heading()

        async def closed(outcome: ListOutcome | None) -> None:
            if self.conversation.id == "" or (outcome is not None and outcome.new):
                await self.new_conversation()  # the one shown was deleted, or asked for
            if outcome is not None and outcome.open_id not in (None, self.conversation.id):
                assert outcome.open_id is not None
                self.open_conversation(store, outcome.open_id)

        dialog = ConversationsScreen(
            store,
            self.conversation.id,
            before_delete=before_delete,
            renamed=renamed,
            export_to=Path.cwd(),
        )
        self.app.push_screen(dialog, closed)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        typing = isinstance(self.focused, Input)
        answering = self.turn is not None
        has_user = self.conversation.last("user") is not None
        messages = self.conversation.messages
        if action == "stop_answer":
            return answering
        if action == "cancel_edit":
            return self.editing is not None and not answering
        if action == "leave_input":
            return typing and not answering and self.editing is None
        if action == "focus_input":
            return not typing
        if action == "edit_last":
            return typing and not self.input.value and not answering and has_user
        if action == "regenerate":
            return not answering and has_user
        if action == "copy":
            return any(m.role == "assistant" and m.content for m in messages)
        if action == "toggle_reasoning":
            return any(m.reasoning for m in messages)
        return True
