"""The dialog that edits one `.env` value: validated in a worker, written only when valid."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Select, Static
from textual.worker import Worker

from stack.settings import FIELDS, Settings
from tui.commands import bindings
from tui.messages import SettingRejected, SettingSaved
from tui.screens.base import forward_worker_error, start_setting_write


def allowed_text(key: str) -> str:
    spec = FIELDS[key]
    default = spec.default or "(empty)"
    if spec.secret:
        return "Optional." if spec.optional else ""
    text = f"Default: {default}"
    if spec.optional and spec.default:
        text += "  ·  may be empty"
    return text


class EditSettingScreen(ModalScreen[Settings | None]):
    """Change ``key``: Enter (or ctrl+s) saves, Esc cancels; errors stay in the dialog."""

    BINDINGS = bindings("edit")

    def __init__(self, settings: Settings, key: str, *, show_secret: bool = False) -> None:
        super().__init__()
        self.settings = settings
        self.key = key
        self.spec = FIELDS[key]
        self.current = settings.values.get(key, self.spec.default)
        self.show_secret = show_secret

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-dialog") as dialog:
            dialog.border_title = f"Edit {self.key}"
            yield Static(self.spec.description, id="edit-description", markup=False)
            yield Static(allowed_text(self.key), id="edit-allowed", markup=False)
            if self.spec.choices:
                yield Select(
                    [(choice, choice) for choice in self.spec.choices],
                    value=self.current if self.current in self.spec.choices else Select.NULL,
                    allow_blank=self.current not in self.spec.choices,
                    id="edit-value",
                )
            else:
                yield Input(
                    self.current,
                    password=self.spec.secret and not self.show_secret,
                    id="edit-value",
                )
            yield Static("", id="edit-error", markup=False)
            with Horizontal(id="edit-buttons"):
                yield Button("Save", variant="primary", id="edit-save")
                yield Button("Cancel", id="edit-cancel")
        yield Footer()

    @property
    def value(self) -> str | None:
        widget = self.query_one("#edit-value")
        if isinstance(widget, Select):
            return None if widget.is_blank() else str(widget.value)
        assert isinstance(widget, Input)
        return widget.value

    def action_save(self) -> None:
        value = self.value
        if value is None:
            self.show_error(["pick one of the choices"])
            return
        start_setting_write(self, self.key, value)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "edit-save":
            self.action_save()
        else:
            self.action_cancel()

    def show_error(self, problems: list[str]) -> None:
        error = self.query_one("#edit-error", Static)
        error.update("\n".join(problems) + "\nNothing was written.")
        error.add_class("-visible")

    def on_setting_rejected(self, message: SettingRejected) -> None:
        self.show_error(message.problems)
        self.query_one("#edit-value").focus()

    def on_setting_saved(self, message: SettingSaved) -> None:
        self.dismiss(message.settings)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        forward_worker_error(self, event)
