"""Models: the GGUF files in MODELS_DIR; Enter serves the selected one as local-chat."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from stack.settings import Settings
from tui.commands import bindings
from tui.local_models import LocalModel, format_size
from tui.messages import SettingRejected, SettingSaved
from tui.paths import display_path
from tui.screens.base import ModeScreen, start_setting_write


class ModelTable(DataTable[Any]):
    """The local GGUF files; Enter picks the highlighted one."""

    BINDINGS = bindings("models.table")


def roles(model: LocalModel, settings: Settings) -> Text:
    """● chat / ● code for the files the stack is set to serve (plain text, never markup)."""
    served = []
    if model.relative == settings.chat_model:
        served.append("chat")
    if model.relative == settings.code_model:
        served.append("code")
    if not served:
        return Text("")
    return Text("● " + " + ".join(served), style="bold")


def empty_text(settings: Settings) -> str:
    where = display_path(settings.models_dir)
    missing = "" if settings.models_dir.is_dir() else f"{where} does not exist yet.\n\n"
    return (
        f"No GGUF models in {where}.\n\n"
        f"{missing}"
        f"Copy a .gguf file into MODELS_DIR ({where}), then press r to rescan.\n"
        "MODELS_DIR can point at another folder or drive: change it in Settings (5).\n"
        "Hugging Face browsing and downloads come next."
    )


class ModelsScreen(ModeScreen):
    MODE = "models"
    SUB_TITLE = "Models"
    BINDINGS = bindings("models")

    @dataclass
    class Scanned(Message):
        models_dir: Path
        models: list[LocalModel]

    def __init__(self) -> None:
        super().__init__()
        self.models: list[LocalModel] = []

    def compose_body(self) -> ComposeResult:
        with Vertical(id="models"):
            yield Static("", id="models-where", markup=False)
            table = ModelTable(id="models-table", cursor_type="row", zebra_stripes=True)
            table.add_column("Serves", key="role", width=14)
            table.add_column("File", key="file")
            table.add_column("Size", key="size", width=9)
            yield table
            yield Static("", id="models-empty", classes="empty-state", markup=False)

    def on_mount(self) -> None:
        self.set_class(True, "-scanning")
        self.query_one("#models-where", Static).update(
            f"Scanning {display_path(self.settings.models_dir)}…"
        )

    def on_screen_resume(self) -> None:
        self.action_rescan()

    def action_rescan(self) -> None:
        self.scan(self.settings.models_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-scan")
    def scan(self, models_dir: Path) -> None:
        models = self.llm_app.services.scan_models(models_dir)
        if not get_current_worker().is_cancelled:  # a newer scan replaced this one
            self.post_message(self.Scanned(models_dir, models))

    def on_models_screen_scanned(self, message: Scanned) -> None:
        if message.models_dir != self.settings.models_dir:
            return  # MODELS_DIR changed while we scanned; a new scan is on its way
        self.models = message.models
        self.set_class(False, "-scanning")
        self.show_models()

    def show_models(self) -> None:
        settings = self.settings
        where = display_path(settings.models_dir)
        table = self.query_one(ModelTable)
        cursor = table.cursor_row
        table.clear()
        for model in self.models:
            table.add_row(
                roles(model, settings),
                Text(model.relative),
                Text(format_size(model.size), justify="right"),
                key=model.relative,
            )
        if self.models:
            table.move_cursor(row=min(cursor, len(self.models) - 1))
            if self.focused is None:
                table.focus()
            count = f"{len(self.models)} GGUF file{'s' if len(self.models) != 1 else ''}"
            self.query_one("#models-where", Static).update(
                f"{count} in {where}  ·  Enter serves the selected one as local-chat"
            )
        else:
            self.query_one("#models-where", Static).update(f"MODELS_DIR: {where}")
            self.query_one("#models-empty", Static).update(empty_text(settings))
        self.set_class(not self.models, "-empty")

    def action_use_chat_model(self) -> None:
        table = self.query_one(ModelTable)
        if not self.models or table.cursor_row < 0:
            self.notify("No model selected: copy a .gguf into MODELS_DIR first.")
            return
        relative = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        if relative == self.settings.chat_model:
            self.notify(f"{relative} is already the chat model.")
            return
        start_setting_write(self, "CHAT_MODEL", relative)

    def on_setting_saved(self, message: SettingSaved) -> None:
        self.llm_app.update_settings(message.settings)
        self.notify(
            f"CHAT_MODEL = {message.value}. It is served as local-chat when the stack starts.",
            title="Chat model set",
            markup=False,
        )

    def on_setting_rejected(self, message: SettingRejected) -> None:
        self.notify(
            "\n".join(message.problems),
            title=f"{message.key} not changed",
            severity="error",
            markup=False,
        )

    def settings_changed(self, settings: Settings) -> None:
        if self.models:
            self.show_models()  # the ● markers, at once
        self.action_rescan()  # MODELS_DIR may have changed

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "use_chat_model":
            return bool(self.models)
        return True
