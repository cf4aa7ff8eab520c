"""The chat pane's messages: the user's, the model's (streamed Markdown), system lines.

A long answer is streamed into a chain of Markdown widgets rather than one: once the
current one holds SEGMENT_CHARS and the text reaches a paragraph break outside a code
fence, that widget is finished and a new one takes the rest. Each append then re-lays out
a small document, so a long answer streams as smoothly as a short one.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

SEGMENT_CHARS = 1500
FENCES = ("```", "~~~")


def split_point(text: str, min_chars: int = SEGMENT_CHARS) -> int | None:
    """Where ``text`` may be cut into two Markdown documents without changing how it reads.

    The offset just after the first blank line that lies past ``min_chars`` and outside a
    fenced code block; None when there is no such place yet.
    """
    cut = text.find("\n\n", min_chars)
    while cut != -1:
        fences = sum(1 for line in text[:cut].split("\n") if line.lstrip().startswith(FENCES))
        if fences % 2 == 0:
            return cut + 2
        cut = text.find("\n\n", cut + 2)
    return None


class UserMessage(Static):
    """What the user sent, as typed (never markup)."""

    def __init__(self, text: str) -> None:
        super().__init__(text, classes="chat-user", markup=False)


class SystemLine(Static):
    """A failure and its fix, in the conversation where it happened."""

    def __init__(self, message: str, fix: str = "") -> None:
        lines = [Content.assemble(("✗ ", "bold"), message)]
        if fix:
            lines.append(Content.styled(f"→ {fix}", "$text-accent"))
        super().__init__(Content("\n").join(lines), classes="chat-system")


class AssistantMessage(Vertical):
    """The model's answer: Markdown segments as it streams in, then one line of numbers."""

    def __init__(self, model: str) -> None:
        super().__init__(classes="chat-assistant")
        self.border_title = model
        self.text = ""  # the whole answer so far
        self._segment = ""  # the part in the last Markdown widget
        self._written = 0  # how much of it its stream has been given
        self._markdown: Markdown | None = None
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        yield Static(Content.styled("waiting for the model…", "$text-muted"), classes="chat-meta")

    async def append(self, fragment: str) -> None:
        if not fragment:
            return
        self.text += fragment
        if self._markdown is None:
            self.query_one(".chat-meta").display = False
            await self._new_segment()
        self._segment += fragment
        while (cut := split_point(self._segment)) is not None:
            head, tail = self._segment[:cut], self._segment[cut:]
            await self._close_segment(head)
            await self._new_segment()
            self._segment = tail
        unwritten = self._segment[self._written :]
        if unwritten:
            if self._stream is None:
                # Made on first use: a stream stopped before its task ran cannot stop.
                assert self._markdown is not None
                self._stream = Markdown.get_stream(self._markdown)
            await self._stream.write(unwritten)
            self._written = len(self._segment)

    async def finish(self, meta: Content) -> None:
        """No more text: render the last segment once from its full text, show ``meta``."""
        if self._markdown is not None:
            await self._close_segment(self._segment)
        info = self.query_one(".chat-meta", Static)
        info.update(meta)
        info.display = True

    async def _new_segment(self) -> None:
        self._segment, self._written = "", 0
        self._markdown = Markdown()
        await self.mount(self._markdown, before=self.query_one(".chat-meta"))
        self._stream = None

    async def _close_segment(self, text: str) -> None:
        assert self._markdown is not None
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        await self._markdown.update(text.rstrip("\n"))
