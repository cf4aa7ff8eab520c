"""Settings: every `.env` key with its value (secrets masked), problems first; Enter edits."""

from __future__ import annotations

from functools import partial
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from stack.settings import FIELDS, SCHEMA, Settings, mask
from tui.commands import bindings
from tui.paths import display_path
from tui.screens.base import ModeScreen
from tui.screens.edit_setting import EditSettingScreen

KEY_WIDTH = 20
VALUE_WIDTH = 40


class SettingsTable(DataTable[Any]):
    """One row per key; Enter edits the highlighted one."""

    BINDINGS = bindings("settings.table")


def shown_value(key: str, value: str, *, show_secrets: bool) -> str:
    return value if show_secrets else mask(key, value)


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def setting_rows(settings: Settings, *, show_secrets: bool) -> list[tuple[str, str, bool, str]]:
    """(key, value as shown, is it the default, one-line description) for every key."""
    rows = []
    for spec in SCHEMA:
        in_file = spec.key in settings.values
        value = settings.values[spec.key] if in_file else spec.default
        shown = shown_value(spec.key, value, show_secrets=show_secrets)
        rows.append((spec.key, shown, not in_file, spec.description.splitlines()[0]))
    for key, value in settings.values.items():
        if key not in FIELDS:
            shown = shown_value(key, value, show_secrets=show_secrets)
            rows.append((key, shown, False, "not an llm-tui key; kept as is"))
    return rows


def problems_text(settings: Settings) -> Content:
    count = len(settings.problems)
    lines = [Content.styled(f"{count} problem{'s' if count != 1 else ''} in the file", "bold")]
    for problem in settings.problems:
        where = f"line {problem.line}" if problem.line else "file"
        lines.append(Content(f"{where:>9}  {problem.key}  {problem.message}"))
    return Content("\n").join(lines)


class SettingsScreen(ModeScreen):
    MODE = "settings"
    SUB_TITLE = "Settings"
    BINDINGS = bindings("settings")

    show_secrets = reactive(False, init=False)

    def compose_body(self) -> ComposeResult:
        with Vertical(id="settings"):
            yield Static("", id="settings-file", markup=False)
            yield Static("", id="settings-problems", markup=False)
            table = SettingsTable(id="settings-table", cursor_type="row", zebra_stripes=True)
            table.add_column("Key", key="key", width=KEY_WIDTH)
            table.add_column("Value", key="value", width=VALUE_WIDTH)
            table.add_column("About", key="about")
            yield table
            yield Static("", id="settings-about", markup=False)

    def on_mount(self) -> None:
        self.show_settings()

    def on_resize(self, event: events.Resize) -> None:
        self.show_settings()

    def watch_show_secrets(self) -> None:
        self.show_settings()

    def settings_changed(self, settings: Settings) -> None:
        self.show_settings()

    def show_settings(self) -> None:
        settings = self.settings
        self.query_one("#settings-file", Static).update(
            f"{display_path(settings.env_file)}  ·  Enter edits the selected setting  ·  "
            f"s {'hides' if self.show_secrets else 'shows'} secrets"
        )
        problems = self.query_one("#settings-problems", Static)
        problems.update(problems_text(settings))
        problems.display = bool(settings.problems)

        bad = {problem.key for problem in settings.problems}
        about_width = max(16, self.size.width - KEY_WIDTH - VALUE_WIDTH - 10)
        table = self.query_one(SettingsTable)
        cursor = table.cursor_row
        table.clear()
        for key, value, is_default, about in setting_rows(settings, show_secrets=self.show_secrets):
            key_text = Text(clip(key, KEY_WIDTH - 2))
            if key in bad:
                key_text = Text.assemble(("✗ ", "bold"), key_text)
            value_text = Text(clip(value, VALUE_WIDTH - (10 if is_default else 0)))
            if is_default:
                value_text.append("  default", style="dim italic")
            table.add_row(key_text, value_text, Text(clip(about, about_width)), key=key)
        table.move_cursor(row=max(0, min(cursor, table.row_count - 1)))
        self.show_about(self.selected_key)

    @property
    def selected_key(self) -> str | None:
        table = self.query_one(SettingsTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_about(event.row_key.value)

    def show_about(self, key: str | None) -> None:
        about = self.query_one("#settings-about", Static)
        if key is None:
            about.update("")
        elif key in FIELDS:
            about.update(f"{key}: " + " ".join(FIELDS[key].description.split()))
        else:
            about.update(f"{key} is not an llm-tui setting; it is kept as it is in the file.")

    def action_toggle_secrets(self) -> None:
        self.show_secrets = not self.show_secrets

    def action_edit_selected(self) -> None:
        key = self.selected_key
        if key is None:
            return
        if key not in FIELDS:
            self.notify(
                f"{key} is not an llm-tui setting: edit it in the file itself.", markup=False
            )
            return
        dialog = EditSettingScreen(self.settings, key, show_secret=self.show_secrets)
        self.app.push_screen(dialog, partial(self.edited, key))

    def edited(self, key: str, settings: Settings | None) -> None:
        if settings is None:
            return
        self.llm_app.update_settings(settings)
        value = shown_value(key, settings.values.get(key, ""), show_secrets=False)
        # After the dialog has gone, so the toast lands on this screen.
        self.call_after_refresh(
            self.notify, f"{key}={value} written to .env", title="Saved", markup=False
        )
