"""Keys that arrive together (a fast typist, a burst over SSH, tmux send-keys) are applied in
the order they were typed, in every text field of the app (tui/widgets/key_order.py)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

import pytest
from textual import events
from textual.app import App, ComposeResult
from textual.keys import _get_unicode_name_from_key
from textual.widget import Widget

from tests.tui.fakes import FakeChat, FakeEngine, running_stack
from tests.tui.helpers import SIZE, go_to, settle, until
from tui.__main__ import LlmTuiApp
from tui.screens.chat_dialogs import PromptArea
from tui.widgets.key_order import Input

pytestmark = [pytest.mark.tui, pytest.mark.anyio]

# Typed in one burst. Backspace, the arrows, Home/End and ctrl+u are the field's bindings;
# before, each ran after the letters typed behind it.
BURSTS = [
    (["b", "a", "backspace", "c"], "bc"),
    (["x", "y", "left", "z"], "xzy"),
    (["o", "n", "e", "ctrl+u", "t", "w", "o"], "two"),
    (["a", "b", "home", "c", "end", "d"], "cabd"),
]


def burst(app: App[Any], keys: Iterable[str]) -> None:
    """Post ``keys`` the way the terminal's reader does, all at once, waiting for none."""
    driver = app._driver
    assert driver is not None
    for key in keys:
        try:  # as Pilot.press names a key's character
            character: str | None = unicodedata.lookup(_get_unicode_name_from_key(key))
        except KeyError:
            character = key if len(key) == 1 else None
        event = events.Key(key, character)
        event.set_sender(app)
        driver.send_message(event)


class Fields(App[None]):
    def compose(self) -> ComposeResult:
        yield Input(id="one-line")
        yield PromptArea(id="prompt")


def value_of(widget: Widget) -> str:
    return widget.value if isinstance(widget, Input) else widget.text  # type: ignore[attr-defined]


@pytest.mark.parametrize("selector", ["#one-line", "#prompt"])
@pytest.mark.parametrize(("keys", "expected"), BURSTS)
async def test_a_burst_of_keys_edits_in_the_order_typed(
    selector: str, keys: list[str], expected: str
) -> None:
    app = Fields()
    async with app.run_test(size=(60, 12)):
        field = app.query_one(selector)
        field.focus()
        await settle(app)
        burst(app, keys)
        await until(lambda: value_of(field) == expected or None, f"the field reads {expected!r}")
        await settle(app)
        assert value_of(field) == expected


async def test_a_message_typed_fast_in_the_chat_is_sent_as_typed(
    app: LlmTuiApp, engine: FakeEngine, chat: FakeChat
) -> None:
    engine.statuses = running_stack()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await go_to(app, pilot, "chat")
        await settle(app)
        # "helo", back one, "l", to the end, "!" and Enter: all in one burst.
        burst(app, ["h", "e", "l", "o", "left", "l", "end", "exclamation_mark", "enter"])
        await until(lambda: chat.requests or None, "the message is sent")
        await settle(app)
        assert chat.requests[0]["messages"][-1]["content"] == "hello!"


async def test_a_burst_typed_into_the_palette_reads_as_typed(
    app: LlmTuiApp, engine: FakeEngine
) -> None:
    from textual.command import CommandPalette

    from tui.widgets.key_order import CommandInput

    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("ctrl+p")
        await until(lambda: isinstance(app.screen, CommandPalette) or None, "the palette")
        await settle(app)
        field = app.screen.query_one(CommandInput)
        assert app.focused is field and isinstance(field, CommandInput)
        burst(app, ["s", "e", "r", "x", "backspace", "v", "e"])
        await until(lambda: field.value == "serve" or None, "the palette reads 'serve'")
        await settle(app)
        assert field.value == "serve"


class TwoFields(App[None]):
    def compose(self) -> ComposeResult:
        yield Input("one", id="first")
        yield Input("two", id="second")


async def test_a_bound_key_after_tab_in_the_same_burst_edits_where_the_focus_went(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from textual.widgets import Input as TextualInput

    handled: list[str] = []
    own = TextualInput._on_key

    async def counted(self: TextualInput, event: events.Key) -> None:
        handled.append(event.key)
        await own(self, event)

    monkeypatch.setattr(TextualInput, "_on_key", counted)
    app = TwoFields()
    async with app.run_test(size=(60, 12)):
        first, second = app.query(Input)
        first.focus()
        first.cursor_position = second.cursor_position = 3
        await settle(app)
        handled.clear()
        burst(app, ["tab", "backspace"])
        await until(lambda: second.value == "tw" or None, "Backspace edits the second field")
        await settle(app)
        assert first.value == "one" and app.focused is second
        assert handled == ["tab", "backspace"]  # the field's own handler, once a key
