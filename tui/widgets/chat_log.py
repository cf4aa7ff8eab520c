"""The conversation on screen: one leaf widget per message, the newest at the bottom.

A long conversation opens with its newest messages only (about WINDOW_CHARS of them, at
least WINDOW_MIN): opening 500 messages costs what opening 20 does. Scrolling to the top
mounts the next older part above, and the view stays where it was. The answers' Markdown
of each part is laid out in a worker (`prepare`) before it is mounted.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message as TextualMessage
from textual.widget import Widget
from textual.widgets import Static

from stack.chat.conversation import Conversation, Message
from tui.widgets.chat_document import MarkdownDocument
from tui.widgets.chat_markdown import BlockCache
from tui.widgets.chat_messages import AnswerView, SystemLine, UserMessage

WINDOW_CHARS = 24_000  # about how much of a long conversation is drawn when it opens
WINDOW_MIN = 6  # and at least this many of its newest messages
MESSAGE_COST = 80  # what a message counts for besides its text (its box, its margins)
ANSWER_MARGIN = 8  # .chat-assistant's right margin (tui/app.tcss)


BOX = 4  # an answer's box and its padding, left and right


def prepare(messages: list[Message], width: int) -> dict[int, MarkdownDocument]:
    """The answers among ``messages`` laid out at ``width`` (blocking: run in a worker).

    Rendering the Markdown of a screenful of answers takes a good part of a second; done in
    a worker, opening a conversation or scrolling to older messages never stalls the app.
    """
    documents: dict[int, MarkdownDocument] = {}
    for message in messages:
        if message.role == "assistant":
            document = MarkdownDocument()
            document.append(message.content)
            if message.ended:
                document.finish()
            document.rows(width - BOX)
            documents[message.n] = document
    return documents


def window_start(messages: list[Message], end: int) -> int:
    """Where the part of ``messages[:end]`` drawn next begins (its newest messages)."""
    start, budget = end, WINDOW_CHARS
    while start > 0 and (end - start < WINDOW_MIN or budget > 0):
        start -= 1
        budget -= len(messages[start].content) + MESSAGE_COST
    return start


class ConversationLog(VerticalScroll):
    """Scrolls the messages; knows which widget shows which message (by its number)."""

    def __init__(self, intro: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.intro = intro
        self.conversation = Conversation("", "")  # the one shown
        self.views: dict[int, Widget] = {}  # message number → its widget, if mounted
        self.hidden = 0  # how many of the oldest messages are not mounted yet
        self.show_reasoning = False
        self.cache = BlockCache()  # rendered Markdown blocks, shared by every answer
        self._preparing = False  # older messages are being laid out in a worker

    def compose(self) -> ComposeResult:
        yield Static(self.intro, id="chat-empty", classes="empty-state", markup=False)
        yield Static("", id="chat-earlier")

    def on_mount(self) -> None:
        self.anchor()
        self.query_one("#chat-earlier").display = False
        self.watch(self, "scroll_y", self._scrolled, init=False)

    def set_intro(self, intro: str) -> None:
        self.intro = intro
        self.query_one("#chat-empty", Static).update(intro)

    def view(self, n: int) -> Widget | None:
        return self.views.get(n)

    def answer(self, n: int) -> AnswerView | None:
        view = self.views.get(n)
        return view if isinstance(view, AnswerView) else None

    def answer_width(self) -> int:
        """The width an answer will be laid out at, with the scrollbar a long conversation
        shows: the log's full width (it fills its parent's), less its padding, the scrollbar
        and the answer's margin. (Its own region leaves out the scrollbar only once shown.)"""
        parent = self.parent
        full = parent.size.width if isinstance(parent, Widget) else self.region.width
        padding = self.styles.padding
        scrollbar = self.styles.scrollbar_size_vertical
        return full - padding.left - padding.right - scrollbar - ANSWER_MARGIN

    async def show(
        self, conversation: Conversation, documents: dict[int, MarkdownDocument] | None = None
    ) -> None:
        """Draw a conversation in place of the one shown: its newest part."""
        await self.clear()
        self.conversation = conversation
        messages = conversation.messages
        self.hidden = window_start(messages, len(messages))
        await self.mount_all(self._widgets(messages[self.hidden :], documents or {}))
        self._note()
        self.query_one("#chat-empty").display = not messages
        self.anchor()

    async def add(self, new: list[Message]) -> None:
        """Draw messages just added at the end, and follow them."""
        self.query_one("#chat-empty").display = False
        await self.mount_all(self._widgets(new, {}))
        self.anchor()  # back to the bottom, even if the user had scrolled up

    async def add_line(self, line: SystemLine) -> None:
        await self.mount(line)

    async def forget_from(self, n: int) -> None:
        """Take the widgets of message ``n`` and later ones away, and any failure lines."""
        gone = [self.views.pop(key) for key in sorted(self.views) if key >= n]
        for widget in gone:
            await widget.remove()
        await self.remove_children(".chat-system")
        self.query_one("#chat-empty").display = not self.conversation.messages

    async def clear(self) -> None:
        self.views.clear()
        self.hidden = 0
        await self.remove_children(".chat-user, .chat-assistant, .chat-system")
        self.query_one("#chat-earlier").display = False
        self.query_one("#chat-empty").display = True

    def toggle_reasoning(self) -> None:
        self.show_reasoning = not self.show_reasoning
        for view in self.query(AnswerView):
            if view.reasoning and view.show_reasoning != self.show_reasoning:
                view.toggle_reasoning()

    def _widgets(
        self, messages: list[Message], documents: dict[int, MarkdownDocument]
    ) -> list[Widget]:
        widgets: list[Widget] = []
        for message in messages:
            widget: Widget
            if message.role == "user":
                widget = UserMessage(message)
            else:
                view = AnswerView(message, self.cache, documents.get(message.n))
                view.show_reasoning = self.show_reasoning
                widget = view
            self.views[message.n] = widget
            widgets.append(widget)
        return widgets

    def _note(self) -> None:
        note = self.query_one("#chat-earlier", Static)
        note.display = self.hidden > 0
        if self.hidden:
            text = f"▲ {self.hidden} earlier messages: scroll up to show them"
            note.update(Content.styled(text, "$text-muted"))

    async def _scrolled(self, y: float) -> None:
        if y <= 0 and self.hidden > 0 and not self._preparing:
            self._preparing = True
            messages = self.conversation.messages
            start = window_start(messages, self.hidden)
            self.prepare_earlier(self.conversation, start, self.hidden, self.answer_width())

    @work(thread=True, exclusive=True, exit_on_error=False, group="chat-earlier")
    def prepare_earlier(self, conversation: Conversation, start: int, end: int, width: int) -> None:
        documents = prepare(conversation.messages[start:end], width)
        self.post_message(self.Earlier(conversation, start, end, documents))

    @dataclass
    class Earlier(TextualMessage):
        """The next older part of the conversation, laid out."""

        conversation: Conversation
        start: int
        end: int
        documents: dict[int, MarkdownDocument]

    async def on_conversation_log_earlier(self, message: Earlier) -> None:
        """Mount it above what is shown, keeping the view still."""
        self._preparing = False
        if message.conversation is not self.conversation or message.end != self.hidden:
            return  # another conversation took the log meanwhile
        messages = self.conversation.messages
        end = self.hidden
        first = next((self.views[m.n] for m in messages[end:] if m.n in self.views), None)
        widgets = self._widgets(messages[message.start : end], message.documents)
        self.hidden = message.start
        before = self.virtual_size.height
        if first is not None:
            await self.mount_all(widgets, before=first)
        else:
            await self.mount_all(widgets)
        self._note()

        def keep_place() -> None:
            self.scroll_to(y=max(self.virtual_size.height - before, 0), animate=False)

        self.call_after_refresh(keep_place)
