"""From nothing to a chatting model: the steps `llm-tui quickstart` and the first-run guide share.

checks → the use (IDE agent or chat) → a recommended model for this GPU and disk →
download it → settings tuned for the use → `up` → a first streamed answer → how to connect.
Each step is a function over `Settings`, blocking like the rest of the core: the CLI calls
them in order, the TUI's guide in workers. Nothing here decides for the user; the front
ends ask, or take the recommended choice with ``--yes``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stack.errors import LlmTuiError
from stack.models.recommend import (
    Recommendation,
    free_disk_for,
    load_catalog,
    recommend,
)

if TYPE_CHECKING:
    from stack.doctor import Check
    from stack.hub.jobs import DownloadRequest
    from stack.models.fit import FitEstimate, ModelShape
    from stack.models.tune import Tuning
    from stack.settings import Settings

# A catalog of one's own (a mirror's repos, an offline set): the file, in catalog.toml's format.
CATALOG_VARIABLE = "LLM_TUI_CATALOG"
HELLO = "Say hello in one short sentence."
HELLO_TOKENS = 48


class QuickstartError(LlmTuiError):
    """A step cannot go on; the message says which and how to fix it."""


# The kinds of use the guide offers; tune() knows them by these names.
GUIDE_USES = {
    "agent": "an IDE agent (Claude Code, Continue's agent mode): one long context",
    "chat": "chat (the Chat screen, several people or tabs at once): several slots",
}


def blocking_problems(checks: list[Check]) -> list[Check]:
    """The checks that stop a first run (settings, Docker); GPU and models only warn."""
    from stack.doctor import Status

    return [c for c in checks if c.status is Status.FAIL and c.name in ("settings", "docker")]


def catalog_text() -> str | None:
    path = os.environ.get(CATALOG_VARIABLE)
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise QuickstartError(
            f"cannot read the catalog {path}: {exc.strerror or exc}",
            fix=f"fix the path in {CATALOG_VARIABLE}, or unset it for the built-in catalog",
        ) from None


def recommendations(
    settings: Settings, use: str, free_vram: int | None, *, limit: int = 5
) -> list[Recommendation]:
    """Models for ``use`` on this GPU and disk, the best first, each tuned for the use."""
    from stack.hub.client import hub_from_settings
    from stack.hub.files import RepoFiles
    from stack.hub.remote_header import fetch_repo_shape
    from stack.models.tune import tune_settings

    def shape_of(listing: RepoFiles) -> ModelShape | None:
        return fetch_repo_shape(
            settings.hf_endpoint,
            settings.hub_token,
            listing,
            token_withheld=settings.hub_token_withheld,
        )

    def fit(shape: ModelShape) -> FitEstimate | None:
        try:
            return tune_settings(settings, shape, use, free_vram=free_vram).fit
        except LlmTuiError:
            return None

    text = catalog_text()
    found = recommend(
        hub_from_settings(settings),
        use,
        shape_of=shape_of,
        estimate=fit,
        free_vram=free_vram,
        free_disk=free_disk_for(settings.models_dir),
        catalog=load_catalog(text) if text is not None else None,
        limit=limit,
    )
    if not found:
        raise QuickstartError(
            "no recommended model could be checked on the Hub "
            f"({settings.hf_endpoint or 'https://huggingface.co'})",
            fix="check the network (and HF_ENDPOINT), or download a GGUF yourself in the "
            "Models screen (h) or with `llm-tui pull`",
        )
    return found


@dataclass(frozen=True)
class Planned:
    """What to download for a recommendation, and the file to serve afterwards."""

    request: DownloadRequest
    serve: str  # relative to MODELS_DIR (shard 1 of a split set)
    present: bool  # already downloaded: nothing to fetch


def plan_download(settings: Settings, pick: Recommendation) -> Planned:
    from stack.hub.jobs import DownloadRequest

    entry = pick.entry
    folder = entry.name if entry.is_split else ""
    request = DownloadRequest.for_entry(pick.listing, entry, folder)
    first = Path(entry.first_file.path).name
    serve = f"{folder}/{first}" if folder else first
    present = all((settings.models_dir / folder / Path(f.path).name).is_file() for f in entry.files)
    return Planned(request, serve, present)


def tuned_for(settings: Settings, serve: str, use: str, free_vram: int | None) -> Tuning:
    """The tuned settings for the downloaded file, from its own header."""
    from stack.models.tune import model_header, tune_settings

    header, name = model_header(settings, serve)
    return tune_settings(settings, header, use, free_vram=free_vram, file=name)


def apply_tuning(settings: Settings, tuning: Tuning) -> Settings:
    """Write the tuned values (and CHAT_MODEL) through the settings core."""
    from stack.settings import envfile, set_settings

    changes = {key: value for key, (_, value) in tuning.changes(settings).items()}
    if "CHAT_MODEL" in tuning.values:
        changes["CHAT_MODEL"] = tuning.values["CHAT_MODEL"]
    if not settings.litellm_master_key:
        # A hand-written .env may have none; the gateway refuses to start without one.
        changes["LITELLM_MASTER_KEY"] = envfile.generate_master_key()
    return set_settings(settings, changes) if changes else settings


def chat_url(settings: Settings) -> str:
    """The gateway as this machine reaches it (localhost can resolve to ::1 first)."""
    return settings.gateway_url.replace("localhost", "127.0.0.1")
