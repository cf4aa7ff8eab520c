"""Why the gateway did not answer, said so a person can act on it.

Shapes read from the real servers (llama-server 0c1e570, LiteLLM 1.106.2 without a
database): a wrong key is 400 ``no_db_connection`` (no database to look keys up in) and a
missing one 401; an unknown model is 400 "Invalid model name passed in model=…"; a prompt
longer than a slot is llama-server's 400 ``exceed_context_size_error`` with
``n_prompt_tokens`` / ``n_ctx``, which LiteLLM passes on as text ("request (820 tokens)
exceeds the available context size (256 tokens)"); inference gone is LiteLLM's 500
"Connection error." after its retries.
"""

from __future__ import annotations

import json
import re
from typing import Any

from stack.errors import LlmTuiError

KEY_FIX = (
    "use LITELLM_MASTER_KEY from .env (`llm-tui config get LITELLM_MASTER_KEY --show-secrets`)"
)
NO_KEY_FIX = "set LITELLM_MASTER_KEY in .env (Settings, 5)"
MODELS_FIX = "use local-chat or local-code (the gateway's aliases)"
CONTEXT_FIX = (
    "start a new conversation (ctrl+n), or give each slot more context: "
    "`llm-tui tune` finds a CTX_SIZE / PARALLEL that fits your GPU"
)
_OVERFLOW = re.compile(
    r"request \((\d+) tokens\) exceeds the available context size \((\d+) tokens\)"
)


class ChatError(LlmTuiError):
    """The gateway could not answer; the message says why."""


class KeyRefused(ChatError):
    """The gateway refused the key sent (wrong) or the lack of one (missing)."""


class ContextOverflow(ChatError):
    """The conversation no longer fits in one slot of llama-server's context."""

    def __init__(self, prompt_tokens: int | None, slot_tokens: int | None) -> None:
        self.prompt_tokens = prompt_tokens
        self.slot_tokens = slot_tokens
        if prompt_tokens and slot_tokens:
            message = f"this conversation is {prompt_tokens:,} tokens; a slot holds {slot_tokens:,}"
        else:
            message = "this conversation is longer than a slot of the model's context"
        super().__init__(message, fix=CONTEXT_FIX)


def explain_status(
    status: int, text: str, base_url: str = "", *, key_sent: bool = True
) -> ChatError:
    """An HTTP error answer (status and body) as one clear `ChatError`.

    ``key_sent``: whether the request carried a key (an empty one is no header at all).
    """
    error = _error_object(text)
    kind = str(error.get("type") or "") if error else ""
    message = str(error.get("message") or "") if error else text
    overflow = context_overflow(error, message)
    if overflow is not None:
        return overflow
    if status == 401 or kind in ("no_db_connection", "auth_error") or _bad_key(message):
        if not key_sent:
            return KeyRefused("no key: LITELLM_MASTER_KEY is empty", fix=NO_KEY_FIX)
        return KeyRefused("wrong key: the gateway refused it", fix=KEY_FIX)
    if status == 404 or "invalid model name" in message.lower():
        model = re.search(r"model=(\S+?)\.?(?:\s|$)", message)
        named = f" ({model.group(1)})" if model else ""
        return ChatError(f"the gateway does not know that model{named}", fix=MODELS_FIX)
    if status >= 500 and "connection error" in message.lower():
        return ChatError(
            "the gateway cannot reach inference (llama-server)",
            fix="check that inference runs (`llm-tui status`); its logs (3) say why it stopped",
        )
    where = f" at {base_url}" if base_url else ""
    return ChatError(f"the gateway{where} answered {status}: {_one_line(message)[:300]}")


def explain_error_event(error: Any) -> ChatError:
    """An error that arrived inside the stream (`data: {"error": …}`)."""
    if isinstance(error, dict):
        message = error.get("message")
        text = str(message if message is not None else error)
        overflow = context_overflow(error, text)
    else:
        text = str(error)
        overflow = context_overflow(None, text)
    if overflow is not None:
        return overflow
    return ChatError(f"the model failed: {_one_line(text)}")


def context_overflow(error: dict[str, Any] | None, message: str) -> ContextOverflow | None:
    """llama-server's context-size error, straight from it or relayed as text by LiteLLM."""
    if error is not None and error.get("type") == "exceed_context_size_error":
        return ContextOverflow(_int(error.get("n_prompt_tokens")), _int(error.get("n_ctx")))
    found = _OVERFLOW.search(message)
    if found is not None:
        return ContextOverflow(int(found.group(1)), int(found.group(2)))
    if "exceed_context_size_error" in message or "ContextWindowExceededError" in message:
        return ContextOverflow(None, None)
    return None


def _error_object(text: str) -> dict[str, Any] | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return error
    if isinstance(error, str):
        return {"message": error}
    return None


def _bad_key(message: str) -> bool:
    lowered = message.lower()
    return "api key" in lowered and ("invalid" in lowered or "no api key" in lowered)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _one_line(text: str) -> str:
    return " ".join(text.split())
