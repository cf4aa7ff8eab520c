"""Streaming chat through the gateway's `/v1/chat/completions` (OpenAI SSE format).

`parse_sse` is pure (lines in, events out) so it is tested without a server; `stream_chat`
does the HTTP with the master key and turns failures into plain answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from stack.errors import LlmTuiError


class ChatError(LlmTuiError):
    """The gateway could not answer; the message says why."""


@dataclass(frozen=True)
class ChatDelta:
    text: str
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


def parse_sse(lines: Iterable[str]) -> Iterator[ChatDelta]:
    """OpenAI-style SSE: `data: {json}` events, `:` pings ignored, `data: [DONE]` ends."""
    for line in lines:
        if not line or line.startswith(":") or not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            event = json.loads(payload)
        except json.JSONDecodeError:
            continue
        if "error" in event:
            error = event["error"]
            raise ChatError(f"the model failed: {error.get('message', error)}")
        usage = event.get("usage")
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            yield ChatDelta(delta.get("content") or "", choice.get("finish_reason"), usage)
        if not event.get("choices") and usage:
            yield ChatDelta("", None, usage)


def stream_chat(
    base_url: str,
    key: str,
    messages: list[dict[str, str]],
    *,
    model: str = "local-chat",
    max_tokens: int | None = None,
    timeout: float = 600.0,
) -> Iterator[ChatDelta]:
    """Stream one answer from the gateway (``base_url`` ends in /v1)."""
    import httpx

    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "stream": True,
        # A final chunk with token counts, for an exact tokens/s.
        "stream_options": {"include_usage": True},
    }
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client,
            client.stream(
                "POST", f"{base_url}/chat/completions", json=body, headers=headers
            ) as response,
        ):
            if response.status_code != 200:
                response.read()
                raise explain_status(response.status_code, response.text, base_url)
            yield from parse_sse(response.iter_lines())
    except httpx.ConnectError:
        raise ChatError(
            f"nothing answers at {base_url}", fix="start the stack (`llm-tui up`)"
        ) from None
    except httpx.TimeoutException:
        raise ChatError(f"the gateway at {base_url} timed out") from None


def explain_status(status: int, text: str, base_url: str) -> ChatError:
    if status == 401 or "no_db_connection" in text or ("invalid" in text.lower() and "key" in text):
        # Without a database LiteLLM answers a wrong key with 400 no_db_connection.
        return ChatError(
            "the gateway refused the key",
            fix="use LITELLM_MASTER_KEY from .env (`llm-tui config get LITELLM_MASTER_KEY "
            "--show-secrets`)",
        )
    if status == 404 or ("model" in text.lower() and "not found" in text.lower()):
        return ChatError(f"the gateway does not know that model ({status})", fix="use local-chat")
    return ChatError(f"the gateway answered {status}: {text[:300]}")
