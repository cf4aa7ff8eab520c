"""Where clients reach the gateway, with which key, and how many tokens a request may hold."""

from __future__ import annotations

from dataclasses import dataclass

from stack.engine.gateway import CHAT_ALIAS, CODE_ALIAS
from stack.models.fit import slot_context
from stack.settings import Settings, mask

NO_KEY = "no-key"  # LiteLLM without a master key accepts any key


def shown_key(settings: Settings, *, reveal: bool = False) -> str:
    """The key clients use, as a screen shows it: masked unless ``reveal``; without
    LITELLM_MASTER_KEY the placeholder `NO_KEY` as it is (no secret: any key works)."""
    key = settings.litellm_master_key
    if not key:
        return NO_KEY
    return key if reveal else mask("LITELLM_MASTER_KEY", key)


@dataclass(frozen=True)
class Connection:
    """What every client configuration is filled with."""

    openai_url: str  # …/v1: OpenAI-compatible clients
    key: str
    window: int  # tokens one request holds (prompt + answer): one llama-server slot
    parallel: int  # slots: requests answered at once
    model: str = CHAT_ALIAS
    code_model: str = CODE_ALIAS

    @property
    def anthropic_url(self) -> str:
        """Anthropic clients add ``/v1/messages`` themselves: the URL without ``/v1``."""
        return self.openai_url.rstrip("/").removesuffix("/v1")


def served_window(settings: Settings) -> int:
    """Tokens one request can hold: CTX_SIZE shared by PARALLEL slots, as llama.cpp pads
    it, capped at CHAT_MODEL's training context (llama-server caps each slot there)."""
    return slot_context(settings.ctx_size, settings.parallel, _training_context(settings))


def _training_context(settings: Settings) -> int:
    if not settings.chat_model:
        return 0
    from stack.models.gguf import read_header
    from stack.models.header import GgufError

    try:
        return read_header(settings.models_dir / settings.chat_model).context_length
    except (GgufError, OSError):
        return 0


def connection_for(settings: Settings, *, key: str | None = None) -> Connection:
    """The gateway of ``settings``; ``key`` replaces the real one (e.g. masked for display)."""
    real = settings.litellm_master_key or NO_KEY
    return Connection(
        openai_url=settings.gateway_url,
        key=real if key is None else key,
        window=served_window(settings),
        parallel=settings.parallel,
    )
