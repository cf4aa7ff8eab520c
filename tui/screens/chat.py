"""Chat: conversations with local-chat (or local-code) through the gateway, kept on disk.

A thread worker streams each answer (`chat_turn.Turn`): it writes each network read's
text to the conversation's file, then drops it in a mailbox; the app loop draws what
piled up at most every FRAME_S (at once while nothing readable is drawn yet; less often
when frames cost more, see FRAME_SHARE), into one
`AnswerView` that re-renders only the Markdown block still growing. The input stays live
while an answer streams; Esc stops the answer (the connection is shut down, what came is
kept and marked).

Conversations are append-only files (`stack.chat.store`); the newest is resumed when the
screen opens, ctrl+o lists them all (`chat_actions`).
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message as TextualMessage
from textual.timer import Timer
from textual.widgets import Select, Static
from textual.worker import Worker, WorkerState

from stack.chat import ChatDelta, ChatError
from stack.chat.conversation import (
    FAILED,
    MODELS,
    STREAMING,
    AnswerStats,
    ChatSettings,
    Conversation,
    Message,
)
from stack.chat.store import (
    ConversationFile,
    ConversationStore,
    answer_record,
    drop_record,
    user_record,
)
from stack.errors import LlmTuiError
from stack.settings import Settings
from tui.commands import bindings
from tui.mailbox import Mailbox, cancel_soon
from tui.screens.chat_actions import ChatActions
from tui.screens.chat_turn import Ending, Request, Turn, gateway_base, merge_deltas
from tui.services import ChatStreamer, StackEngine
from tui.widgets.chat_document import MarkdownDocument
from tui.widgets.chat_log import ConversationLog, prepare, window_start
from tui.widgets.chat_markdown import warm_up
from tui.widgets.chat_messages import SystemLine
from tui.widgets.key_order import Input

FRAME_S = 1 / 20  # the most often a streaming answer is redrawn
SLOWEST_FRAME_S = 1 / 5  # and the least often, however busy the machine
# Frames are spaced at least this many times what the last one cost (drawing the text and
# the screen refresh after it), so a busy machine gets fewer, larger frames and the app
# keeps most of its time for keys.
FRAME_SHARE = 3


def chat_intro(settings: Settings) -> str:
    """Paragraphs without hard line breaks: the pane wraps them to its width."""
    return (
        "Chat with your local model.\n\n"
        f"Messages go through the gateway at {settings.gateway_url}, exactly the way your "
        "IDE's requests do, and the whole conversation is sent each time. Conversations "
        "are saved as you go (ctrl+o lists them; ctrl+s sets this one's system prompt, "
        "model and sampling).\n\n"
        "Enter sends · Esc stops an answer, or leaves the input so the number keys switch "
        "screens (i comes back) · ↑ edits your last message · ctrl+r regenerates · "
        "ctrl+y copies · ctrl+t switches local-chat / local-code · ctrl+n starts anew."
    )


def heading(conversation: Conversation, settings: Settings, saved: bool) -> Content:
    """``Title  local-chat · temperature 0.2 · max 1,024 tokens · …``: what applies."""
    chat = conversation.settings
    temperature = chat.temperature if chat.temperature is not None else settings.temperature
    max_tokens = chat.max_tokens if chat.max_tokens is not None else settings.max_tokens
    facts = [chat.model, f"temperature {temperature:g}", f"max {max_tokens:,} tokens"]
    if chat.top_p is not None:
        facts.append(f"top_p {chat.top_p:g}")
    if chat.system:
        facts.append("system prompt")
    if not saved:
        facts.append("not saved yet")
    return Content.assemble(
        (conversation.display_title, "bold"), ("  " + " · ".join(facts), "$text-muted")
    )


class ChatScreen(ChatActions):
    CSS_PATH = "chat.tcss"  # loaded when it first shows
    MODE = "chat"
    SUB_TITLE = "Chat"
    BINDINGS = bindings("chat")
    AUTO_FOCUS = "#chat-input"
    SELF_REPORTED: ClassVar[frozenset[str]] = frozenset({"chat"})

    class AnswerChunk(TextualMessage):
        """Deltas wait in the turn's mailbox."""

        def __init__(self, turn: Turn) -> None:
            super().__init__()
            self.turn = turn

    @dataclass
    class AnswerEnded(TextualMessage):
        turn: Turn
        ending: Ending

    @dataclass
    class Opened(TextualMessage):
        conversation: Conversation
        resumed: bool  # the newest, at start: shown only if nothing was typed meanwhile
        documents: dict[int, MarkdownDocument]  # its answers that are drawn, laid out

    def __init__(self) -> None:
        super().__init__()
        self.store: ConversationStore | None = None
        self.conversation = Conversation("", "")
        self.file: ConversationFile | None = None
        self.saved = False  # the conversation was read from its file
        self.turn: Turn | None = None
        self.editing: Message | None = None
        self._frame: Timer | None = None
        self._last_frame = 0.0
        self._frame_gap = FRAME_S  # grows when frames cost more (see FRAME_SHARE)

    def compose_body(self) -> ComposeResult:
        yield Static("", id="chat-heading")
        yield ConversationLog(chat_intro(self.settings), id="chat-log")
        with Horizontal(id="chat-bar"):
            yield Select(
                [(name, name) for name in MODELS],
                value=MODELS[0],
                allow_blank=False,
                id="chat-model",
                compact=True,
            )
            yield Input(placeholder=self.placeholder(), id="chat-input")

    def on_mount(self) -> None:
        self.store = self.llm_app.services.conversation_store()
        self.start(self.store.new(ChatSettings()), saved=False)
        self.call_after_refresh(self._resume)
        self.warm_up()

    def _resume(self) -> None:
        assert self.store is not None
        self.resume_newest(self.store, self._answer_width)

    @property
    def _answer_width(self) -> int:
        return self.chat_log.answer_width()

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-warm")
    def warm_up(self) -> None:
        warm_up()

    @property
    def chat_log(self) -> ConversationLog:
        return self.query_one("#chat-log", ConversationLog)

    @property
    def input(self) -> Input:
        return self.query_one("#chat-input", Input)

    def placeholder(self) -> str:
        if self.editing is not None:
            return "Edit your last message: Enter sends it again, Esc leaves it as it was"
        if self.turn is not None:
            return "answering… (Esc stops it; you can type the next message)"
        return f"Message {self.conversation.settings.model} (Enter sends)"

    def start(self, conversation: Conversation, *, saved: bool) -> None:
        """Make ``conversation`` (new, or read from its file) the one the screen works on."""
        assert self.store is not None
        self.conversation = conversation
        self.file = self.store.file(conversation)
        self.saved = saved
        self.editing = None
        self.query_one("#chat-bar").remove_class("-editing")
        select: Select[str] = self.query_one("#chat-model", Select)
        if conversation.settings.model in MODELS:
            with self.prevent(Select.Changed):
                select.value = conversation.settings.model
        self.refresh_heading()

    def refresh_heading(self) -> None:
        saved = self.saved or bool(self.conversation.messages)
        self.query_one("#chat-heading", Static).update(
            heading(self.conversation, self.settings, saved)
        )
        self.input.placeholder = self.placeholder()

    # --- opening conversations -------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-open")
    def resume_newest(self, store: ConversationStore, width: int) -> None:
        newest = store.list()
        if newest:
            self.post_message(self.opened(store.load(newest[0].id), width, resumed=True))

    def open_conversation(self, store: ConversationStore, conversation_id: str) -> None:
        self._open(store, conversation_id, self._answer_width)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-open")
    def _open(self, store: ConversationStore, conversation_id: str, width: int) -> None:
        self.post_message(self.opened(store.load(conversation_id), width, resumed=False))

    def opened(self, conversation: Conversation, width: int, *, resumed: bool) -> Opened:
        """In the worker: the conversation read, and the answers it opens with laid out."""
        messages = conversation.messages
        shown = messages[window_start(messages, len(messages)) :]
        return self.Opened(conversation, resumed, prepare(shown, width))

    async def on_chat_screen_opened(self, message: Opened) -> None:
        if message.resumed and (self.conversation.messages or self.turn is not None):
            return  # the user started a new one meanwhile: keep that
        await self.show(message.conversation, saved=True, documents=message.documents)

    async def show(
        self,
        conversation: Conversation,
        *,
        saved: bool,
        documents: dict[int, MarkdownDocument] | None = None,
    ) -> None:
        self.drop_turn()
        self.start(conversation, saved=saved)
        await self.chat_log.show(conversation, documents)

    async def new_conversation(self) -> None:
        """An empty conversation with the model of the last one (its file comes later)."""
        assert self.store is not None
        model = self.conversation.settings.model
        await self.show(self.store.new(ChatSettings(model=model)), saved=False)
        self.input.focus()

    # --- sending ---------------------------------------------------------------------------

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        prompt = event.value.strip()
        if not prompt:
            return
        if self.turn is not None:
            self.notify("An answer is still coming: Esc stops it.", title="Busy", markup=False)
            return
        event.input.value = ""
        await self.send(prompt)

    async def send(self, prompt: str) -> None:
        conversation, file = self.conversation, self.file
        assert file is not None
        prelude: list[dict[str, Any]] = []
        if self.editing is not None:
            prelude.append(drop_record(self.editing.n))
            await self.forget_from(self.editing.n)
            self.editing = None
            self.query_one("#chat-bar").remove_class("-editing")
        user = conversation.new_message("user", content=prompt, at=file.now())
        answer = conversation.new_message(
            "assistant", model=conversation.settings.model, status=STREAMING, at=file.now()
        )
        prelude += [user_record(user), answer_record(answer)]
        await self.begin([user, answer], prompt=prompt, undo_from=user.n, prelude=prelude)

    async def action_regenerate(self) -> None:
        """Ask again for the last answer (or for one, after a question that has none)."""
        conversation, file = self.conversation, self.file
        if self.turn is not None or file is None or conversation.last("user") is None:
            return
        prelude: list[dict[str, Any]] = []
        last = conversation.messages[-1]
        if last.role == "assistant":
            prelude.append(drop_record(last.n))
            await self.forget_from(last.n)
        answer = conversation.new_message(
            "assistant", model=conversation.settings.model, status=STREAMING, at=file.now()
        )
        prelude.append(answer_record(answer))
        await self.begin([answer], prompt="", undo_from=answer.n, prelude=prelude)

    async def begin(
        self, new: list[Message], *, prompt: str, undo_from: int, prelude: list[dict[str, Any]]
    ) -> None:
        """Draw ``new`` (its last message is the answer to come) and start the worker."""
        conversation, file = self.conversation, self.file
        assert file is not None
        await self.chat_log.add(new)
        settings, chat = self.settings, conversation.settings
        request = Request(
            base_url=gateway_base(settings),
            key=settings.litellm_master_key,
            messages=conversation.request_messages(),
            model=chat.model,
            max_tokens=chat.max_tokens if chat.max_tokens is not None else settings.max_tokens,
            temperature=chat.temperature if chat.temperature is not None else settings.temperature,
            top_p=chat.top_p,
        )
        services = self.llm_app.services
        turn = Turn(
            new[-1],
            prompt,
            undo_from,
            prelude,
            request,
            file,
            Mailbox(self, lambda: self.AnswerChunk(turn), compact=merge_deltas),
            services.clock,
            cancel=self.llm_app.cancel_token(),
        )
        self.turn = turn
        self.refresh_heading()
        # The footer (Stop) is redrawn once the first token is on screen: redrawing it
        # costs more than drawing the first token, and it would go first.
        self.stream_answer(turn, self.llm_app.engine, services.stream_chat)

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat")
    def stream_answer(self, turn: Turn, engine: StackEngine, stream: ChatStreamer) -> None:
        self.post_message(self.AnswerEnded(turn, turn.run(engine, stream)))

    # --- streaming -------------------------------------------------------------------------

    def on_chat_screen_answer_chunk(self, message: AnswerChunk) -> None:
        turn = message.turn
        if turn is not self.turn:
            turn.mailbox.take()
            return
        wait = self._last_frame + self._frame_gap - time.monotonic()
        view = self.chat_log.answer(turn.answer.n)
        if wait <= 0 or (view is not None and not view.shows_text):
            self.draw(turn)  # nothing readable on screen yet (say, only "#"): no waiting
        elif self._frame is None:
            self._frame = self.set_timer(wait, lambda: self.draw(turn), name="chat-frame")

    def draw(self, turn: Turn) -> None:
        """Put what piled up in the mailbox on screen (one redraw, however much it is)."""
        self._frame = None
        self._last_frame = time.monotonic()
        deltas: list[ChatDelta] = turn.mailbox.take()
        if turn is not self.turn or not deltas:
            return
        text = "".join(delta.text for delta in deltas)
        reasoning = "".join(delta.reasoning for delta in deltas)
        answer = turn.answer
        answer.content += text
        answer.reasoning += reasoning
        view = self.chat_log.answer(answer.n)
        if view is not None:
            first = not view.shows_text
            view.append(text, reasoning)
            view.update()
            if first and view.shows_text:
                self.call_after_refresh(self.refresh_bindings)
        began = self._last_frame

        def drawn() -> None:
            cost = time.monotonic() - began
            self._frame_gap = min(max(FRAME_S, FRAME_SHARE * cost), SLOWEST_FRAME_S)

        self.call_after_refresh(drawn)

    async def on_chat_screen_answer_ended(self, message: AnswerEnded) -> None:
        turn, ending = message.turn, message.ending
        if turn is not self.turn:
            return  # replaced (another conversation opened): its file has its end
        self.draw(turn)
        if self._frame is not None:
            self._frame.stop()
            self._frame = None
        self.turn = None
        if ending.empty:  # nothing came: the turn is taken back
            await self.forget_from(turn.undo_from)
            if turn.prompt and not self.input.value:
                self.input.value = turn.prompt
                self.input.cursor_position = len(turn.prompt)
        else:
            self.settle_answer(turn.answer, ending)
        if ending.error is not None:
            await self.chat_log.add_line(SystemLine(ending.error.message, ending.error.fix or ""))
        self.refresh_heading()
        self.refresh_bindings()
        # The answer's rows live as long as the conversation: keep them out of the
        # collector's scans (see tui.app.calm_gc).
        gc.freeze()

    def settle_answer(self, answer: Message, ending: Ending) -> None:
        """The answer as the worker saw it end (all it received is drawn by now)."""
        view = self.chat_log.answer(answer.n)
        if view is not None and ending.content.startswith(answer.content):
            view.append(ending.content[len(answer.content) :])
        answer.content, answer.reasoning = ending.content, ending.reasoning
        answer.status, answer.stats = ending.status, ending.stats
        answer.error = ending.error.message if ending.error is not None else ""
        if view is not None:
            view.end()

    async def forget_from(self, n: int) -> None:
        """Take message ``n`` and the later ones off the conversation and the screen."""
        self.conversation.drop_from(n)
        await self.chat_log.forget_from(n)

    def drop_turn(self) -> None:
        """Stop the answer on its way and forget it (another conversation takes the pane)."""
        turn, self.turn = self.turn, None
        if turn is not None:
            cancel_soon(turn.cancel)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "chat" and event.state is WorkerState.ERROR:
            turn, error = self.turn, event.worker.error
            failure = error if isinstance(error, LlmTuiError) else ChatError(f"{error}")
            if turn is not None:
                answer = turn.answer
                ending = Ending(FAILED, answer.content, answer.reasoning, AnswerStats(), failure)
                self.post_message(self.AnswerEnded(turn, ending))
        # Other groups: ModeScreen's handler (Textual calls each class's) reports them.

    def action_stop_answer(self) -> None:
        turn = self.turn
        if turn is not None and not turn.stopping:
            turn.stopping = True
            cancel_soon(turn.cancel)  # shuts the socket: the worker ends and says how

    def settings_changed(self, settings: Settings) -> None:
        self.chat_log.set_intro(chat_intro(settings))
        self.refresh_heading()
