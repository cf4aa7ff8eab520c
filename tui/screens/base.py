"""What every mode screen shares: header, mode bar, footer, settings updates, worker errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import events
from textual._context import active_app
from textual.app import ComposeResult
from textual.dom import DOMNode
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header
from textual.worker import Worker, WorkerState

from stack.errors import SettingsError
from stack.settings import Settings
from tui.messages import SettingRejected, SettingSaved
from tui.widgets.footer import Footer
from tui.widgets.mode_bar import ModeBar

if TYPE_CHECKING:
    from tui.app import LlmTuiApp


def forward_worker_error(
    node: DOMNode, event: Worker.StateChanged, handled: frozenset[str] = frozenset()
) -> None:
    """Worker state changes don't bubble: hand failures to the app's one handler.

    Groups in ``handled`` are the screen's own to report (e.g. a poll that shows its
    failure in place, instead of a notification every few seconds).
    """
    if event.state is WorkerState.ERROR and event.worker.group not in handled:
        cast("LlmTuiApp", node.app).report_worker_error(event.worker)


def start_setting_write(node: DOMNode, key: str, value: str) -> Worker[None]:
    """Validate and write one `.env` key in a thread; ``node`` gets SettingSaved/Rejected."""
    app = cast("LlmTuiApp", node.app)
    settings, set_setting = app.settings, app.services.set_setting

    def write() -> None:
        try:
            new = set_setting(settings, key, value)
        except SettingsError as error:
            node.post_message(SettingRejected(key, value, list(error.problems)))
        else:
            node.post_message(SettingSaved(key, value, new))

    return node.run_worker(
        write,
        name=f"save {key}",
        group="settings-write",
        thread=True,
        exclusive=True,
        exit_on_error=False,
    )


class ModeScreen(Screen[None]):
    """A mode's screen: subclasses set MODE and SUB_TITLE and implement `compose_body`."""

    MODE: ClassVar[str] = ""
    # Worker groups whose failures the screen reports itself (see forward_worker_error).
    SELF_REPORTED: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self._settings_stale = False
        # A new screen counts as having missed every CSS change, so Textual re-parses the
        # whole stylesheet, twice, when a mode first shows: ~1/3 of the dashboard's start-
        # up. Nothing changed (the app's one stylesheet is parsed already, and a theme
        # change refreshes every screen anyway), so it starts up to date.
        app = active_app.get(None)  # None: made before the app runs (installed later)
        if app is not None:
            self._css_update_count = app._css_update_count
        self._resumed = False

    def post_message(self, message: Message) -> bool:
        # Textual's switch to a mode not shown before resumes its new screen twice, back to
        # back: every widget styled again and each resume handler run twice for nothing.
        # Any other resume follows a suspend (another screen or a dialog came on top).
        if isinstance(message, events.ScreenResume):
            if self._resumed:
                return True
            self._resumed = True
        elif isinstance(message, events.ScreenSuspend):
            self._resumed = False
        return super().post_message(message)

    @property
    def llm_app(self) -> LlmTuiApp:
        return cast("LlmTuiApp", self.app)

    @property
    def settings(self) -> Settings:
        return self.llm_app.settings

    def compose(self) -> ComposeResult:
        yield Header()
        yield ModeBar(self.MODE, id="mode-bar")
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    # Textual calls these handlers for every class in the MRO: subclasses define their own
    # on_mount / on_screen_resume without calling super().
    def on_mount(self) -> None:
        self.llm_app.settings_changed.subscribe(self, self._on_settings_published)

    def on_screen_resume(self) -> None:
        if self._settings_stale:
            self._settings_stale = False
            self.settings_changed(self.settings)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        forward_worker_error(self, event, self.SELF_REPORTED)

    def _on_settings_published(self, settings: Settings) -> None:
        # Hidden screens don't redraw (or start workers); they catch up when shown again.
        if self.is_current:
            self.settings_changed(settings)
        else:
            self._settings_stale = True

    def settings_changed(self, settings: Settings) -> None:
        """`.env` changed (from any screen) while this screen shows; redraw what depends on it."""
