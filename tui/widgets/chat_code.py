"""Code blocks as rows: highlighted once per text, folded (never cut), on a background.

Highlighting is `textual.highlight.highlight`'s, with one lexer kept per language (making a
lexer costs more than lexing a short fence) and each text highlighted once (a closed fence
at the end of an answer is drawn every frame until the next block begins).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from textual.content import Content, Span
from textual.highlight import HighlightTheme

if TYPE_CHECKING:
    from pygments.lexer import Lexer

Lines = list[Content]

CODE_BACKGROUND = "on $boost"
CODE_LABEL = "$text-muted on $boost"


def code_rows(code: str, language: str, number: int, width: int) -> Lines:
    """A fence: a label row, then its highlighted lines folded to the width, on a background."""
    label = f" {number} · {language}" if language else f" {number}"
    rows = [filled(Content(label), width, CODE_LABEL)]
    rows += code_lines(code.rstrip("\n").split("\n") if code.strip("\n") else [""], language, width)
    return rows


@lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer:
    """One lexer per language."""
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    options = {"stripnl": False, "ensurenl": True, "tabsize": 8}
    try:
        return get_lexer_by_name(language or "text", **options)
    except ClassNotFound:
        return get_lexer_by_name("text", **options)


@lru_cache(maxsize=512)
def _highlighted(code: str, language: str) -> Content:
    """Code highlighted as `textual.highlight.highlight` does it."""
    spans: list[Span] = []
    start = 0
    styles = HighlightTheme.STYLES
    for token_type, token in _lexer(language).get_tokens(code):
        end = start + len(token)
        kind: Any = token_type
        while kind is not None:
            if style := styles.get(kind):
                spans.append(Span(start, end, style))
                break
            kind = kind.parent
        start = end
    return Content(code, spans=spans).stylize_before("$text")


def code_lines(lines: Sequence[str], language: str, width: int) -> Lines:
    """Highlighted code rows: each source line folded to ``width - 2``, padded, on a background."""
    highlighted = _highlighted("\n".join(lines), language)
    out: Lines = []
    inner = max(width - 2, 1)
    for line in highlighted.split("\n", allow_blank=True):
        line = line.expand_tabs(4)
        pieces = line.fold(inner) if line.cell_length > inner else [line]
        out += [filled(Content(" ") + piece, width, CODE_BACKGROUND) for piece in pieces]
    return out


def filled(line: Content, width: int, style: str) -> Content:
    gap = width - line.cell_length
    if gap > 0:
        line = line + Content(" " * gap)
    return line.stylize_before(style)
