"""The Chat screen's dialogs: the saved conversations, this one's settings, what to copy."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from stack.chat.conversation import MODELS, ChatSettings, Conversation, settings_from_text
from stack.chat.store import ConversationStore, Summary
from stack.errors import LlmTuiError
from stack.settings import Settings
from tui.commands import bindings
from tui.paths import display_path
from tui.screens.dialogs import ConfirmScreen
from tui.widgets.footer import Footer
from tui.widgets.key_order import Input, KeepsKeyOrder


def _count(messages: int) -> str:
    return f"{messages} message" + ("" if messages == 1 else "s")


def when(updated: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(updated))


@dataclass(frozen=True)
class ListOutcome:
    """What the list was closed with: a conversation to open, or a new one."""

    open_id: str | None = None
    new: bool = False


class ConversationsScreen(ModalScreen[ListOutcome | None]):
    """The saved conversations, newest first: Enter opens one; r, e, d rename, export, delete.

    The chat screen is told before the file of the conversation it shows is deleted
    (``before_delete``), so an answer still streaming cannot write it back, and after a
    rename (``renamed``), so its heading follows.
    """

    BINDINGS = bindings("conversations")

    def __init__(
        self,
        store: ConversationStore,
        current: str,
        *,
        before_delete: Callable[[str], None],
        renamed: Callable[[str, str], None],
        export_to: Path,
    ) -> None:
        super().__init__()
        self.store = store
        self.current = current
        self.before_delete = before_delete
        self.renamed = renamed
        self.export_to = export_to
        self.summaries: list[Summary] | None = None
        self.renaming: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="conversations-dialog", classes="dialog") as dialog:
            dialog.border_title = "Conversations"
            yield Static("Reading the saved conversations…", id="conversations-note")
            yield OptionList(id="conversations-list")
            yield Input(
                placeholder="New title (Enter saves, Esc cancels)", id="conversations-title"
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#conversations-title").display = False
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="conversations-list")
    def load(self) -> None:
        summaries = self.store.list()
        self.app.call_from_thread(self.show, summaries)

    def show(self, summaries: list[Summary], highlight: str | None = None) -> None:
        self.summaries = summaries
        options = self.query_one("#conversations-list", OptionList)
        selected = highlight or (
            options.get_option_at_index(options.highlighted).id
            if options.highlighted is not None and options.option_count
            else self.current
        )
        options.clear_options()
        for summary in summaries:
            mark = "● " if summary.id == self.current else "  "
            line = Content.assemble(
                mark,
                (summary.title, "bold" if summary.id == self.current else ""),
                (
                    f"  · {_count(summary.messages)} · {summary.model} · {when(summary.updated)}",
                    "$text-muted",
                ),
            )
            options.add_option(Option(line, id=summary.id))
        note = self.query_one("#conversations-note", Static)
        folder = display_path(self.store.folder)
        note.update(
            f"{len(summaries)} saved in {folder}"
            if summaries
            else f"No saved conversations yet in {folder}"
        )
        ids = [summary.id for summary in summaries]
        if selected in ids:
            options.highlighted = ids.index(selected)
        options.focus()

    def selected(self) -> Summary | None:
        options = self.query_one("#conversations-list", OptionList)
        if self.summaries is None or options.highlighted is None:
            return None
        index = options.highlighted
        return self.summaries[index] if index < len(self.summaries) else None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(ListOutcome(open_id=event.option.id))

    # --- rename ---------------------------------------------------------------------------

    def action_rename(self) -> None:
        summary = self.selected()
        if summary is None:
            return
        self.renaming = summary.id
        field = self.query_one("#conversations-title", Input)
        field.value = summary.title
        field.display = True
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        title = " ".join(event.value.split())
        target, self.renaming = self.renaming, None
        event.input.display = False
        if target is None or not title:
            self.query_one("#conversations-list").focus()
            return
        self.rename(target, title)

    @work(thread=True, exclusive=True, exit_on_error=False, group="conversations-write")
    def rename(self, conversation_id: str, title: str) -> None:
        self.store.rename(conversation_id, title)
        summaries = self.store.list()
        self.app.call_from_thread(self.renamed, conversation_id, title)
        self.app.call_from_thread(self.show, summaries, conversation_id)

    # --- export and delete ----------------------------------------------------------------

    def action_export(self) -> None:
        summary = self.selected()
        if summary is not None:
            self.export(summary.id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="conversations-write")
    def export(self, conversation_id: str) -> None:
        path = self.store.export(self.store.load(conversation_id), self.export_to)
        self.app.call_from_thread(
            self.notify,
            f"Exported to {display_path(path)}",
            title="Conversation exported",
            markup=False,
        )

    def action_delete(self) -> None:
        summary = self.selected()
        if summary is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.before_delete(summary.id)
                self.delete(summary.id)

        question = f"Delete “{summary.title}” ({_count(summary.messages)})? Its file is removed."
        self.app.push_screen(ConfirmScreen("Delete conversation", question, "Delete"), answered)

    @work(thread=True, exclusive=True, exit_on_error=False, group="conversations-write")
    def delete(self, conversation_id: str) -> None:
        self.store.delete(conversation_id)
        summaries = self.store.list()
        self.app.call_from_thread(self.show, summaries)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            text = str(error) if isinstance(error, LlmTuiError) else repr(error)
            self.notify(text, title="Conversations", severity="error", markup=False)

    # --- closing --------------------------------------------------------------------------

    def action_new(self) -> None:
        self.dismiss(ListOutcome(new=True))

    def action_close(self) -> None:
        if self.renaming is not None:
            self.renaming = None
            self.query_one("#conversations-title").display = False
            self.query_one("#conversations-list").focus()
            return
        self.dismiss(None)


@dataclass(frozen=True)
class SettingsOutcome:
    title: str
    settings: ChatSettings


class PromptArea(TextArea, KeepsKeyOrder):
    """The system prompt's editor: Textual's `TextArea`, its editing keys kept in order."""


class ChatSettingsScreen(ModalScreen[SettingsOutcome | None]):
    """This conversation's title, system prompt, model and sampling; ctrl+s saves."""

    BINDINGS = bindings("chat_settings")

    def __init__(self, conversation: Conversation, stack: Settings) -> None:
        super().__init__()
        self.conversation = conversation
        self.stack = stack

    def compose(self) -> ComposeResult:
        chat = self.conversation.settings
        with Vertical(id="chat-settings-dialog", classes="dialog") as dialog:
            dialog.border_title = "This conversation"
            yield Label("Title")
            yield Input(
                self.conversation.title,
                placeholder=self.conversation.display_title,
                id="chat-settings-title",
            )
            yield Label("System prompt")
            yield PromptArea(chat.system, id="chat-settings-system", soft_wrap=True)
            with Horizontal(classes="chat-settings-row"):
                with Vertical():
                    yield Label("Model")
                    yield Select(
                        [(model, model) for model in MODELS],
                        value=chat.model if chat.model in MODELS else MODELS[0],
                        allow_blank=False,
                        id="chat-settings-model",
                    )
                with Vertical():
                    yield Label("Temperature")
                    yield Input(
                        _shown(chat.temperature),
                        placeholder=f"{self.stack.temperature:g} (.env)",
                        id="chat-settings-temperature",
                    )
            with Horizontal(classes="chat-settings-row"):
                with Vertical():
                    yield Label("Max tokens")
                    yield Input(
                        _shown(chat.max_tokens),
                        placeholder=f"{self.stack.max_tokens} (.env)",
                        id="chat-settings-max-tokens",
                    )
                with Vertical():
                    yield Label("Top p")
                    yield Input(
                        _shown(chat.top_p), placeholder="the model's", id="chat-settings-top-p"
                    )
            yield Static("", id="chat-settings-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="chat-settings-save")
                yield Button("Cancel", id="chat-settings-cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#chat-settings-system", TextArea).focus()

    def value(self, name: str) -> str:
        return self.query_one(f"#chat-settings-{name}", Input).value

    def action_save(self) -> None:
        model = self.query_one("#chat-settings-model", Select).value
        settings, problems = settings_from_text(
            system=self.query_one("#chat-settings-system", TextArea).text,
            model=str(model),
            temperature=self.value("temperature"),
            max_tokens=self.value("max-tokens"),
            top_p=self.value("top-p"),
        )
        if problems:
            self.query_one("#chat-settings-error", Static).update("✗ " + "; ".join(problems))
            return
        self.dismiss(SettingsOutcome(" ".join(self.value("title").split()), settings))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "chat-settings-save":
            self.action_save()
        else:
            self.dismiss(None)


def _shown(value: float | int | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Copyable:
    label: str
    text: str


class CopyScreen(ModalScreen[str | None]):
    """The last answer and each of its code blocks; Enter copies the one highlighted."""

    BINDINGS = bindings("copy")

    def __init__(self, choices: Sequence[Copyable]) -> None:
        super().__init__()
        self.choices = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical(id="copy-dialog", classes="dialog") as dialog:
            dialog.border_title = "Copy"
            options = (
                Option(Content(choice.label), id=str(index))
                for index, choice in enumerate(self.choices)
            )
            yield OptionList(*options, id="copy-list")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self.choices[int(event.option.id or 0)].text)

    def action_cancel(self) -> None:
        self.dismiss(None)
