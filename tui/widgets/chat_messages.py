"""The chat pane's messages: the user's, the model's (streamed Markdown), system lines.

Each message is one leaf widget, never a tree of blocks: the conversation's layout stays
a list of heights that Textual caches, however long the answers. `AnswerView` draws its
rows itself (Textual's line API): the rows come from a `MarkdownDocument`, which renders
only the block still growing, and only the rows on screen become strips.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.content import Content
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.style import Style as VisualStyle
from textual.widget import Widget
from textual.widgets import Static

from stack.chat.conversation import DONE, FAILED, STREAMING, Message, status_note
from tui.widgets.chat_document import MarkdownDocument
from tui.widgets.chat_markdown import BlockCache, visible

REASONING_STYLE = "italic $text-muted"
BLANK = Content("")


def stream_width(widget: Widget, width: int) -> int:
    """The width ``widget`` is drawn at, from the one its height is asked for.

    Textual's stream layout (8.2.8) asks a child for its height at the container's width
    less the child's border and padding, but not its horizontal margins, then places it
    that much narrower: the height must be for the narrower width, or wrapped text would
    be cut off.
    """
    parent = widget.parent
    layout = getattr(getattr(parent, "styles", None), "layout", None)
    if getattr(layout, "name", "") == "stream":
        margin = widget.styles.margin
        return max(width - margin.left - margin.right, 1)
    return width


SEPARATOR = Content.styled(" · ", "$text-muted")


def pack(parts: list[Content], width: int) -> list[Content]:
    """``parts`` joined by " · " in rows of ``width``, breaking only between them (a
    figure such as "12.3 s" never loses its unit to the next row); a part wider than a
    row is wrapped on its own."""
    rows: list[Content] = []
    row: Content | None = None
    for part in parts:
        if row is not None and row.cell_length + SEPARATOR.cell_length + part.cell_length <= width:
            row = row + SEPARATOR + part
            continue
        if row is not None:
            rows.append(row)
        *whole, row = part.wrap(width) or [part]
        rows += whole
    if row is not None:
        rows.append(row)
    return rows


class UserMessage(Static):
    """What the user sent, as typed (never markup)."""

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return super().get_content_height(container, viewport, stream_width(self, width))

    def __init__(self, message: Message) -> None:
        super().__init__(visible(message.content), classes="chat-user", markup=False)
        self.message = message


class SystemLine(Static):
    """A failure and its fix, in the conversation where it happened."""

    def __init__(self, message: str, fix: str = "") -> None:
        lines = [Content.assemble(("✗ ", "bold"), visible(message))]
        if fix:
            lines.append(Content.styled(f"→ {fix}", "$text-accent"))
        super().__init__(Content("\n").join(lines), classes="chat-system")
        self.text = message
        self.fix = fix


class AnswerView(Widget):
    """The model's answer in a box: its reasoning (folded), its Markdown, a line of numbers.

    It draws its box itself (`render_lines`), every row once: Textual's styles cache would
    repaint every visible row each time the answer grows by one (its size changed), and a
    streaming answer grows all the time.
    """

    DEFAULT_CSS = """
    AnswerView {
        height: auto;
    }
    """
    BOX = "$panel-lighten-2"
    TITLE = "$text-muted"

    def __init__(
        self,
        message: Message,
        cache: BlockCache | None = None,
        document: MarkdownDocument | None = None,
    ) -> None:
        """``document``: the message's text already laid out (in a worker), if it was."""
        super().__init__(classes="chat-assistant")
        self.message = message
        self.title = message.model or "local-chat"
        if document is None:
            document = MarkdownDocument(cache)
            document.append(message.content)
            if message.ended:
                document.finish()
        self.document = document
        self.reasoning = message.reasoning
        self.show_reasoning = False
        self._width = 0  # the outer width the rows were laid out for
        self._rows: list[Content] = []  # inside the box
        self._strips: dict[int, tuple[Content, Strip]] = {}
        self._edges: dict[str, Strip] = {}
        self._stale = True
        self._shows_text = False
        self._parsed: dict[str, VisualStyle] = {}
        self._rich: dict[VisualStyle, RichStyle] = {}
        self._styles_for: VisualStyle | None = None

    @property
    def text(self) -> str:
        return self.document.text

    @property
    def shows_text(self) -> bool:
        """Whether any of the answer (or its reasoning) was drawn at the last layout."""
        return self._shows_text

    # --- what changes -----------------------------------------------------------------------

    def append(self, text: str, reasoning: str = "") -> None:
        """More of the answer; it is drawn at the next `update` (the pane's frame)."""
        if text:
            self.document.append(text)
        if reasoning:
            self.reasoning += reasoning
        if text or reasoning:
            self._stale = True

    def end(self) -> None:
        """The answer ended (how is in ``message.status``): the last block is final."""
        self.document.finish()
        self._stale = True
        self.update()

    def toggle_reasoning(self) -> None:
        self.show_reasoning = not self.show_reasoning
        self._stale = True
        self.update()

    def update(self) -> None:
        """Re-lay the rows that changed and ask for a repaint (a relayout if it grew)."""
        if not self._stale or not self._width:
            return
        height = len(self._rows)
        self._layout(self._width)
        self.refresh(layout=len(self._rows) != height)

    # --- laying out -----------------------------------------------------------------------

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._set_width(stream_width(self, width))
        return len(self._rows) + 2

    def _set_width(self, width: int) -> None:
        if width != self._width:
            self._width = width
            self._strips.clear()
            self._edges.clear()
            self._stale = True
        if self._stale:
            self._layout(width)

    def _layout(self, width: int) -> None:
        self._stale = False
        inner = max(width - 4, 1)
        done, tail = self.document.rows(inner)
        rows = self._reasoning_rows(inner)
        if done or tail:
            if rows:
                rows.append(BLANK)
            rows += done
            rows += tail
        rows += self._meta_rows(inner, bool(done or tail))
        self._rows = rows
        self._shows_text = bool(done or tail or self.reasoning)

    def _reasoning_rows(self, width: int) -> list[Content]:
        if not self.reasoning:
            return []
        words = len(self.reasoning.split())
        if not self.show_reasoning:
            if self.message.status == STREAMING and not self.document.text:
                # The newest words of the reasoning, so a long think shows it is alive.
                last = visible(" ".join(self.reasoning.split()[-40:]))
                line = Content.styled("▸ thinking… ", "bold $text-muted") + Content.styled(
                    last, REASONING_STYLE
                )
                return [line.truncate(width, ellipsis=True)]
            label = f"▸ reasoning · {words:,} words (ctrl+f shows it)"
            return [Content.styled(label, "$text-muted").truncate(width, ellipsis=True)]
        head = Content.styled(f"▾ reasoning · {words:,} words (ctrl+f folds it)", "$text-muted")
        reasoning = Content.styled(visible(self.reasoning.strip()), REASONING_STYLE)
        return [head, *reasoning.wrap(width)]

    def _meta_rows(self, width: int, has_text: bool) -> list[Content]:
        message = self.message
        if message.status == STREAMING:
            if has_text or self.reasoning:
                return []
            return [Content.styled("waiting for the model…", "$text-muted")]
        parts = []
        if message.status != DONE:
            style = "$text-error" if message.status == FAILED else "$text-warning"
            parts.append(Content.styled(status_note(message), style))
        if message.stats is not None:
            parts += [Content.styled(part, "$text-muted") for part in message.stats.parts()]
        if not parts:
            return []
        return ([BLANK] if has_text else []) + pack(parts, width)

    # --- drawing --------------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        width = self.size.width
        if width != self._width:
            # Placed at another width than the height was asked for: lay out again (the
            # height may differ, so the layout too).
            self._set_width(width)
            self.call_later(self.refresh, layout=True)
        if self._stale and self._width:
            self._layout(self._width)
        last = len(self._rows) + 1
        strips = [self._line(y, width, last) for y in crop.line_range]
        background = self.background_colors[1]
        for line_filter in self.get_line_filters():
            strips = [strip.apply_filter(line_filter, background) for strip in strips]
        if crop.column_span != (0, width):
            x1, x2 = crop.column_span
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    def _line(self, y: int, width: int, last: int) -> Strip:
        if y == 0 or y >= last:
            which = "top" if y == 0 else "bottom"
            strip = self._edges.get(which)
            if strip is None:
                strip = self._edges[which] = self._edge(which, width)
            return strip
        row = self._rows[y - 1]
        cached = self._strips.get(y)
        if cached is not None and cached[0] is row:
            return cached[1]
        side = self._edges.get("side")
        if side is None:
            side = self._edges["side"] = self._strip(Content.styled("│", self.BOX))
        inside = self._strip(row).adjust_cell_length(max(width - 4, 0), self._base.rich_style)
        gap = Strip([Segment(" ", self._base.rich_style)], 1)
        strip = Strip.join([side, gap, inside, gap, side])
        self._strips[y] = (row, strip)
        return strip

    def _edge(self, which: str, width: int) -> Strip:
        if which == "bottom":
            line = Content.styled("╰" + "─" * max(width - 2, 0) + "╯", self.BOX)
        else:
            title = Content.styled(f" {self.title} ", self.TITLE).truncate(max(width - 4, 0))
            rule = "─" * max(width - 3 - title.cell_length, 0)
            line = Content.assemble(("╭─", self.BOX), title, (rule + "╮", self.BOX))
        return self._strip(line).adjust_cell_length(width, self._base.rich_style)

    @property
    def _base(self) -> VisualStyle:
        return self.visual_style

    def _strip(self, row: Content) -> Strip:
        """One row as segments, with every style parsed and combined once per widget."""
        base = self._base
        if self._styles_for is not base:
            self._styles_for = base
            self._parsed.clear()
            self._rich.clear()
        segments = []
        for text, style in row.render(base, end="", parse_style=self._parse):
            rich = self._rich.get(style)
            if rich is None:
                rich = self._rich[style] = (base + style).rich_style
            segments.append(Segment(text, rich))
        return Strip(segments, row.cell_length)

    def _parse(self, style: str | VisualStyle) -> VisualStyle:
        if isinstance(style, VisualStyle):
            return style
        parsed = self._parsed.get(style)
        if parsed is None:
            parsed = self._parsed[style] = self._get_style(style)
        return parsed

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # the theme or the CSS changed: colours differ
        self._edges.clear()
        self._parsed.clear()
        self._rich.clear()

    def rows_text(self) -> list[str]:
        """The rows inside the box as plain text (tests and the benchmark compare them)."""
        return [row.plain for row in self._rows]
