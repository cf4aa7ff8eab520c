"""Chat: talk to local-chat through the gateway, the same way an IDE does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from stack.settings import Settings
from tui.commands import bindings
from tui.screens.base import ModeScreen


def chat_intro(settings: Settings) -> str:
    return (
        "Chat with your local model.\n\n"
        f"Messages stream from the gateway at {settings.gateway_url} with the model\n"
        "local-chat, exactly what your IDE uses, once the stack runs.\n\n"
        "Esc leaves the input so the number keys switch screens again; i comes back."
    )


class ChatScreen(ModeScreen):
    MODE = "chat"
    SUB_TITLE = "Chat"
    BINDINGS = bindings("chat")
    AUTO_FOCUS = "#chat-input"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="chat-log"):
            yield Static(
                chat_intro(self.settings), id="chat-empty", classes="empty-state", markup=False
            )
        yield Input(placeholder="Message local-chat (Enter sends)", id="chat-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            return
        self.notify(
            f"The gateway is not running ({self.settings.gateway_url}); "
            "starting the stack comes with the engine.",
            title="Not sent",
            severity="warning",
            markup=False,
        )

    def action_leave_input(self) -> None:
        self.set_focus(None)

    def action_focus_input(self) -> None:
        self.query_one("#chat-input", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        typing = isinstance(self.focused, Input)
        if action == "leave_input":
            return typing
        if action == "focus_input":
            return not typing
        return True

    def settings_changed(self, settings: Settings) -> None:
        self.query_one("#chat-empty", Static).update(chat_intro(settings))
