"""Streaming chat through the gateway's `/v1/chat/completions` (OpenAI SSE format).

`parse_sse` is pure (lines in, events out) so it is tested without a server; `stream_chat`
does the HTTP with the master key and turns failures into plain answers.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from stack.cancel import Cancelled, CancelToken, closing_on_cancel
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
        if not isinstance(event, dict):
            continue  # not an OpenAI event (a bare string or number): nothing to show
        if "error" in event:
            raise ChatError(f"the model failed: {_error_message(event['error'])}")
        usage = event.get("usage")
        usage = usage if isinstance(usage, dict) else None
        choices = event.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            finish = choice.get("finish_reason")
            yield ChatDelta(
                content if isinstance(content, str) else "",
                finish if isinstance(finish, str) else None,
                usage,
            )
        if not choices and usage:
            yield ChatDelta("", None, usage)


def _error_message(error: Any) -> str:
    """An SSE error event's text: `{"message": …}`, a bare string, or whatever it holds."""
    if isinstance(error, dict):
        message = error.get("message")
        return str(message if message is not None else error)
    return str(error)


def stream_chat(
    base_url: str,
    key: str,
    messages: list[dict[str, str]],
    *,
    model: str = "local-chat",
    max_tokens: int | None = None,
    timeout: float = 600.0,
    cancel: CancelToken | None = None,
) -> Iterator[ChatDelta]:
    """Stream one answer from the gateway (``base_url`` ends in /v1).

    ``cancel`` closes the connection from any thread: the read unblocks at once and the
    generator raises `Cancelled` (quitting never waits for a long answer).
    """
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
    connection = _ConnectionWatch()
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client,
            closing_on_cancel(cancel, connection.abort),
            client.stream(
                "POST",
                f"{base_url}/chat/completions",
                json=body,
                headers=headers,
                extensions={"trace": connection.trace},
            ) as response,
        ):
            if response.status_code != 200:
                response.read()
                raise explain_status(response.status_code, response.text, base_url)
            yield from parse_sse(response.iter_lines())
    except Cancelled:
        raise
    except Exception as exc:
        if cancel is not None and cancel.cancelled:
            raise Cancelled("the answer") from None
        if isinstance(exc, httpx.ConnectError):
            raise ChatError(
                f"nothing answers at {base_url}", fix="start the stack (`llm-tui up`)"
            ) from None
        if isinstance(exc, httpx.TimeoutException):
            raise ChatError(
                f"the gateway at {base_url} timed out",
                fix="check that inference is healthy (`llm-tui status`)",
            ) from None
        if isinstance(exc, httpx.HTTPError):
            # ReadError, RemoteProtocolError…: the connection dropped mid-answer.
            raise ChatError(
                f"the connection to the gateway at {base_url} broke off mid-answer "
                f"({type(exc).__name__}: {exc or 'no detail'})",
                fix="check `llm-tui status` and the gateway's logs (`llm-tui logs api-gateway`)",
            ) from None
        raise


class _ConnectionWatch:
    """Keeps the request's socket (from httpcore's trace events) so another thread can end it.

    Closing a socket does not wake a thread blocked in ``recv()`` on it; shutting it down
    does, whether the read waits for the headers (a long prompt) or for the next token.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: Any = None
        self._aborted = False

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if not event.endswith(("connect_tcp.complete", "connect_unix_socket.complete")):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        with self._lock:
            self._socket = sock
            aborted = self._aborted
        if aborted:
            self._shutdown(sock)

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            sock = self._socket
        self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: Any) -> None:
        import socket

        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


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
