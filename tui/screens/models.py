"""Models: the GGUF files in MODELS_DIR with quant, size and VRAM fit; Enter serves one.

Enter (local-chat) and c (local-code) swap the running stack to the selected model: only
that inference container is recreated and the gateway keeps its aliases, so IDEs need no
change. With the stack stopped they just set CHAT_MODEL / CODE_MODEL for the next start.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState, get_current_worker

from stack.cancel import CancelToken
from stack.gpu import FreeVram
from stack.models.fit import FitEstimate, Verdict, estimate_for_settings
from stack.models.library import LocalModel
from stack.models.tune_stack import free_for_a_model
from stack.settings import Settings
from stack.units import format_size
from tui.commands import bindings
from tui.formatting import format_context, format_params
from tui.mailbox import Mailbox
from tui.paths import display_path
from tui.screens.base import ModeScreen
from tui.services import StackEngine

if TYPE_CHECKING:
    from tui.screens.tune import Tuned

ROLE_KEYS = {"chat": "CHAT_MODEL", "code": "CODE_MODEL"}
FIT_MARKS = {
    Verdict.FITS: "✓ fits",
    Verdict.PARTIAL: "◐ {layers}",
    Verdict.NO_FIT: "✗ too big",
    Verdict.UNKNOWN: "?",
}


class ModelTable(DataTable[Any]):
    """The local GGUF models; Enter serves the highlighted one as local-chat, c as local-code."""

    BINDINGS = bindings("models.table")


@dataclass(frozen=True)
class ModelRow:
    model: LocalModel
    fit: FitEstimate | None  # None: broken, or the header lacks what the estimate needs


def fit_of(model: LocalModel, settings: Settings, free: int | None) -> FitEstimate | None:
    if model.header is None or model.broken:
        return None
    return estimate_for_settings(model.header, settings, free_vram=free)


def roles_text(model: LocalModel) -> Text:
    """● chat / ● code for the files the stack is set to serve (plain text, never markup)."""
    served = [name for name, on in (("chat", model.is_chat), ("code", model.is_code)) if on]
    return Text("● " + "+".join(served), style="bold") if served else Text("")


def fit_text(row: ModelRow, colours: dict[Verdict, str]) -> Text:
    if row.model.broken:
        return Text("✗ broken", style="dim")
    if row.fit is None:
        return Text("?", style="dim")
    layers = f"{row.fit.gpu_layers}/{row.fit.total_layers} layers"
    mark = FIT_MARKS[row.fit.verdict].format(layers=layers)
    return Text(mark, style=colours.get(row.fit.verdict, "dim"))


def table_cells(row: ModelRow, colours: dict[Verdict, str]) -> tuple[Text, ...]:
    model, header = row.model, row.model.header
    dim = "dim" if model.broken else ""
    if header is None or model.broken:
        quant = params = context = "—"
    else:
        quant, params = header.quant, format_params(header.parameter_count)
        context = format_context(header.context_length)
    return (
        roles_text(model),
        Text(model.relative_path, style=dim),
        Text(quant, style=dim),
        Text(params, style=dim, justify="right"),
        Text(format_size(model.size), style=dim, justify="right"),
        Text(context, style=dim, justify="right"),
        fit_text(row, colours),
    )


def detail_text(row: ModelRow, memory: FreeVram) -> Content:
    """The highlighted model in a sentence: what it is, and the fit in numbers."""
    model, header = row.model, row.model.header
    if model.broken:
        return Content.assemble(("✗ cannot be served: ", "bold $text-error"), model.broken)
    about = []
    if header is not None:
        about = [header.name or model.name, header.architecture, f"{header.n_layers} layers"]
    parts: list[Content | str | tuple[str, str]] = [(" · ".join(a for a in about if a), "bold")]
    fit = row.fit
    if fit is not None:
        needs = f"needs ~{format_size(fit.total_bytes)} of VRAM at ctx {fit.ctx}"
        if fit.free_vram is None:
            parts.append(f" — {needs} (no GPU reading to compare with)")
        else:
            parts.append(f" — {fit.summary}: {needs}, {format_size(fit.free_vram)} free")
            if fit.max_ctx_that_fits:
                parts.append(f" (largest context that fits: {fit.max_ctx_that_fits})")
    return Content.assemble(*parts)


def models_where(settings: Settings) -> str:
    """MODELS_DIR, or a remote engine's models ("the volume llm-tui-models on gpu-box")."""
    if not settings.engine_remote:
        return display_path(settings.models_dir)
    from stack.engine.endpoint import resolve_endpoint
    from stack.engine.helper import models_place

    return models_place(settings, resolve_endpoint())


