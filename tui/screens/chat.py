"""Chat: talk to local-chat (or local-code) through the gateway, the way an IDE does.

A thread worker reads the streamed answer and drops the deltas in a mailbox; the app loop
appends whatever piled up to the answer's Markdown. The conversation (every turn) is sent
each time and kept for the session. Esc cancels an answer and gives the message back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Select, Static
from textual.worker import Worker, WorkerState

from stack.cancel import CancelToken
from stack.chat import ChatDelta, ChatError
from stack.errors import LlmTuiError
from stack.settings import Settings
from tui.commands import bindings
from tui.mailbox import Mailbox, cancel_soon
from tui.screens.base import ModeScreen
from tui.services import ChatStreamer, StackEngine
from tui.widgets.chat_messages import AssistantMessage, SystemLine, UserMessage

MODELS = ("local-chat", "local-code")
START_HINT = "start the stack with u on the Dashboard (1)"


def chat_intro(settings: Settings) -> str:
    return (
        "Chat with your local model.\n\n"
        f"Messages go through the gateway at {settings.gateway_url}, exactly the way your\n"
        "IDE's requests do, and the whole conversation is sent each time.\n\n"
        "Enter sends · Esc cancels an answer, or leaves the input so the number keys\n"
        "switch screens (i comes back) · ctrl+t switches local-chat / local-code ·\n"
        "ctrl+n starts a new conversation."
    )


def merge_deltas(deltas: list[ChatDelta]) -> list[ChatDelta]:
    """Pieces that piled up while the screen was busy, as one: the answer reads the same."""
    finish = next((d.finish_reason for d in reversed(deltas) if d.finish_reason), None)
    usage = next((d.usage for d in reversed(deltas) if d.usage), None)
    return [ChatDelta("".join(delta.text for delta in deltas), finish, usage)]


def gateway_base(settings: Settings) -> str:
    # 127.0.0.1 rather than localhost: no IPv6 detour where only IPv4 is published.
    return settings.gateway_url.replace("localhost", "127.0.0.1")


@dataclass(eq=False)
class PendingAnswer:
    """One answer on its way: the worker fills it, the app loop reads it."""

    prompt: str
    model: str
    clock: Callable[[], float]
    mailbox: Mailbox[ChatDelta]
    # Esc cancels it, and so does quitting: the stream's connection is closed at once.
    cancel: CancelToken = field(default_factory=CancelToken)
    sent_at: float = 0.0
    first_at: float | None = None
    last_at: float | None = None
    chunks: int = 0
    usage: dict[str, Any] | None = None

    def record(self, delta: ChatDelta) -> None:
        """Called in the worker thread for each delta, before it is handed over."""
        now = self.clock()
        if delta.text:
            self.chunks += 1
            if self.first_at is None:
                self.first_at = now
            self.last_at = now
        if delta.usage:
            self.usage = delta.usage

    def stats(self) -> str:
        """``42 tokens · 35.1 tok/s · 1.4 s`` (≈ when counted from stream chunks)."""
        tokens = (self.usage or {}).get("completion_tokens")
        counted = f"{tokens} tokens" if tokens else f"≈{self.chunks} tokens"
        parts = [counted]
        count = tokens or self.chunks
        if self.first_at is not None and self.last_at is not None and count > 1:
            span = self.last_at - self.first_at
            if span > 0:
                parts.append(f"{(count - 1) / span:.1f} tok/s")
        parts.append(f"{self.clock() - self.sent_at:.1f} s")
        return " · ".join(parts)


def preflight(engine: StackEngine, model: str) -> ChatError | None:
    """Why the gateway cannot answer, found from the engine in milliseconds.

    With the inference container gone, LiteLLM retries for seconds before it fails; the
    engine knows at once. No engine to ask: let the gateway answer for itself.
    """
    try:
        statuses = {status.role: status for status in engine.status()}
    except Exception:
        return None
    gateway = statuses.get("api-gateway")
    if gateway is None or gateway.state != "running":
        return ChatError("the gateway (api-gateway) is not running", fix=START_HINT)
    code = model == "local-code" and engine.settings.has_code_model
    role = "inference-code" if code else "inference"
    inference = statuses.get(role)
    if inference is None or inference.state != "running":
        return ChatError(
            f"{role} is not running, so {model} cannot answer",
            fix=f"{START_HINT}; if it keeps stopping, its logs (3) say why",
        )
    return None


class ChatScreen(ModeScreen):
    MODE = "chat"
    SUB_TITLE = "Chat"
    BINDINGS = bindings("chat")
    AUTO_FOCUS = "#chat-input"
    SELF_REPORTED: ClassVar[frozenset[str]] = frozenset({"chat"})

    class AnswerChunk(Message):
        """Deltas wait in the answer's mailbox."""

        def __init__(self, answer: PendingAnswer) -> None:
            super().__init__()
            self.answer = answer

    @dataclass
    class AnswerDone(Message):
        answer: PendingAnswer

    @dataclass
    class AnswerFailed(Message):
        answer: PendingAnswer
        error: LlmTuiError

    def __init__(self) -> None:
        super().__init__()
        self.history: list[dict[str, str]] = []
        self.model = MODELS[0]
        self.answer: PendingAnswer | None = None
        self.answer_view: AssistantMessage | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="chat-log"):
            yield Static(
                chat_intro(self.settings), id="chat-empty", classes="empty-state", markup=False
            )
        with Horizontal(id="chat-bar"):
            yield Select(
                [(name, name) for name in MODELS],
                value=self.model,
                allow_blank=False,
                id="chat-model",
                compact=True,
            )
            yield Input(placeholder=self.placeholder(), id="chat-input")

    def on_mount(self) -> None:
        self.query_one("#chat-log", VerticalScroll).anchor()

    def placeholder(self) -> str:
        return f"Message {self.model} (Enter sends)"

    # --- sending ------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        prompt = event.value.strip()
        if not prompt or self.answer is not None:
            return
        event.input.value = ""
        self.send(prompt)

    def send(self, prompt: str) -> None:
        log = self.query_one("#chat-log", VerticalScroll)
        self.query_one("#chat-empty").display = False
        self.history.append({"role": "user", "content": prompt})
        view = AssistantMessage(self.model)
        log.mount_all([UserMessage(prompt), view])
        log.anchor()  # back to the bottom, even if the user had scrolled up
        services = self.llm_app.services
        mailbox: Mailbox[ChatDelta] = Mailbox(
            self, lambda: self.AnswerChunk(answer), compact=merge_deltas
        )
        answer: PendingAnswer = PendingAnswer(
            prompt, self.model, services.clock, mailbox, cancel=self.llm_app.cancel_token()
        )
        answer.sent_at = services.clock()
        self.answer, self.answer_view = answer, view
        self.set_typing(False)
        settings = self.settings
        self.stream_answer(
            self.llm_app.engine,
            services.stream_chat,
            gateway_base(settings),
            settings.litellm_master_key,
            list(self.history),
            answer,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat")
    def stream_answer(
        self,
        engine: StackEngine,
        stream_chat: ChatStreamer,
        base_url: str,
        key: str,
        messages: list[dict[str, str]],
        answer: PendingAnswer,
    ) -> None:
        problem = preflight(engine, answer.model)
        if problem is not None:
            self.post_message(self.AnswerFailed(answer, problem))
            return
        cancel = answer.cancel
        try:
            for delta in stream_chat(base_url, key, messages, model=answer.model, cancel=cancel):
                if cancel.cancelled:
                    return  # leaving the loop closes the connection
                answer.record(delta)
                answer.mailbox.put_one(delta)
        except LlmTuiError as error:  # `Cancelled` too: then nobody waits for the answer
            if not cancel.cancelled:
                self.post_message(self.AnswerFailed(answer, error))
            return
        if not cancel.cancelled:
            self.post_message(self.AnswerDone(answer))

    async def on_chat_screen_answer_chunk(self, message: AnswerChunk) -> None:
        deltas = message.answer.mailbox.take()
        if message.answer is not self.answer or self.answer_view is None:
            return
        await self.answer_view.append("".join(delta.text for delta in deltas))

    async def on_chat_screen_answer_done(self, message: AnswerDone) -> None:
        answer, view = message.answer, self.answer_view
        if answer is not self.answer or view is None:
            return
        await view.append("".join(delta.text for delta in answer.mailbox.take()))
        await view.finish(Content.styled(answer.stats(), "$text-muted"))
        if view.text:
            self.history.append({"role": "assistant", "content": view.text})
        else:
            self.history.pop()  # an empty answer is no turn to build on
        self.answer = self.answer_view = None
        self.set_typing(True)

    async def on_chat_screen_answer_failed(self, message: AnswerFailed) -> None:
        if message.answer is not self.answer:
            return
        error = message.error
        await self.end_answer("failed", SystemLine(error.message, error.fix or ""))

    async def end_answer(self, how: str, line: Static | None = None) -> None:
        """The answer stops short: keep what came, drop the turn, give the prompt back."""
        answer, view = self.answer, self.answer_view
        if answer is None:
            return
        cancel_soon(answer.cancel)
        self.answer = self.answer_view = None
        if view is not None:
            if view.text:
                note = f"{how} — not kept in the conversation"
                await view.finish(Content.styled(note, "$text-warning"))
            else:
                await view.remove()
        if self.history and self.history[-1]["role"] == "user":
            self.history.pop()
        if line is not None:
            await self.query_one("#chat-log").mount(line)
        self.set_typing(True, restore=answer.prompt)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "chat" and event.state is WorkerState.ERROR:
            error = event.worker.error
            failure = error if isinstance(error, LlmTuiError) else ChatError(f"{error}")
            if self.answer is not None:
                self.post_message(self.AnswerFailed(self.answer, failure))

    # --- keys ---------------------------------------------------------------------------

    async def action_cancel_answer(self) -> None:
        await self.end_answer("cancelled")

    def action_leave_input(self) -> None:
        self.set_focus(None)

    def action_focus_input(self) -> None:
        self.query_one("#chat-input", Input).focus()

    def action_toggle_model(self) -> None:
        select: Select[str] = self.query_one("#chat-model", Select)
        select.value = MODELS[(MODELS.index(self.model) + 1) % len(MODELS)]

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "chat-model" and isinstance(event.value, str):
            event.stop()
            self.model = event.value
            self.query_one("#chat-input", Input).placeholder = self.placeholder()

    async def action_new_chat(self) -> None:
        if self.answer is not None:
            await self.end_answer("cancelled")
        self.history.clear()
        log = self.query_one("#chat-log", VerticalScroll)
        await log.remove_children(".chat-user, .chat-assistant, .chat-system")
        self.query_one("#chat-empty").display = True
        self.set_typing(True)

    def set_typing(self, enabled: bool, restore: str | None = None) -> None:
        field = self.query_one("#chat-input", Input)
        field.disabled = not enabled
        field.placeholder = self.placeholder() if enabled else "answering… (Esc cancels)"
        if restore is not None and not field.value:
            field.value = restore
            field.cursor_position = len(restore)
        if enabled:
            field.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        typing = isinstance(self.focused, Input)
        answering = self.answer is not None
        if action == "cancel_answer":
            return answering
        if action == "leave_input":
            return typing and not answering
        if action == "focus_input":
            return not typing and not answering
        return True

    def settings_changed(self, settings: Settings) -> None:
        self.query_one("#chat-empty", Static).update(chat_intro(settings))
