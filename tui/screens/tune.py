"""Tune: PARALLEL, CTX_SIZE, KV_CACHE_TYPE and GPU_LAYERS for one model, picked by use.

Opened from the Models screen (t) or the palette. A worker measures what the tuning may
use (NVML, plus what the running llama-server holds); each use's proposal is then pure
arithmetic, shown with why and the diff as the highlight moves. ``y`` writes it and, when
the stack runs, recreates inference in a worker that quitting (or Esc) cancels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from stack.cancel import Cancelled, CancelToken
from stack.errors import LlmTuiError
from stack.gpu import GpuSample
from stack.models.header import GgufHeader
from stack.models.tune import USES, Tuning, describe, tune_settings
from stack.models.tune_stack import FreeForTuning, apply_tuning, free_for_tuning, stack_statuses
from stack.settings import Settings
from tui.commands import bindings
from tui.mailbox import Mailbox
from tui.screens.base import forward_worker_error
from tui.services import StackEngine
from tui.widgets.footer import Footer

if TYPE_CHECKING:
    from tui.app import LlmTuiApp

USE_LABELS = {
    "agent": "agent: one slot, the largest window (Claude Code, Continue's agent)",
    "shared": "shared: two slots of up to 32k (an agent and a chat)",
    "chat": "chat: several slots, fewer tokens each",
}


@dataclass(frozen=True)
class Tuned:
    """What the dialog returns: the settings written, and whether the stack took them."""

    settings: Settings
    applied: bool  # the stack was running and inference was recreated
    cancelled: bool = False  # written, but the recreate was stopped


class TuneScreen(ModalScreen[Tuned | None]):
    """Pick a use with ↑/↓; ``y`` applies the proposal shown, ``n``/Esc closes."""

    BINDINGS = bindings("tune")

    @dataclass
    class Measured(Message):
        free: FreeForTuning

    @dataclass
    class Written(Message):
        settings: Settings

    @dataclass
    class Applied(Message):
        settings: Settings
        running: bool

    class Progress(Message):
        """Apply progress lines wait in the mailbox."""

    def __init__(self, name: str, header: GgufHeader, *, use: str = "agent") -> None:
        super().__init__()
        self.model_name = name
        self.header = header
        self.use = use
        self.free: FreeForTuning | None = None
        self.tuning: Tuning | None = None
        self.cancel: CancelToken | None = None
        self.written: Settings | None = None
        self._claimed = False  # this dialog holds the app's stack-operation slot
        self._progress: Mailbox[str] = Mailbox(self, self.Progress, compact=lambda x: x[-1:])

    @property
    def llm_app(self) -> LlmTuiApp:
        return cast("LlmTuiApp", self.app)

    @property
    def settings(self) -> Settings:
        return self.llm_app.settings

    def compose(self) -> ComposeResult:
        with Vertical(id="tune-dialog", classes="dialog") as dialog:
            dialog.border_title = f"Tune for {self.model_name}"
            options = (Option(Content(USE_LABELS[use]), id=use) for use in USES)
            yield OptionList(*options, id="tune-uses")
            yield Static("Measuring free VRAM…", id="tune-free", markup=False)
            yield Static("", id="tune-proposal", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply (y)", variant="primary", id="tune-apply", disabled=True)
                yield Button("Cancel (n)", id="tune-cancel")
        yield Footer()

    def on_mount(self) -> None:
        uses = self.query_one(OptionList)
        uses.highlighted = USES.index(self.use) if self.use in USES else 0
        uses.focus()
        self.measure(self.llm_app.engine, self.llm_app.services.read_gpus)

    @work(thread=True, exclusive=True, exit_on_error=False, group="tune-measure")
    def measure(self, engine: StackEngine, read_gpus: Callable[[], list[GpuSample]]) -> None:
        free = free_for_tuning(None, stack_statuses(engine), read_gpus=read_gpus)
        self.post_message(self.Measured(free))

    def on_tune_screen_measured(self, message: Measured) -> None:
        self.free = message.free
        self.query_one("#tune-free", Static).update(f"Free VRAM: {message.free.note}")
        self.propose()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self.use = event.option.id or "agent"
        self.propose()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_apply()

    def propose(self) -> None:
        if self.free is None:
            return
        proposal = self.query_one("#tune-proposal", Static)
        try:
            self.tuning = tune_settings(
                self.settings, self.header, self.use, free_vram=self.free.free,
                file=self.model_name,
            )  # fmt: skip
        except LlmTuiError as error:
            self.tuning = None
            proposal.update(error.message + (f"\nFix: {error.fix}" if error.fix else ""))
        else:
            lines = describe(self.tuning, self.settings)
            if not self.changes():
                lines.append("Already tuned for this use: nothing to change.")
            proposal.update("\n".join(lines))
        self.query_one("#tune-apply", Button).disabled = not self.changes()

    def changes(self) -> dict[str, str]:
        if self.tuning is None:
            return {}
        return {key: new for key, (_, new) in self.tuning.changes(self.settings).items()}

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "tune-apply":
            self.action_apply()
        else:
            self.action_cancel()

    def action_apply(self) -> None:
        changes = self.changes()
        if not changes or self.cancel is not None or self.free is None:
            return
        running = self.free.running
        if running and not self.llm_app.begin_stack_operation(f"tuning for {self.use}"):
            return
        self._claimed = running
        self.cancel = self.llm_app.cancel_token()
        self.query_one("#tune-apply", Button).disabled = True
        self.query_one("#tune-free", Static).update("Writing .env…")
        self.apply(self.settings, changes, running, self.cancel)

    @work(thread=True, exclusive=True, exit_on_error=False, group="tune-apply")
    def apply(
        self, settings: Settings, changes: dict[str, str], running: bool, cancel: CancelToken
    ) -> None:
        services = self.llm_app.services
        new = apply_tuning(
            settings,
            changes,
            write=services.set_settings,
            engine_for=services.make_engine,
            running=running,
            progress=self._progress.put_one,
            cancel=cancel,
            on_written=lambda written: self.post_message(self.Written(written)),
        )
        self.post_message(self.Applied(new, running))

    def on_tune_screen_written(self, message: Written) -> None:
        self.written = message.settings
        if self.free is not None and self.free.running:
            self.query_one("#tune-free", Static).update("◐ Recreating inference…")

    def on_tune_screen_progress(self, message: Progress) -> None:
        lines = self._progress.take()
        if lines and self.cancel is not None:
            self.query_one("#tune-free", Static).update(f"◐ {lines[-1]}")

    def release_operation(self) -> None:
        """Give the stack-operation slot back, once. Here as well as at the worker's end:
        the dialog may be dismissed before the worker's end reaches it (then it never does)."""
        if self._claimed:
            self._claimed = False
            self.llm_app.end_stack_operation()

    def on_tune_screen_applied(self, message: Applied) -> None:
        self.release_operation()
        self.dismiss(Tuned(message.settings, message.running))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "tune-apply" and worker.is_finished:
            self.release_operation()
            self.cancel = None
            if event.state is WorkerState.ERROR:
                if isinstance(worker.error, Cancelled) and self.written is not None:
                    self.dismiss(Tuned(self.written, applied=False, cancelled=True))
                    return
                self.query_one("#tune-free", Static).update("Not applied: see the notification.")
                self.propose()
        forward_worker_error(self, event)

    def action_cancel(self) -> None:
        if self.cancel is not None:
            # The recreate stops; the worker's end closes the dialog with what was written.
            self.cancel.cancel()
            self.query_one("#tune-free", Static).update("Cancelling…")
            return
        self.dismiss(None)
