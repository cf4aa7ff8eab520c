"""Markdown as terminal lines: one block of a document in, a list of `Content` rows out.

The chat pane does not mount a widget per paragraph, list item and table cell (Textual's
`Markdown` does, and re-mounts lists, quotes and headings on every append; FACTS measured
the cost growing with the answer). Instead each top-level block is rendered here, once, to
the rows it takes at a given width, and those rows are kept (`BlockCache`): a finished
block is never rendered again, only the block still growing at the end of the answer.

The look follows Textual's Markdown (its theme variables: `$markdown-h1-color`, inline
code on `$warning 10%`, bullets in `$text-primary`), drawn with characters instead of
widgets: bullets and numbers with a hanging indent, quotes behind a bar, fences on a
background with their language and number, tables with rules. Code is highlighted with
`textual.highlight` and folded, never cut.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token
from textual.content import Content, Span
from textual.style import Style

from tui.widgets.chat_code import code_rows

Lines = list[Content]

BULLETS = ("• ", "◦ ", "▪ ", "‣ ")
BULLET_STYLE = "$text-primary"
CODE_INLINE = "$text-warning 95% on $warning 10%"
QUOTE_BAR = "▌ "
QUOTE_STYLE = "$text-primary 50%"
RULE_STYLE = "$secondary"
TABLE_RULE = "$text-muted"
TABLE_HEADER = "bold $text-primary"
HEADINGS = {
    "h1": "bold $markdown-h1-color",
    "h2": "bold $markdown-h2-color",
    "h3": "bold $markdown-h3-color",
    "h4": "bold italic $markdown-h4-color",
    "h5": "italic $markdown-h5-color",
    "h6": "italic $markdown-h6-color",
}
MIN_WIDTH = 8
CACHE_BLOCKS = 4096


# Control characters from the network would reach the terminal as they are (ESC starts an
# escape sequence): each is drawn as its Unicode picture (␛, ␍…) instead. Tabs and newlines
# stay. One character for one, so the Markdown reads the same.
_VISIBLE = {code: 0x2400 + code for code in range(32) if code not in (9, 10)}
_VISIBLE |= {0x7F: 0x2421} | {code: 0xFFFD for code in range(0x80, 0xA0)}


def visible(text: str) -> str:
    return text.translate(_VISIBLE)


def make_parser() -> MarkdownIt:
    """The same dialect as Textual's Markdown: GFM-like (tables, strikethrough, autolinks)."""
    return MarkdownIt("gfm-like")


WARM_UP = (
    "# Title\n\nSome *text* with `code` and a link: https://example.com.\n\n"
    "- a list\n  1. nested\n\n> a quote\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n"
    "```python\nprint('hi')\n```\n\n```bash\necho hi\n```\n\n---\n"
)


def warm_up() -> None:
    """Render a little of everything once: the parser, linkify and the lexers load lazily
    (tens of milliseconds the first time), better in a worker than on the first answer."""
    render_markdown(WARM_UP, 60)


def blocks_of(tokens: Sequence[Token]) -> list[tuple[int, int, list[Token]]]:
    """Top-level blocks: (first line, end line, their tokens), in order."""
    found: list[tuple[int, int, list[Token]]] = []
    depth = 0
    current: list[Token] = []
    start = end = 0
    for token in tokens:
        if depth == 0:
            current = [token]
            start, end = token.map if token.map is not None else (end, end)
        else:
            current.append(token)
        depth += token.nesting
        if depth == 0:
            found.append((start, end, current))
    return found


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every code block, numbered as drawn (1, 2, … in order)."""
    found = []
    for token in make_parser().parse(text):
        if token.type in ("fence", "code_block"):
            language = token.info.split()[0] if token.info.strip() else ""
            found.append((language, token.content))
    return found


def fence_count(tokens: Sequence[Token]) -> int:
    return sum(1 for token in tokens if token.type in ("fence", "code_block"))


class Node:
    """A block of the parse tree: lighter than markdown-it's Node, built per frame."""

    __slots__ = ("children", "tag", "token", "type")

    def __init__(self, kind: str, tag: str, token: Token | None) -> None:
        self.type = kind
        self.tag = tag
        self.token = token
        self.children: list[Node] = []

    @property
    def info(self) -> str:
        return self.token.info if self.token is not None else ""

    @property
    def content(self) -> str:
        return self.token.content if self.token is not None else ""

    @property
    def attrs(self) -> dict[str, str | int | float]:
        return self.token.attrs if self.token is not None else {}

    @property
    def hidden(self) -> bool:
        return self.token.hidden if self.token is not None else False


