"""One streamed answer from the gateway's `/v1/chat/completions`, cancellable at once.

`stream_chat_batches` yields the deltas of each network read together, so a caller that
saves them (the chat pane writes each batch to the conversation file before showing it)
does one write per read, however many tokens the read held. `stream_chat` yields them one
by one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from stack.cancel import Cancelled, CancelToken, closing_on_cancel
from stack.chat.errors import ChatError, explain_status
from stack.chat.sse import ChatDelta, SseParser

READ_TIMEOUT_S = 600.0  # a long prompt on a slow GPU may take minutes before a token


@dataclass(frozen=True)
class Sampling:
    """What a request may set besides the messages; None leaves it to the gateway."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None

    def body(self) -> dict[str, Any]:
        fields = {"max_tokens": self.max_tokens, "temperature": self.temperature}
        fields["top_p"] = self.top_p
        return {key: value for key, value in fields.items() if value is not None}


def stream_chat(
    base_url: str,
    key: str,
    messages: list[dict[str, str]],
    *,
    model: str = "local-chat",
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    timeout: float = READ_TIMEOUT_S,
    cancel: CancelToken | None = None,
) -> Iterator[ChatDelta]:
    """Stream one answer (``base_url`` ends in /v1), delta by delta."""
    for batch in stream_chat_batches(
        base_url,
        key,
        messages,
        model=model,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        timeout=timeout,
        cancel=cancel,
    ):
        for delta in batch:
            # Cancelled mid-batch (by the caller, between two deltas): nothing more comes.
            if cancel is not None and cancel.cancelled:
                raise Cancelled("the answer")
            yield delta


def stream_chat_batches(
    base_url: str,
    key: str,
    messages: list[dict[str, str]],
    *,
    model: str = "local-chat",
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    timeout: float = READ_TIMEOUT_S,
    cancel: CancelToken | None = None,
) -> Iterator[list[ChatDelta]]:
    """Stream one answer as the deltas of each network read (never an empty batch).

    ``cancel`` shuts the connection down from any thread: the read unblocks at once, the
    server sees the client go (llama-server stops generating), and this raises `Cancelled`.
    """
    import httpx

    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "stream": True,
        # A final chunk with token counts, for exact numbers under the answer.
        "stream_options": {"include_usage": True},
        **Sampling(max_tokens, temperature, top_p).body(),
    }
    # An empty key is no header at all (httpx refuses "Bearer "); the gateway says 401.
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    connection = _ConnectionWatch()
    parser = SseParser()
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
                raise explain_status(
                    response.status_code, response.text, base_url, key_sent=bool(key)
                )
            for chunk in response.iter_bytes():
                batch = parser.feed(chunk)
                if batch:
                    yield batch
                if parser.done:
                    return
            batch = parser.finish()
            if batch:
                yield batch
    except Cancelled:
        raise
    except Exception as exc:
        if cancel is not None and cancel.cancelled:
            raise Cancelled("the answer") from None
        raise _transport_error(exc, base_url) from None


def _transport_error(exc: Exception, base_url: str) -> Exception:
    import httpx

    if isinstance(exc, ChatError):
        return exc
    if isinstance(exc, httpx.ConnectError):
        return ChatError(f"nothing answers at {base_url}", fix="start the stack (`llm-tui up`)")
    if isinstance(exc, httpx.TimeoutException):
        return ChatError(
            f"the gateway at {base_url} timed out",
            fix="check that inference is healthy (`llm-tui status`)",
        )
    if isinstance(exc, httpx.HTTPError):
        # ReadError, RemoteProtocolError…: the connection dropped mid-answer.
        return ChatError(
            f"the connection to the gateway at {base_url} broke off mid-answer "
            f"({type(exc).__name__}: {exc or 'no detail'})",
            fix="check `llm-tui status` and the gateway's logs (`llm-tui logs api-gateway`)",
        )
    return exc


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
