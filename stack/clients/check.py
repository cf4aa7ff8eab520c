"""Test connection: the three calls IDE clients make, through exactly their URL and key.

`/v1/models` (what OpenAI clients list), a one-token chat completion (OpenAI clients,
Continue, Cursor) and a one-token `/v1/messages` (Claude Code). Each is timed and, when
it fails, says why in the user's terms: nothing listening, a refused key, a model the
gateway does not serve, or llama-server behind it not answering.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stack.cancel import CancelToken, closing_on_cancel
from stack.clients.connection import Connection

if TYPE_CHECKING:
    import httpx

TIMEOUT_S = 120.0  # a chat waits for llama-server: a model that just started may be loading
ANTHROPIC_VERSION = "2023-06-01"
FIX_KEY = "use LITELLM_MASTER_KEY (`llm-tui config get LITELLM_MASTER_KEY --show-secrets`)"


@dataclass(frozen=True)
class Probe:
    """One call: what it did, whether it passed, how long it took, and why not."""

    name: str  # e.g. "GET /v1/models"
    ok: bool
    seconds: float
    detail: str  # what came back, or why it failed
    fix: str = ""


def check_connection(
    connection: Connection,
    *,
    timeout: float = TIMEOUT_S,
    cancel: CancelToken | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[Probe]:
    """Run the three calls in order; a failure does not stop the others."""
    import httpx

    openai = connection.openai_url.rstrip("/")
    bearer = {"Authorization": f"Bearer {connection.key}"}
    one_token = {"max_tokens": 1, "messages": [{"role": "user", "content": "Say OK."}]}
    calls: list[tuple[str, str, str, dict[str, str], dict[str, Any] | None]] = [
        ("GET /v1/models", "GET", f"{openai}/models", bearer, None),
        ("one-token chat", "POST", f"{openai}/chat/completions", bearer,
         {"model": connection.model, **one_token}),
        ("one-token /v1/messages", "POST", f"{connection.anthropic_url}/v1/messages",
         {"x-api-key": connection.key, "anthropic-version": ANTHROPIC_VERSION},
         {"model": connection.model, **one_token}),
    ]  # fmt: skip
    probes = []
    with httpx.Client(timeout=timeout) as client, closing_on_cancel(cancel, client.close):
        for name, method, url, headers, body in calls:
            if cancel is not None:
                cancel.check("the connection test")
            started = clock()
            try:
                response = client.request(method, url, headers=headers, json=body)
            except httpx.HTTPError as error:
                if cancel is not None:
                    cancel.check("the connection test")
                probes.append(_unreachable(name, url, clock() - started, error, timeout))
                continue
            probes.append(_judge(name, connection, response, clock() - started))
    return probes


def _unreachable(
    name: str, url: str, seconds: float, error: httpx.HTTPError, timeout: float
) -> Probe:
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return Probe(
            name, False, seconds, f"no answer from {url} in {timeout:.0f} s",
            "llama-server may still be loading the model: see `llm-tui status`",
        )  # fmt: skip
    return Probe(
        name, False, seconds, f"nothing answers at {url} ({type(error).__name__})",
        "start the stack (`llm-tui up`), or check API_GATEWAY_PORT and BIND_ADDRESS",
    )  # fmt: skip


def _judge(name: str, connection: Connection, response: httpx.Response, seconds: float) -> Probe:
    status = response.status_code
    text = response.text[:300]
    if status == 200:
        ok, detail = _what_came_back(name, connection, response)
        fix = "" if ok else "regenerate the gateway config: `llm-tui config gateway`, then `up`"
        return Probe(name, ok, seconds, detail, fix)
    # LiteLLM without a database answers a wrong key with 400 no_db_connection, never 401.
    if status in (401, 403) or "no_db_connection" in text or "Authentication Error" in text:
        return Probe(name, False, seconds, f"the gateway refused the key (HTTP {status})", FIX_KEY)
    if status in (400, 404) and "model" in text.lower():
        return Probe(
            name, False, seconds, f"the gateway does not serve {connection.model} (HTTP {status})",
            "regenerate the gateway config: `llm-tui config gateway`, then `up`",
        )  # fmt: skip
    if status >= 500:
        return Probe(
            name, False, seconds, f"the gateway answered HTTP {status}: llama-server behind it "
            "did not answer", "see `llm-tui status` and `llm-tui logs inference`",
        )  # fmt: skip
    return Probe(name, False, seconds, f"HTTP {status}: {text.strip()[:160]}")


def _what_came_back(
    name: str, connection: Connection, response: httpx.Response
) -> tuple[bool, str]:
    try:
        data = response.json()
    except ValueError:
        return False, "an answer that is not JSON"
    if not isinstance(data, dict):
        return False, "an answer of an unexpected shape"
    if name.startswith("GET"):
        ids = [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)]
        if connection.model not in ids:
            return False, f"{connection.model} is not among {', '.join(ids) or 'no models'}"
        return True, ", ".join(ids)
    if "choices" in data:
        usage = data.get("usage") or {}
        return True, f"answered ({usage.get('prompt_tokens', '?')} prompt tokens)"
    if data.get("type") == "message":
        return True, f"answered (stop_reason {data.get('stop_reason', '?')})"
    return False, f"an answer without choices or content: {str(data)[:120]}"
