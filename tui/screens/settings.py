"""Settings: every `.env` key by group (secrets masked), problems first; Enter edits, a applies.

Keys are grouped the way people think of the stack: Models, Inference, Gateway, Network,
Hub, Dashboard (then any keys llm-tui does not know, kept as they are). Enter opens the
editor (checked as you type, then a diff before anything is written).

What is saved is not yet what runs: the screen asks the engine which running containers
differ from `.env` (the same drift `llm-tui status` reports) whenever it shows and after
each save, and says so above the table. `a` applies: `up` recreates only those
containers, with its progress here; the others keep running.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey
from textual.worker import Worker, WorkerState

from stack.cancel import CancelToken
from stack.engine import ServiceStatus, UpResult
from stack.errors import LlmTuiError
from stack.settings import FIELDS, SCHEMA, Settings, mask
from tui.commands import bindings
from tui.mailbox import Mailbox, newest
from tui.paths import display_path
from tui.screens.base import ModeScreen
from tui.screens.edit_setting import EditSettingScreen
from tui.services import StackEngine
from tui.widgets.operation_panel import OperationPanel, line_key

KEY_WIDTH = 2 + max(len(key) for key in FIELDS)  # whole: a clipped key reads as another
VALUE_WIDTH = 40
GROUPS = ("Models", "Inference", "Gateway", "Network", "Hub", "Dashboard")
OTHER_GROUP = "Not llm-tui's (kept as they are)"
# The schema's sections, as groups; keys whose section does not say it go by name.
SECTION_GROUPS = {
    "Models": "Models",
    "Images": "Inference",
    "Inference": "Inference",
    "Network": "Network",
    "Secrets": "Gateway",
    "Hugging Face": "Hub",
    "Chat defaults": "Gateway",
    "Stack": "Network",
    "Dashboard": "Dashboard",
}
KEY_GROUPS = {"GATEWAY_IMAGE": "Gateway", "HF_TOKEN": "Hub"}
GROUP_ROW = "group:"


def group_of(key: str) -> str:
    if key in KEY_GROUPS:
        return KEY_GROUPS[key]
    spec = FIELDS.get(key)
    if spec is None:
        return OTHER_GROUP
    return SECTION_GROUPS.get(spec.section, spec.section or "Other")


class SettingsTable(DataTable[Any]):
    """One row per key under its group's row; Enter edits the highlighted key."""

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
            rows.append((key, shown, False, "not llm-tui's; kept as is"))
    return rows


def grouped_rows(
    settings: Settings, *, show_secrets: bool
) -> list[tuple[str, list[tuple[str, str, bool, str]]]]:
    """`setting_rows` under their groups, in GROUPS order (schema order within a group)."""
    groups: dict[str, list[tuple[str, str, bool, str]]] = {}
    for row in setting_rows(settings, show_secrets=show_secrets):
        groups.setdefault(group_of(row[0]), []).append(row)
    order = [*GROUPS, *(g for g in groups if g not in GROUPS and g != OTHER_GROUP), OTHER_GROUP]
    return [(group, groups[group]) for group in order if group in groups]


def problems_text(settings: Settings) -> Content:
    count = len(settings.problems)
    lines = [Content.styled(f"{count} problem{'s' if count != 1 else ''} in the file", "bold")]
    for problem in settings.problems:
        where = f"line {problem.line}" if problem.line else "file"
        lines.append(Content(f"{where:>9}  {problem.key}  {problem.message}"))
    return Content("\n").join(lines)


def drift_text(statuses: list[ServiceStatus]) -> Content | None:
    """``Saved but not applied: inference (CTX_SIZE) — a applies…``; None when all match."""
    drifted = [s for s in statuses if s.state != "missing" and s.drift]
    if not drifted:
        return None
    pieces = [f"{s.role} ({', '.join(s.drift)})" for s in drifted]
    names = ", ".join(s.role for s in drifted)
    return Content.assemble(
        ("Saved, not yet applied: ", "bold"),
        "; ".join(pieces),
        ("  ·  a applies: recreates only ", "$text-muted"),
        (names, "$text-muted"),
    )


