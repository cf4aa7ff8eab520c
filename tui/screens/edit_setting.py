"""The dialog that edits one `.env` value: checked as you type, shown as a diff, then written.

Typing (or picking a choice) asks `preview_change` in a thread: the line under the field
says at once whether the value is valid and, if so, what it would change. Enter (or
ctrl+s) on a valid value shows the change (old → new, and which containers applying it
recreates); Enter again writes it. Esc goes back from the review, else closes. ctrl+r
shows a secret unmasked while it is typed.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Select, Static
from textual.worker import Worker, get_current_worker

from stack.settings import FIELDS, Settings
from tui.commands import bindings
from tui.messages import SettingRejected, SettingSaved
from tui.screens.base import forward_worker_error, start_setting_write
from tui.setting_change import ChangePreview, preview_change
from tui.widgets.footer import Footer
from tui.widgets.key_order import Input


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
    """Change ``key``: checked as you type; Enter reviews, Enter again saves, Esc backs out."""

    BINDINGS = bindings("edit")

    class Previewed(Message):
        def __init__(self, preview: ChangePreview) -> None:
            super().__init__()
            self.preview = preview

    def __init__(self, settings: Settings, key: str, *, show_secret: bool = False) -> None:
        super().__init__()
        self.settings = settings
        self.key = key
        self.spec = FIELDS[key]
        self.current = settings.values.get(key, self.spec.default)
        self.show_secret = show_secret
        self.preview: ChangePreview | None = None
        self.reviewing = False
        self._save_when_checked = False

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
            yield Static("", id="edit-check", markup=False)
            yield Static("", id="edit-review", markup=False)
            yield Static("", id="edit-error", markup=False)
            with Horizontal(id="edit-buttons"):
                yield Button("Save", variant="primary", id="edit-save")
                yield Button("Cancel", id="edit-cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#edit-review").display = False

    @property
    def value(self) -> str | None:
        widget = self.query_one("#edit-value")
        if isinstance(widget, Select):
            return None if widget.is_blank() else str(widget.value)
        assert isinstance(widget, Input)
        return widget.value

    # --- checked as you type ------------------------------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.value_changed()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.value_changed()

    def value_changed(self) -> None:
        self.preview = None
        if self.reviewing:
            self.leave_review()
        value = self.value
        if value is not None:
            self.check(self.settings, value)

    @work(thread=True, exclusive=True, exit_on_error=False, group="settings-check")
    def check(self, settings: Settings, value: str) -> None:
        preview = preview_change(settings, self.key, value)
        if not get_current_worker().is_cancelled:  # a newer keystroke replaced this one
            self.post_message(self.Previewed(preview))

    def on_edit_setting_screen_previewed(self, message: Previewed) -> None:
        preview = message.preview
        if preview.new != self.value:
            return  # typed on since
        self.preview = preview
        check = self.query_one("#edit-check", Static)
        if preview.valid:
            text = Content.assemble(("✓ ", "bold $text-success"), preview.effect())
        else:
            text = Content.assemble(("✗ ", "bold $text-error"), "; ".join(preview.problems))
        check.update(text)
        check.set_class(not preview.valid, "-invalid")
        if self._save_when_checked:
            self._save_when_checked = False
            self.action_save()

    # --- review, then save --------------------------------------------------------------

    def action_save(self) -> None:
        value = self.value
        if value is None:
            self.show_error(["pick one of the choices"])
            return
        preview = self.preview
        if preview is None or preview.new != value:
            self._save_when_checked = True  # Enter before the check landed: it goes on then
            self.check(self.settings, value)
            return
        if not preview.valid:
            self.show_error(preview.problems)
            return
        if not preview.changed:
            self.dismiss(None)
            return
        if not self.reviewing:
            self.enter_review(preview)
            return
        start_setting_write(self, self.key, value)

    def enter_review(self, preview: ChangePreview) -> None:
        self.reviewing = True
        review = self.query_one("#edit-review", Static)
        review.update(
            Content.assemble(
                (preview.diff_line(show_secrets=self.show_secret), "bold"),
                "\n",
                preview.effect(),
                ("\nEnter writes it to .env  ·  Esc goes back", "$text-muted"),
            )
        )
        review.display = True
        self.query_one("#edit-check").display = False  # the review says it again
        self.query_one("#edit-save", Button).label = "Write .env"
        self.query_one("#edit-error").remove_class("-visible")

    def leave_review(self) -> None:
        self.reviewing = False
        self.query_one("#edit-review").display = False
        self.query_one("#edit-check").display = True
        self.query_one("#edit-save", Button).label = "Save"

    def action_cancel(self) -> None:
        if self.reviewing:
            self.leave_review()
            self.query_one("#edit-value").focus()
            return
        self.dismiss(None)

    def action_toggle_reveal(self) -> None:
        widget = self.query_one("#edit-value")
        if isinstance(widget, Input) and self.spec.secret:
            self.show_secret = not self.show_secret
            widget.password = not self.show_secret

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "edit-save":
            self.action_save()
        else:
            self.dismiss(None)

    def show_error(self, problems: list[str]) -> None:
        error = self.query_one("#edit-error", Static)
        error.update("\n".join(problems) + "\nNothing was written.")
        error.add_class("-visible")

    def on_setting_rejected(self, message: SettingRejected) -> None:
        self.leave_review()
        self.show_error(message.problems)
        self.query_one("#edit-value").focus()

    def on_setting_saved(self, message: SettingSaved) -> None:
        self.dismiss(message.settings)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        forward_worker_error(self, event)
