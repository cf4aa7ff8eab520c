"""Palette entries made from what exists now: each local model, each service.

    Serve <model> as chat / as code     (a swap when the stack runs, else .env)
    Restart <service>                   (the Dashboard's restart, for that service)
    Logs of <service> / of all services
    Tune settings for <model>           (when the Models screen offers tuning)

The models come from a scan of MODELS_DIR made when the palette opens, in a thread (a
slow or network drive never holds the palette up); the services from the settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from stack.models.library import LocalModel
    from tui.app import LlmTuiApp

Entry = tuple[str, str, Callable[[], Awaitable[None]]]  # title, help, what it runs


async def in_mode(app: LlmTuiApp, mode: str, method: str, *args: Any) -> None:
    """Switch to ``mode`` and call its screen's ``method(*args)`` (if it has one)."""
    await app.switch_mode(mode)
    call = getattr(app.screen, method, None)
    if call is not None:
        result = call(*args)
        if asyncio.iscoroutine(result):
            await result


class StackProvider(Provider):
    """Serve each local model, restart each service, open each service's logs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._models: list[LocalModel] = []

    @property
    def llm_app(self) -> LlmTuiApp:
        return cast("LlmTuiApp", self.app)

    async def startup(self) -> None:
        app = self.llm_app
        try:
            self._models = await asyncio.to_thread(app.services.scan_models, app.settings)
        except Exception:  # an unreadable MODELS_DIR: the Models screen says why
            self._models = []

    def _entries(self) -> Iterator[Entry]:
        from tui.widgets.service_card import service_roles

        app = self.llm_app
        tune = _has_tune(app)
        for model in self._models:
            if model.broken:
                continue
            name = model.relative_path
            for role in ("chat", "code"):
                if (role == "chat" and model.is_chat) or (role == "code" and model.is_code):
                    continue
                yield (
                    f"Serve {name} as {role}",
                    f"local-{role} answers from {name} (the gateway keeps running)",
                    partial(in_mode, app, "models", "serve_path", name, role),
                )
            if tune:
                yield (
                    f"Tune settings for {name}",
                    "Propose PARALLEL, CTX_SIZE, KV_CACHE_TYPE and GPU_LAYERS for this model",
                    partial(in_mode, app, "models", "tune_model", name),
                )
        roles = service_roles(app.settings)
        for role in roles:
            yield (
                f"Restart {role}",
                f"Restart the {role} container and wait until it answers",
                partial(in_mode, app, "dashboard", "restart_role", role),
            )
        for role in roles:
            yield (
                f"Logs of {role}",
                f"Open the Logs screen on {role}",
                partial(in_mode, app, "logs", "select_service", role),
            )
        yield (
            "Logs of all services",
            "Every service's lines in one pane, in the order they were written",
            partial(in_mode, app, "logs", "select_service", "all"),
        )

    async def discover(self) -> Hits:
        for title, help_text, run in self._entries():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)


def _has_tune(app: LlmTuiApp) -> bool:
    """Whether the Models screen can tune settings for a model it is given."""
    import importlib

    try:
        module = importlib.import_module("tui.screens.models")
    except ImportError:  # pragma: no cover - the screen always exists
        return False
    return callable(getattr(module.ModelsScreen, "tune_model", None))