def empty_text(settings: Settings) -> str:
    where = models_where(settings)
    here = settings.engine_remote or settings.models_dir.is_dir()
    missing = "" if here else f"{where} does not exist yet.\n\n"
    return (
        f"No GGUF models in {where}.\n\n"
        f"{missing}"
        f"Copy a .gguf file into MODELS_DIR ({where}), then press r to rescan.\n"
        "MODELS_DIR can point at another folder or drive: change it in Settings (5).\n"
        "Or press h to search Hugging Face and download one."
    )


def stack_is_running(engine: StackEngine) -> bool:
    """Whether a swap applies (something of the stack runs); no engine counts as no."""
    try:
        return any(status.state == "running" for status in engine.status())
    except Exception:
        return False


class ModelsScreen(ModeScreen):
    CSS_PATH = "models.tcss"  # loaded when it first shows
    MODE = "models"
    SUB_TITLE = "Models"
    BINDINGS = bindings("models")
    SELF_REPORTED: ClassVar[frozenset[str]] = frozenset({"models-serve"})

    @dataclass
    class Scanned(Message):
        models_dir: Path
        rows: list[ModelRow]
        memory: FreeVram

    @dataclass
    class Served(Message):
        """``relative`` is now CHAT_MODEL/CODE_MODEL; ``swapped``: the stack serves it too."""

        relative: str
        role: str
        settings: Settings
        swapped: bool

    class ServeProgress(Message):
        """Swap progress lines wait in the mailbox."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[ModelRow] = []
        self.memory = FreeVram(None, "")
        # Only the newest line shows: the rest may go.
        self._progress: Mailbox[str] = Mailbox(
            self, self.ServeProgress, compact=lambda lines: lines[-1:]
        )
        self._serving = ""
        self._tune_after_scan = False

    def compose_body(self) -> ComposeResult:
        with Vertical(id="models"):
            yield Static("", id="models-where", markup=False)
            table = ModelTable(id="models-table", cursor_type="row", zebra_stripes=True)
            table.add_column("Serves", key="role", width=11)
            table.add_column("File", key="file")
            table.add_column("Quant", key="quant", width=8)
            table.add_column("Params", key="params", width=6)
            table.add_column("Size", key="size", width=9)
            table.add_column("Context", key="context", width=7)
            table.add_column("Fit", key="fit", width=16)
            yield table
            yield Static("", id="models-detail", markup=False)
            yield Static("", id="models-status", markup=False)
            yield Static("", id="models-empty", classes="empty-state", markup=False)

    def on_mount(self) -> None:
        self.set_class(True, "-scanning")
        self.query_one("#models-status").display = False
        self.query_one("#models-where", Static).update(f"Scanning {models_where(self.settings)}…")

    def on_screen_resume(self) -> None:
        self.action_rescan()

    def action_tune_model(self) -> None:
        """Open Tune for the selected model (the dialog measures, proposes and applies)."""
        from tui.screens.tune import TuneScreen  # loaded on first use, not at startup

        row = self.selected
        if row is None and self.has_class("-scanning"):
            self._tune_after_scan = True  # from the palette, before the first scan ended
            return
        if row is None or row.model.header is None or row.model.broken:
            self.notify("Select a model that can be served first.", markup=False)
            return
        dialog = TuneScreen(row.model.relative_path, row.model.header)
        self.app.push_screen(dialog, self.tuned)

    def tuned(self, result: Tuned | None) -> None:
        if result is None:
            return
        self.llm_app.update_settings(result.settings)
        if result.cancelled:
            message = ".env has the tuned values; the stack was not updated: u on the Dashboard"
        elif result.applied:
            message = "Tuned and applied: inference was recreated, the gateway kept running."
        else:
            message = "Tuned: .env has the new values; they apply when the stack starts."
        self.notify(message, title="Tune", markup=False)

    def action_open_hub(self) -> None:
        from tui.screens.hub import open_hub  # loaded on first use, not at startup

        open_hub(self.app)

    def action_rescan(self) -> None:
        self.scan(self.settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-scan")
    def scan(self, settings: Settings) -> None:
        services = self.llm_app.services
        models = services.scan_models(settings)
        memory = free_for_a_model(self.llm_app.engine, services.read_gpus)
        rows = [ModelRow(model, fit_of(model, settings, memory.free)) for model in models]
        if not get_current_worker().is_cancelled:  # a newer scan replaced this one
            self.post_message(self.Scanned(settings.models_dir, rows, memory))

    def on_models_screen_scanned(self, message: Scanned) -> None:
        if message.models_dir != self.settings.models_dir:
            return  # MODELS_DIR changed while we scanned; a new scan is on its way
        self.rows = message.rows
        self.memory = message.memory
        self.set_class(False, "-scanning")
        self.show_models()
        if self._tune_after_scan:
            self._tune_after_scan = False
            self.action_tune_model()

    def show_models(self) -> None:
        settings = self.settings
        where = models_where(settings)
        table = self.query_one(ModelTable)
        cursor = table.cursor_row
        table.clear()
        theme = self.app.current_theme
        # Rich styles in the table: the theme's own colours, so every theme reads right.
        colours = {
            Verdict.FITS: theme.success or "",
            Verdict.PARTIAL: theme.warning or "",
            Verdict.NO_FIT: theme.error or "",
        }
        for row in self.rows:
            table.add_row(*table_cells(row, colours), key=row.model.relative_path)
        if self.rows:
            table.move_cursor(row=min(cursor, len(self.rows) - 1))
            if self.focused is None:
                table.focus()
            count = f"{len(self.rows)} model{'s' if len(self.rows) != 1 else ''}"
            vram = self.memory.note or "no GPU reading"
            self.query_one("#models-where", Static).update(f"{count} in {where}  ·  {vram}")
        else:
            self.query_one("#models-where", Static).update(f"MODELS_DIR: {where}")
            self.query_one("#models-empty", Static).update(empty_text(settings))
        self.set_class(not self.rows, "-empty")
        # The serve keys show only with rows (check_action): the footer must hear of it
        # now, not at the next focus change, which may have come before the rows.
        self.refresh_bindings()
        self.show_detail()

    @property
    def selected(self) -> ModelRow | None:
        table = self.query_one(ModelTable)
        if not self.rows or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((row for row in self.rows if row.model.relative_path == key), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def show_detail(self) -> None:
        row = self.selected
        detail = self.query_one("#models-detail", Static)
        detail.update(detail_text(row, self.memory) if row else "")

    # --- serving ------------------------------------------------------------------------

    def action_use_chat_model(self) -> None:
        self.use_model("chat")

    def action_use_code_model(self) -> None:
        self.use_model("code")

    def use_model(self, role: str) -> None:
        row = self.selected
        if row is None:
            self.notify("No model selected: copy a .gguf into MODELS_DIR first.")
            return
        model = row.model
        if model.broken:
            self.notify(
                f"{model.relative_path} cannot be served: {model.broken}",
                title="Broken model",
                severity="error",
                markup=False,
            )
            return
        if (model.is_chat and role == "chat") or (model.is_code and role == "code"):
            self.notify(f"{model.relative_path} is already the {role} model.", markup=False)
            return
        self.serve_path(model.relative_path, role)

    def serve_path(self, relative: str, role: str) -> None:
        """Serve ``relative`` as local-``role``: a swap when the stack runs, else set .env.

        Every place that picks a model (this table, a finished download) comes here, so
        what runs is what the settings say.
        """
        what = f"serving {relative} as local-{role}"
        if not self.llm_app.begin_stack_operation(what):
            return
        self._serving = what
        self._progress.take()
        self.show_progress("checking the stack")
        cancel = self.llm_app.cancel_token()
        self.serve(self.llm_app.engine, self.settings, relative, role, cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="models-serve")
    def serve(
        self, engine: StackEngine, settings: Settings, relative: str, role: str, cancel: CancelToken
    ) -> None:
        if stack_is_running(engine):
            engine.swap(relative, role, progress=self._progress.put_one, cancel=cancel)
            self.post_message(self.Served(relative, role, engine.settings, swapped=True))
        else:
            new = self.llm_app.services.set_setting(settings, ROLE_KEYS[role], relative)
            self.post_message(self.Served(relative, role, new, swapped=False))

    def on_models_screen_serve_progress(self, message: ServeProgress) -> None:
        lines = self._progress.take()
        if lines and self._serving:
            self.show_progress(lines[-1])

    def show_progress(self, line: str) -> None:
        status = self.query_one("#models-status", Static)
        status.update(f"◐ {self._serving[:1].upper()}{self._serving[1:]}…  {line}")
        status.display = True

    def on_models_screen_served(self, message: Served) -> None:
        self.llm_app.update_settings(message.settings)
        alias = f"local-{message.role}"
        if message.swapped:
            self.notify(
                f"Now serving {message.relative} as {alias}. The gateway kept running: "
                "IDEs need no change.",
                title="Model swapped",
                markup=False,
            )
        else:
            key = ROLE_KEYS[message.role]
            self.notify(
                f"{key} = {message.relative}. It is served as {alias} when the stack starts "
                "(u on the Dashboard).",
                title=f"{message.role.capitalize()} model set",
                markup=False,
            )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "models-serve" or not event.worker.is_finished:
            return
        self._serving = ""
        self.query_one("#models-status").display = False
        self.llm_app.end_stack_operation()
        if event.state is WorkerState.ERROR:
            self.llm_app.report_worker_error(event.worker, title="Could not serve the model")
            self.action_rescan()

    def settings_changed(self, settings: Settings) -> None:
        self.action_rescan()  # the ● marks, and MODELS_DIR may have changed

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("use_chat_model", "use_code_model"):
            return bool(self.rows)
        return True