def tree(tokens: Sequence[Token]) -> Node:
    root = Node("root", "", None)
    stack = [root]
    for token in tokens:
        if token.nesting == 1:
            node = Node(token.type.removesuffix("_open"), token.tag, token)
            stack[-1].children.append(node)
            stack.append(node)
        elif token.nesting == -1:
            if len(stack) > 1:
                stack.pop()
        else:
            stack[-1].children.append(Node(token.type, token.tag, token))
    return root


class BlockCache:
    """Rendered blocks by (source, width, first fence number): a block renders once."""

    def __init__(self, limit: int = CACHE_BLOCKS) -> None:
        self._limit = limit
        self._rows: OrderedDict[tuple[str, int, int], Lines] = OrderedDict()

    def rows(
        self, source: str, width: int, first_fence: int, tokens: Callable[[], list[Token]]
    ) -> Lines:
        key = (source, width, first_fence)
        rows = self._rows.get(key)
        if rows is None:
            rows = render_block(tokens(), width, first_fence)
            self._rows[key] = rows
            if len(self._rows) > self._limit:
                self._rows.popitem(last=False)
        else:
            self._rows.move_to_end(key)
        return rows


def render_block(tokens: Sequence[Token], width: int, first_fence: int = 1) -> Lines:
    """Rows of the blocks in ``tokens`` (one top-level block, or a whole document)."""
    renderer = _Renderer(max(width, MIN_WIDTH), first_fence)
    return renderer.children(tree(tokens), renderer.width)


def render_markdown(text: str, width: int) -> Lines:
    """A whole document at once: what streaming must end up equal to."""
    tokens = make_parser().parse(visible(text))
    rows: Lines = []
    fences = 1
    for _start, _end, block in blocks_of(tokens):
        if rows:
            rows.append(Content(""))
        rows += render_block(block, width, fences)
        fences += fence_count(block)
    return rows


class _Renderer:
    def __init__(self, width: int, first_fence: int) -> None:
        self.width = width
        self.fence = first_fence  # the number the next code block gets

    def children(self, node: Node, width: int, *, tight: bool = False) -> Lines:
        rows: Lines = []
        for child in node.children:
            block = self.block(child, width)
            if not block:
                continue
            if rows and not (tight and child.type == "paragraph"):
                rows.append(Content(""))
            rows += block
        return rows

    def block(self, node: Node, width: int) -> Lines:
        kind = node.type
        if kind == "paragraph":
            return _wrap(self.inline(node), width)
        if kind == "heading":
            return _wrap(self.inline(node).stylize_before(HEADINGS.get(node.tag, "bold")), width)
        if kind in ("bullet_list", "ordered_list"):
            return self.listing(node, width, depth=0)
        if kind == "blockquote":
            return _prefixed(self.children(node, width - 2), QUOTE_BAR, QUOTE_STYLE)
        if kind in ("fence", "code_block"):
            number, self.fence = self.fence, self.fence + 1
            language = node.info.split()[0] if node.info.strip() else ""
            return code_rows(node.content, language, number, width)
        if kind == "table":
            return self.table(node, width)
        if kind == "hr":
            return [Content.styled("─" * width, RULE_STYLE)]
        if kind in ("html_block", "front_matter"):
            return _wrap(Content(node.content.rstrip("\n")), width)
        if node.children:
            return self.children(node, width)
        return _wrap(Content(node.content.rstrip("\n")), width) if node.content else []

    def listing(self, node: Node, width: int, depth: int) -> Lines:
        ordered = node.type == "ordered_list"
        items = [child for child in node.children if child.type == "list_item"]
        if ordered:
            start = _start_number(node)
            markers = [f"{start + index}. " for index in range(len(items))]
            size = max((len(marker) for marker in markers), default=3)
            markers = [marker.rjust(size) for marker in markers]
        else:
            markers = [BULLETS[depth % len(BULLETS)]] * len(items)
            size = 2
        tight = bool(items) and all(
            child.hidden for item in items for child in item.children if child.type == "paragraph"
        )
        rows: Lines = []
        for marker, item in zip(markers, items, strict=True):
            body: Lines = []
            for child in item.children:
                if child.type in ("bullet_list", "ordered_list"):
                    block = self.listing(child, width - size, depth + 1)
                else:
                    block = self.block(child, width - size)
                tight_child = tight and child.type in ("paragraph", "bullet_list", "ordered_list")
                if body and block and not tight_child:
                    body.append(Content(""))
                body += block
            if rows and not tight:
                rows.append(Content(""))
            lead = Content.styled(marker, BULLET_STYLE)
            pad = Content(" " * size)
            rows += [lead + row if index == 0 else pad + row for index, row in enumerate(body)]
            if not body:
                rows.append(lead)
        return rows

    def table(self, node: Node, width: int) -> Lines:
        header: list[Content] = []
        rows: list[list[Content]] = []
        aligns: list[str] = []
        for section in node.children:
            for row in section.children:
                cells = [self.inline(cell) for cell in row.children]
                if section.type == "thead":
                    header = cells
                    aligns = [_align(cell) for cell in row.children]
                else:
                    rows.append(cells)
        columns = max([len(header), *map(len, rows)], default=0)
        if not columns:
            return []
        aligns += ["left"] * (columns - len(aligns))
        header += [Content("")] * (columns - len(header))
        rows = [row + [Content("")] * (columns - len(row)) for row in rows]
        widths = _column_widths([header, *rows], columns, width - 3 * (columns - 1))
        rule = Content.styled(" │ ", TABLE_RULE)
        out: Lines = []
        for index, cells in enumerate([header, *rows]):
            styled = [c.stylize_before(TABLE_HEADER) if index == 0 else c for c in cells]
            wrapped = [
                _wrap(cell, size) or [Content("")]
                for cell, size in zip(styled, widths, strict=True)
            ]
            for line in range(max(map(len, wrapped))):
                parts = []
                for cell_rows, size, align in zip(wrapped, widths, aligns, strict=True):
                    part = cell_rows[line] if line < len(cell_rows) else Content("")
                    parts.append(_aligned(part, size, align))
                out.append(rule.join(parts).rstrip())
            if index == 0:
                out.append(Content.styled("─┼─".join("─" * size for size in widths), TABLE_RULE))
        return out

    def inline(self, node: Node) -> Content:
        """A block's inline text (the first inline child's), styled."""
        inline = next((child for child in node.children if child.type == "inline"), None)
        token = inline.token if inline is not None else None
        if token is None or not token.children:
            return Content("")
        return inline_content(token.children)


