"""A streamed Markdown answer as rows, re-rendering only the block still growing.

Text arrives at the end. Everything before the start of the last top-level block can no
longer change how it reads (Markdown blocks end where the next begins), so those blocks
are rendered once and kept; each update parses and renders only the tail, from the start
of its last block. An open code fence at the end — the one block that may grow to
thousands of lines — skips the parser altogether: its finished lines are highlighted in
chunks that are kept, and only the last chunk is highlighted again as it grows.

The rows always equal `render_markdown(text, width)` once `finish()` has run (a test
feeds the same text in random pieces and compares), except that a document with
reference-style link definitions is rendered again whole at the end, since a definition
can change a link above it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markdown_it.token import Token
from textual.content import Content

from tui.widgets.chat_code import CODE_LABEL, code_lines, filled
from tui.widgets.chat_markdown import (
    BlockCache,
    Lines,
    blocks_of,
    fence_count,
    make_parser,
    render_markdown,
    visible,
)

FENCE_CHUNK = 8  # code lines highlighted together while a fence grows
_FENCE_OPEN = re.compile(r"^( {0,3})(`{3,}|~{3,})([^\n]*)\n")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]\n]+\]:", re.M)
BLANK = Content("")


class _Block:
    __slots__ = ("fences", "rows", "source")

    def __init__(self, source: str, fences: int, rows: Lines) -> None:
        self.source = source
        self.fences = fences
        self.rows = rows


class MarkdownDocument:
    """``append`` text as it comes, ``rows(width)`` to draw; ``finish`` when it ends."""

    def __init__(self, cache: BlockCache | None = None) -> None:
        self._parser = make_parser()
        self._cache = cache or BlockCache()
        self._parts: list[str] = []
        self._done: list[_Block] = []  # finished blocks, rendered at `_width`
        self._done_rows: Lines = []  # their rows, with a blank row between blocks
        self._fences = 1  # the number the first code block of the tail gets
        self._tail = ""  # the text after the finished blocks
        self._tail_rows: Lines = []
        self._width = 0
        self._stale = True
        self._open_fence: tuple[str, str, list[Content], int] | None = None
        self.finished = False

    @property
    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def append(self, text: str) -> None:
        if text:
            self._parts.append(text)
            self._tail += visible(text)
            self._stale = True

    def finish(self) -> None:
        """No more text: the last block is final (and rendered from its whole text)."""
        self.finished = True
        self._stale = True

    def rows(self, width: int) -> tuple[Lines, Lines]:
        """(finished rows, tail rows) at ``width``; only what changed is rendered."""
        if width != self._width:
            self._rerender(width)
        if self._stale:
            self._update()
        return self._done_rows, self._tail_rows

    def all_rows(self, width: int) -> Lines:
        done, tail = self.rows(width)
        return done + tail

    # --- rendering ------------------------------------------------------------------------

    def _rerender(self, width: int) -> None:
        self._width = width
        rows: Lines = []
        fences = 1
        for block in self._done:
            block.rows = self._cache.rows(block.source, width, fences, self._tokens(block.source))
            if rows:
                rows.append(BLANK)
            rows += block.rows
            fences += block.fences
        self._done_rows = rows
        self._open_fence = None
        self._stale = True

    def _tokens(self, source: str) -> Callable[[], list[Token]]:
        return lambda: self._parser.parse(source)

    def _update(self) -> None:
        self._stale = False
        if self.finished and _REFERENCE.search(self.text):
            self._whole()
            return
        tail = self._tail
        if not self.finished and self._grow_open_fence(tail):
            return
        self._open_fence = None
        tokens = self._parser.parse(tail)
        blocks = blocks_of(tokens)
        lines = tail.splitlines(keepends=True)
        keep = len(blocks) if self.finished else len(blocks) - 1
        for start, end, block_tokens in blocks[:keep]:
            source = "".join(lines[start:end])
            rows = self._cache.rows(source, self._width, self._fences, _given(block_tokens))
            self._push(_Block(source, fence_count(block_tokens), rows))
        if self.finished:
            self._tail, self._tail_rows = "", []
            return
        if keep > 0:
            start = blocks[keep][0]
            self._tail = "".join(lines[start:])
        if not blocks:
            self._tail_rows = []
            return
        last = blocks[-1][2]
        source = "".join(lines[blocks[-1][0] : blocks[-1][1]])
        rows = self._cache.rows(source, self._width, self._fences, _given(last))
        self._tail_rows = [BLANK, *rows] if self._done_rows and rows else rows

    def _push(self, block: _Block) -> None:
        if self._done_rows and block.rows:
            self._done_rows.append(BLANK)
        self._done_rows += block.rows
        self._done.append(block)
        self._fences += block.fences

    def _whole(self) -> None:
        """Render everything again from the whole text (a reference definition appeared)."""
        self._done = []
        self._done_rows = render_markdown(self.text, self._width)
        self._tail, self._tail_rows = "", []

    def _grow_open_fence(self, tail: str) -> bool:
        """The tail is one fence that has not closed yet: draw it without the parser."""
        opened = _FENCE_OPEN.match(tail)
        if opened is None:
            return False
        indent, marker, info = opened.groups()
        if marker[0] == "`" and "`" in info:
            return False  # not a fence opener (CommonMark: no backtick in a ``` info string)
        body = tail[opened.end() :]
        closing = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$", re.M)
        if closing.search(body):
            return False
        language = info.strip().split()[0] if info.strip() else ""
        code = body.split("\n")
        if indent:
            code = [_dedent(line, len(indent)) for line in code]
        complete, partial = code[:-1], code[-1]
        width = self._width
        state = self._open_fence
        if state is None or state[0] != tail[: opened.end()] or state[3] > len(complete):
            state = (tail[: opened.end()], language, [], 0)
        head, _, kept, chunked = state
        while len(complete) - chunked >= FENCE_CHUNK:
            kept = kept + code_lines(complete[chunked : chunked + FENCE_CHUNK], language, width)
            chunked += FENCE_CHUNK
        self._open_fence = (head, language, kept, chunked)
        rest = complete[chunked:] + ([partial] if partial else [])
        label = f" {self._fences} · {language}" if language else f" {self._fences}"
        rows = [filled(Content(label), width, CODE_LABEL), *kept]
        if rest or not kept:
            rows += code_lines(rest or [""], language, width)
        self._tail_rows = [BLANK, *rows] if self._done_rows else rows
        return True


def _given(tokens: list[Token]) -> Callable[[], list[Token]]:
    return lambda: tokens


def _dedent(line: str, count: int) -> str:
    """CommonMark: an indented fence's lines lose up to that much leading space."""
    stripped = len(line) - len(line.lstrip(" "))
    return line[min(stripped, count) :]