class SettingsScreen(ModeScreen):
    CSS_PATH = "settings.tcss"  # loaded when it first shows
    MODE = "settings"
    SUB_TITLE = "Settings"
    BINDINGS = bindings("settings")
    SELF_REPORTED: ClassVar[frozenset[str]] = frozenset({"settings-drift", "settings-apply"})

    show_secrets = reactive(False, init=False)

    @dataclass
    class Drift(Message):
        statuses: list[ServiceStatus]

    class ApplyProgress(Message):
        """Progress lines wait in the apply mailbox."""

    @dataclass
    class Applied(Message):
        result: UpResult

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[ServiceStatus] | None = None
        self._progress: Mailbox[str] = Mailbox(
            self, self.ApplyProgress, compact=partial(newest, key=line_key)
        )

    def compose_body(self) -> ComposeResult:
        with Vertical(id="settings"):
            yield Static("", id="settings-file", markup=False)
            yield Static("", id="settings-problems", markup=False)
            yield Static("", id="settings-apply", markup=False)
            yield OperationPanel(id="settings-operation")
            table = SettingsTable(id="settings-table", cursor_type="row", zebra_stripes=True)
            table.add_column("Key", key="key", width=KEY_WIDTH)
            table.add_column("Value", key="value", width=VALUE_WIDTH)
            table.add_column("About", key="about")
            yield table
            yield Static("", id="settings-about", markup=False)

    def on_mount(self) -> None:
        self.query_one("#settings-apply").display = False
        self.show_settings()

    def on_screen_resume(self) -> None:
        self.check_drift()

    def on_resize(self, event: events.Resize) -> None:
        self.show_settings()

    def watch_show_secrets(self) -> None:
        self.show_settings()

    def settings_changed(self, settings: Settings) -> None:
        self.show_settings()
        self.check_drift()

    def show_settings(self) -> None:
        settings = self.settings
        self.query_one("#settings-file", Static).update(
            f"{display_path(settings.env_file)}  ·  Enter edits  ·  a applies  ·  "
            f"s {'hides' if self.show_secrets else 'shows'} secrets"
        )
        problems = self.query_one("#settings-problems", Static)
        problems.update(problems_text(settings))
        problems.display = bool(settings.problems)

        bad = {problem.key for problem in settings.problems}
        narrow = self.size.width < 100
        value_width = 26 if narrow else VALUE_WIDTH
        key_width = KEY_WIDTH
        about_width = max(16, self.size.width - key_width - value_width - 10)
        table = self.query_one(SettingsTable)
        for column, width in (("key", key_width), ("value", value_width)):
            table.columns[ColumnKey(column)].width = width  # 80 columns: room for About
        selected = self.selected_key
        table.clear()
        for group, rows in grouped_rows(settings, show_secrets=self.show_secrets):
            table.add_row(Text(group, style="bold"), Text(""), Text(""), key=GROUP_ROW + group)
            for key, value, is_default, about in rows:
                key_text = Text("  " + clip(key, key_width - 2))
                if key in bad:
                    key_text = Text.assemble(("✗ ", "bold"), clip(key, key_width - 2))
                value_text = Text(clip(value, value_width - (10 if is_default else 0)))
                if is_default:
                    value_text.append("  default", style="dim italic")
                table.add_row(key_text, value_text, Text(clip(about, about_width)), key=key)
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected))
        else:
            table.move_cursor(row=min(1, table.row_count - 1))  # the first key, not a group
        self.show_about(self.selected_key)

    @property
    def selected_key(self) -> str | None:
        table = self.query_one(SettingsTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        key = row_key.value
        return None if key is None or key.startswith(GROUP_ROW) else key

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value
        self.show_about(None if key is None or key.startswith(GROUP_ROW) else key)

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

    # --- drift and apply ----------------------------------------------------------------

    def check_drift(self) -> None:
        if self.is_current and self.llm_app.stack_operation is None:
            self.ask_drift(self.llm_app.engine)

    @work(thread=True, exclusive=True, exit_on_error=False, group="settings-drift")
    def ask_drift(self, engine: StackEngine) -> None:
        try:
            statuses = engine.status()
        except Exception:  # no engine: nothing runs that could differ; the Dashboard says why
            statuses = []
        self.post_message(self.Drift(statuses))

    def on_settings_screen_drift(self, message: Drift) -> None:
        self.statuses = message.statuses
        bar = self.query_one("#settings-apply", Static)
        text = drift_text(message.statuses)
        bar.display = text is not None
        if text is not None:
            bar.update(text)

    def action_apply(self) -> None:
        drifted = [s.role for s in self.statuses or [] if s.state != "missing" and s.drift]
        if not drifted:
            running = any(s.state == "running" for s in self.statuses or [])
            self.notify(
                "The running containers already match .env."
                if running
                else "The stack is not running: it starts with these settings (u on the "
                "Dashboard).",
                title="Nothing to apply",
                markup=False,
            )
            return
        what = f"applying settings to {', '.join(drifted)}"
        if not self.llm_app.begin_stack_operation(what):
            return
        self._progress.take()
        self.query_one("#settings-apply").display = False
        self.query_one(OperationPanel).start(f"Applying settings: recreating {', '.join(drifted)}")
        self.apply(self.llm_app.engine, self.llm_app.cancel_token())

    @work(thread=True, exclusive=True, exit_on_error=False, group="settings-apply")
    def apply(self, engine: StackEngine, cancel: CancelToken) -> None:
        result = engine.up(progress=self._progress.put_one, cancel=cancel)
        self.post_message(self.Applied(result))

    def on_settings_screen_apply_progress(self, message: ApplyProgress) -> None:
        self.query_one(OperationPanel).add(self._progress.take())

    def on_settings_screen_applied(self, message: Applied) -> None:
        result = message.result
        panel = self.query_one(OperationPanel)
        panel.add(self._progress.take())
        done = [*result.recreated, *result.created]
        summary = f"recreated {', '.join(done) or 'nothing'}"
        if result.kept:
            summary += f"; kept {', '.join(result.kept)} running"
        panel.finish(True, f"Applied: {summary}")
        self.notify(f"Applied: {summary}", title="Settings applied", markup=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group != "settings-apply" or not worker.is_finished:
            return
        if event.state is WorkerState.ERROR:
            error = worker.error
            text = error.message if isinstance(error, LlmTuiError) else f"{error}"
            panel = self.query_one(OperationPanel)
            panel.add(self._progress.take())
            panel.finish(False, text.splitlines()[0] if text else "failed")
            self.llm_app.report_worker_error(worker, title="Could not apply the settings")
        self.llm_app.end_stack_operation()
        self.check_drift()