def inline_content(children: Sequence[Token]) -> Content:
    parts: list[str] = []
    spans: list[Span] = []
    opened: list[tuple[str | Style, int]] = []
    position = 0

    def add(text: str) -> None:
        nonlocal position
        parts.append(text)
        position += len(text)

    def close() -> None:
        if opened:
            style, start = opened.pop()
            if position > start:
                spans.append(Span(start, position, style))

    for child in children:
        kind = child.type
        if kind == "text":
            add(re.sub(r"\s+", " ", child.content))
        elif kind == "softbreak":
            add(" ")
        elif kind == "hardbreak":
            add("\n")
        elif kind == "code_inline":
            start = position
            add(child.content)
            spans.append(Span(start, position, CODE_INLINE))
        elif kind in ("em_open", "strong_open", "s_open"):
            opened.append(
                ({"em_open": "italic", "strong_open": "bold"}.get(kind, "strike"), position)
            )
        elif kind == "link_open":
            href = str(child.attrs.get("href", ""))
            opened.append((Style(underline=True, link=href or None), position))
        elif kind == "image":
            start = position
            add(f"[image: {child.content or child.attrs.get('alt', '') or ''}]")
            spans.append(Span(start, position, "italic $text-muted"))
        elif kind in ("html_inline",):
            add(child.content)
        elif kind.endswith("_close"):
            close()
    while opened:
        close()
    return Content("".join(parts), spans=spans)


def _wrap(content: Content, width: int) -> Lines:
    if not content:
        return []
    return content.wrap(max(width, 1))


def _prefixed(rows: Lines, prefix: str, style: str) -> Lines:
    bar = Content.styled(prefix, style)
    return [bar + row for row in rows]


def _start_number(node: Node) -> int:
    start = node.attrs.get("start")
    try:
        return int(start) if start is not None else 1
    except (TypeError, ValueError):
        return 1


def _align(cell: Node) -> str:
    style = str(cell.attrs.get("style", ""))
    for align in ("right", "center"):
        if f"text-align:{align}" in style:
            return align
    return "left"


def _aligned(content: Content, size: int, align: str) -> Content:
    gap = max(size - content.cell_length, 0)
    if align == "right":
        return Content(" " * gap) + content
    if align == "center":
        return Content(" " * (gap // 2)) + content + Content(" " * (gap - gap // 2))
    return content + Content(" " * gap)


def _column_widths(rows: list[list[Content]], columns: int, available: int) -> list[int]:
    """Natural widths, the widest columns narrowed first until the table fits."""
    widths = [max((row[i].cell_length for row in rows), default=1) or 1 for i in range(columns)]
    available = max(available, columns * 3)
    while sum(widths) > available:
        widest = max(range(columns), key=lambda i: widths[i])
        excess = sum(widths) - available
        second = sorted(widths, reverse=True)[1] if columns > 1 else 0
        widths[widest] -= max(1, min(excess, widths[widest] - second))
        if widths[widest] <= 3:
            widths = [max(3, w) for w in widths]
            break
    return widths
