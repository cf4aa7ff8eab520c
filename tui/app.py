"""The Textual app: seven modes, one command table, settings shared through a signal."""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.css.query import NoMatches
from textual.driver import Driver
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.worker import Worker

from stack.cancel import CancelToken
from stack.errors import LlmTuiError
from stack.settings import Settings
from tui import render_crop, steady_scrollbars, strip_cycles
from tui.commands import APP, COMMANDS, CommandTableProvider, StackProvider, bindings
from tui.gpu_feed import GpuFeed
from tui.keymap import keymap_path, load_keymap
from tui.mailbox import StreamHandle, cancel_soon
from tui.screens.dashboard import DashboardScreen
from tui.services import Services, StackEngine
from tui.widgets import key_order

WORKER_TITLES = {
    "doctor": "Checks failed",
    "models-scan": "Could not list models",
    "settings-write": "Could not save the setting",
    "logs-follow": "Could not follow the logs",
    "chat": "Chat failed",
}

# Actions that make no sense while a dialog is open (it would be left behind, or lost).
BLOCKED_IN_DIALOGS = {"go", "quit", "in_mode"}


def lazy_screen(module: str, name: str) -> Callable[[], Screen[Any]]:
    """A mode whose module is imported when the mode is first shown, not at start-up."""

    def make() -> Screen[Any]:
        screen: Screen[Any] = getattr(importlib.import_module(module), name)()
        return screen

    return make


