"""Small dialogs: confirm a stack operation, pick the service to restart."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from tui.commands import bindings
from tui.widgets.footer import Footer


class ConfirmScreen(ModalScreen[bool]):
    """A question with a yes (``y``/Enter on the button) and a no (``n``/Esc)."""

    BINDINGS = bindings("confirm")

    def __init__(self, title: str, question: str, yes: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title_text = title
        self.question = question
        self.yes_label = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog", classes="dialog") as dialog:
            dialog.border_title = self.title_text
            yield Static(self.question, id="confirm-question", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes_label} (y)", variant="error", id="confirm-yes")
                yield Button("Cancel (n)", id="confirm-no")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()  # Enter alone never stops anything

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class PickServiceScreen(ModalScreen[str | None]):
    """The services that exist; Enter picks one, Esc closes."""

    BINDINGS = bindings("pick")

    def __init__(self, title: str, roles: Sequence[str], selected: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.roles = list(roles)
        self.selected = selected

    def compose(self) -> ComposeResult:
        with Vertical(id="pick-dialog", classes="dialog") as dialog:
            dialog.border_title = self.title_text
            # Content, not a str: an option's prompt is markup, and roles come from labels.
            options = (Option(Content(role), id=role) for role in self.roles)
            yield OptionList(*options, id="pick-list")
        yield Footer()

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        if self.selected in self.roles:
            options.highlighted = self.roles.index(self.selected)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
