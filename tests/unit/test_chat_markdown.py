"""The chat pane's Markdown: streamed in any pieces, it ends up as the whole text rendered."""

from __future__ import annotations

import random

import pytest

from tui.widgets.chat_document import MarkdownDocument
from tui.widgets.chat_markdown import code_blocks, render_markdown

pytestmark = pytest.mark.unit

ANSWER = """# Title

A paragraph with **bold**, *em*, `code`, ~~gone~~ and a [link](https://example.com).
Soft break here.

- one
- two
  - nested
- three

1. first
2. second

> quoted **text**
> more

| name | value |
|------|------:|
| a    | 1     |
| bb   | 22    |

```python
def f(x):
    return x * 2
```

    indented code

---

Setext heading
--------------

~~~
tilde fence
~~~

Last words.
"""


def plain(rows: list[object]) -> list[str]:
    return [row.plain for row in rows]  # type: ignore[attr-defined]


def streamed(text: str, width: int, seed: int, finish: bool = True) -> MarkdownDocument:
    rng = random.Random(seed)
    document = MarkdownDocument()
    index = 0
    while index < len(text):
        size = rng.choice([1, 1, 2, 3, 7, 20, 80])
        document.append(text[index : index + size])
        index += size
        if rng.random() < 0.7:
            document.rows(width)  # drawn at some frames, not at others
    if finish:
        document.finish()
    return document


@pytest.mark.parametrize("seed", range(12))
def test_streaming_in_any_pieces_ends_as_the_whole_render(seed: int) -> None:
    document = streamed(ANSWER, 60, seed)
    assert document.text == ANSWER
    assert plain(document.all_rows(60)) == plain(render_markdown(ANSWER, 60))


def test_the_rows_follow_a_new_width() -> None:
    document = streamed(ANSWER, 60, 1)
    assert plain(document.all_rows(33)) == plain(render_markdown(ANSWER, 33))


def test_the_look_of_each_block() -> None:
    rows = plain(render_markdown(ANSWER, 40))
    assert rows[:2] == ["Title", ""]
    assert "• one" in rows and "  ◦ nested" in rows and "1. first" in rows
    assert "▌ quoted text more" in rows
    assert "name │ value" in rows and "─────┼──────" in rows and "bb   │    22" in rows
    assert " 1 · python" in [row.rstrip() for row in rows]
    assert "    return x * 2" in [row.rstrip()[1:] for row in rows]
    assert " 2" in [row.rstrip() for row in rows]  # the indented block, numbered too
    assert "─" * 40 in rows
    assert "Setext heading" in rows


def test_a_growing_fence_is_drawn_before_it_closes() -> None:
    document = MarkdownDocument()
    document.append("Intro.\n\n```python\n")
    for index in range(100):
        document.append(f"x_{index} = {index}\n")
        rows = plain(document.all_rows(50))
    assert rows[0] == "Intro."
    assert rows[2].rstrip() == " 1 · python"
    assert rows[-1].strip() == "x_99 = 99"
    document.append("```\n\nAfter.")
    document.finish()
    assert plain(document.all_rows(50)) == plain(render_markdown(document.text, 50))


def test_code_is_folded_not_cut() -> None:
    long_line = "value = " + "x" * 70
    rows = plain(render_markdown(f"```\n{long_line}\n```\n", 30))
    assert all(len(row) == 30 for row in rows) and len(rows) == 4  # a label, three pieces
    assert "".join(row[1:29] for row in rows[1:]).rstrip() == long_line


def test_a_reference_link_defined_below_is_resolved_at_the_end() -> None:
    text = "See [the docs][d].\n\nMore text.\n\n[d]: https://example.com\n"
    document = streamed(text, 40, 3)
    assert plain(document.all_rows(40)) == plain(render_markdown(text, 40))
    assert plain(document.all_rows(40))[0] == "See the docs."


def test_control_characters_are_shown_not_sent_to_the_terminal() -> None:
    rows = plain(render_markdown("clear \x1b[2J now\x07 and\ra tab\there\n", 60))
    assert rows == ["clear ␛[2J now␇ and␍a tab here"]


def test_code_blocks_are_numbered_as_drawn() -> None:
    assert code_blocks(ANSWER) == [
        ("python", "def f(x):\n    return x * 2\n"),
        ("", "indented code\n"),
        ("", "tilde fence\n"),
    ]