class LlmTuiApp(App[int]):
    """llm-tui: dashboard, models, logs, chat, settings and connection help."""

    CSS_PATH = "app.tcss"
    TITLE = "llm-tui"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        "dashboard": DashboardScreen,
        "models": lazy_screen("tui.screens.models", "ModelsScreen"),
        "logs": lazy_screen("tui.screens.logs", "LogsScreen"),
        "chat": lazy_screen("tui.screens.chat", "ChatScreen"),
        "settings": lazy_screen("tui.screens.settings", "SettingsScreen"),
        "connect": lazy_screen("tui.screens.connect", "ConnectScreen"),
        "gpu": lazy_screen("tui.screens.gpu", "GpuScreen"),
    }
    COMMANDS = App.COMMANDS | {CommandTableProvider, StackProvider}
    BINDINGS = bindings(APP)

    def __init__(
        self, settings: Settings, services: Services, *, started_at: float | None = None
    ) -> None:
        super().__init__()
        strip_cycles.install()  # drawn lines freed as they go, not by the collector
        render_crop.install()  # a frame draws only the widgets and rows it shows
        steady_scrollbars.install()  # a scroll bar is drawn again only when it looks different
        key_order.install_in_palette()  # keys typed fast into the palette stay in order
        self.settings = settings
        self.services = services
        self.settings_changed: Signal[Settings] = Signal(self, "settings-changed")
        # A stack operation began, whichever screen began it (what it is, as a person says it).
        self.stack_operation_began: Signal[str] = Signal(self, "stack-operation-began")
        self._started_at = time.perf_counter() if started_at is None else started_at
        self._engine: StackEngine | None = None
        # Engines for older settings, left open until the stack operation ends (it may be
        # using one of them); closed then.
        self._retired: list[StackEngine] = []
        # The stack operation (up, down, restart, swap) running now, as a person says it;
        # one at a time, whichever screen started it.
        self.stack_operation: str | None = None
        # Streams workers read (events, logs): all closed at exit, so no thread is left
        # blocked on a socket (the event loop waits for its threads before it ends).
        self._streams: weakref.WeakSet[StreamHandle[Any]] = weakref.WeakSet()
        # Tokens of blocking workers (stack operations, chat answers): all cancelled at
        # exit for the same reason, so quitting never waits for a model to load.
        self._tokens: weakref.WeakSet[CancelToken] = weakref.WeakSet()
        # The one GPU sampler; it ticks only while a GPU view shows.
        self.gpu_feed = GpuFeed(self)
        self._env_seen = env_signature(settings.env_file)

    @property
    def engine(self) -> StackEngine:
        """The engine for the current settings (built here, it connects in a worker)."""
        if self._engine is None or self._engine.settings is not self.settings:
            old, self._engine = self._engine, self.services.make_engine(self.settings)
            if old is not None and old is not self._engine:
                self._retired.append(old)  # its Docker client is closed, not dropped
                if self.stack_operation is None:
                    self._close_retired()
        return self._engine

    def _close_retired(self) -> None:
        engines, self._retired = self._retired, []
        if not engines:
            return

        def close_all() -> None:
            for engine in engines:
                with contextlib.suppress(Exception):  # a client gone already: nothing to do
                    engine.close()

        # A thread of its own: closing a client can wait on a socket another thread reads.
        threading.Thread(target=close_all, name="close-engines", daemon=True).start()

    def begin_stack_operation(self, what: str) -> bool:
        """Claim the one stack-operation slot; False (and a notice) while another runs."""
        if self.stack_operation is not None:
            self.notify(
                f"Wait until {self.stack_operation} has finished.",
                title="Busy",
                severity="warning",
                markup=False,
            )
            return False
        self.stack_operation = what
        self.stack_operation_began.publish(what)
        return True

    def end_stack_operation(self) -> None:
        self.stack_operation = None
        self._close_retired()

    def track_stream(self, handle: StreamHandle[Any]) -> StreamHandle[Any]:
        self._streams.add(handle)
        return handle

    def cancel_token(self) -> CancelToken:
        """A token for one blocking worker: cancelled at exit (or earlier by its screen)."""
        token = CancelToken()
        self._tokens.add(token)
        return token

    def on_unmount(self) -> None:
        self.gpu_feed.close()
        for handle in list(self._streams):
            handle.close()
        cancel_soon(*self._tokens)
        if self._engine is not None:
            self._retired.append(self._engine)
            self._engine = None
        self._close_retired()

    def on_mount(self) -> None:
        self.load_keymap()
        self.switch_mode("dashboard")
        if self.services.first_run_guide and wants_guide(self.settings):
            from tui.screens.guide import open_guide  # its module only when it opens

            open_guide(self)

    def load_keymap(self) -> None:
        """Remap bindings from the user's keymap.toml (README: Keys); problems are said."""
        keymap, problems = load_keymap(keymap_path(), (command.id for command in COMMANDS))
        if keymap:
            self.set_keymap(keymap)
        for problem in problems:
            self.notify(problem, title="Keymap", severity="warning", timeout=10, markup=False)
        # `.env` edited in an editor or with `llm-tui config set` while the app runs: a stat
        # a second notices it (microseconds; the reload itself runs in a worker).
        self._env_seen = env_signature(self.settings.env_file)
        self.set_interval(ENV_WATCH_S, self._check_env, name="env-watch")

    def _check_env(self) -> None:
        seen = env_signature(self.settings.env_file)
        if seen != self._env_seen:
            self._env_seen = seen
            self._reload_env(self.settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="env-reload")
    def _reload_env(self, settings: Settings) -> None:
        fresh = self.services.load_settings(settings.env_file)
        self.call_from_thread(self._env_reloaded, settings, fresh)

    def _env_reloaded(self, before: Settings, fresh: Settings) -> None:
        if self.settings is not before or fresh.values == before.values:
            return  # written by this app meanwhile, or nothing that matters changed
        self.update_settings(fresh)
        changed = sorted(
            key
            for key in {*before.values, *fresh.values}
            if before.values.get(key) != fresh.values.get(key)
        )
        self.notify(
            f"{fresh.env_file.name} changed on disk ({', '.join(changed)}): every screen now "
            "shows the new settings.",
            title="Settings reloaded",
            markup=False,
        )

    def get_driver_class(self) -> type[Driver]:
        """Textual's own driver, but on a POSIX terminal one whose input thread sleeps
        until there is input (`tui.driver`): an idle app costs ~0.2 % of a core less."""
        driver = super().get_driver_class()
        from textual.drivers.linux_driver import LinuxDriver

        if driver is LinuxDriver:
            from tui.driver import QuietLinuxDriver

            return QuietLinuxDriver
        return driver

    def on_ready(self) -> None:
        elapsed = (time.perf_counter() - self._started_at) * 1000
        self.log.info(f"llm-tui ready in {elapsed:.0f} ms")
        calm_gc()

    def update_settings(self, settings: Settings) -> None:
        """`.env` was written: every screen redraws from the new settings."""
        self.settings = settings
        self._env_seen = env_signature(settings.env_file)
        self.settings_changed.publish(settings)

    def action_go(self, mode: str) -> None:
        self.switch_mode(mode)

    async def action_in_mode(self, mode: str, action: str) -> None:
        """Run a screen's action from the palette of another screen: switch there first."""
        await self.switch_mode(mode)
        await self.run_action(action, self.screen)

    def action_exit_now(self) -> None:
        self.exit()

    def action_toggle_help(self) -> None:
        from textual.widgets import HelpPanel  # it pulls in Markdown: not at start-up

        try:
            self.screen.query_one(HelpPanel)
        except NoMatches:
            self.action_show_help_panel()
        else:
            self.action_hide_help_panel()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return not (action in BLOCKED_IN_DIALOGS and isinstance(self.screen, ModalScreen))

    def report_worker_error(self, worker: Worker[Any], title: str | None = None) -> None:
        """The one place worker failures go: a notification that says what to do."""
        error = worker.error
        self.log.error(f"worker {worker.name!r} failed: {error!r}")
        self.notify(
            error_text(error),
            title=title or WORKER_TITLES.get(worker.group, f"{worker.name} failed"),
            severity="error",
            timeout=15,
            markup=False,
        )


ENV_WATCH_S = 1.0


def wants_guide(settings: Settings) -> bool:
    """A first run: no model chosen and none in MODELS_DIR yet."""
    if settings.chat_model:
        return False
    folder = settings.models_dir
    try:
        return not folder.is_dir() or not any(folder.rglob("*.gguf"))
    except OSError:
        return False


def env_signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is written (an atomic write makes a new inode)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def calm_gc() -> None:
    """Fewer, shorter garbage collections: a full one stalled the app 110-220 ms while a
    fast answer streamed (bench/bench_chat.py). What exists at start is frozen (never
    scanned again) and the young generation collected less often."""
    import gc

    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
    gc.enable()  # `llm-tui` starts with collections off (cli.main)


def error_text(error: BaseException | None) -> str:
    """An error as the user reads it: the message, then the fix on its own line."""
    if isinstance(error, LlmTuiError):
        return error.message + (f"\nFix: {error.fix}" if error.fix else "")
    return f"{type(error).__name__}: {error}"
