"""The gateway's stream (OpenAI server-sent events) as deltas: bytes in, `ChatDelta`s out.

`SseParser` is fed the body as the network hands it over: a line may be split anywhere
(even inside a UTF-8 character), one read may hold thousands of events, and a line may be
huge. It is linear in the bytes fed and holds at most one unfinished line. Pings (`:`
lines), other SSE fields and events that are not OpenAI chunks are skipped; invalid JSON
is counted, not fatal; `data: [DONE]` ends the stream, and a stream that just stops (no
`[DONE]`) ends it too. An error event raises `ChatError`, said as the gateway would.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from stack.chat.errors import ChatError, explain_error_event

# A line longer than this is no chat chunk (a runaway or hostile server): stop reading.
MAX_LINE_BYTES = 16 * 2**20


@dataclass(frozen=True)
class ChatDelta:
    """One piece of an answer: text, reasoning (a thinking model's), how it ended, counts."""

    text: str
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    reasoning: str = ""


class SseParser:
    """Incremental SSE → deltas; `feed` per network read, `finish` at the end of the body."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._data: list[str] = []  # `data:` lines of an event not yet dispatched
        self.done = False  # `[DONE]` seen: nothing after it counts
        self.invalid = 0  # events that were not JSON

    def feed(self, chunk: bytes) -> list[ChatDelta]:
        if self.done or not chunk:
            return []
        buffer = self._buffer
        start = len(buffer)
        buffer += chunk
        out: list[ChatDelta] = []
        begin = 0
        # Only the new bytes can hold a newline: the search never rescans old ones.
        newline = buffer.find(b"\n", start)
        while newline != -1:
            self._line(bytes(buffer[begin:newline]), out)
            if self.done:
                buffer.clear()
                return out
            begin = newline + 1
            newline = buffer.find(b"\n", begin)
        del buffer[:begin]
        if len(buffer) > MAX_LINE_BYTES:
            raise ChatError(
                f"the gateway sent a line longer than {MAX_LINE_BYTES // 2**20} MiB",
                fix="this is not a chat stream; check what answers at the gateway's port",
            )
        return out

    def finish(self) -> list[ChatDelta]:
        """The body ended: what its last line and last event still hold."""
        out: list[ChatDelta] = []
        if not self.done and self._buffer:
            self._line(bytes(self._buffer), out)
        self._buffer.clear()
        if not self.done and self._data:
            self._dispatch(out)
        return out

    def _line(self, raw: bytes, out: list[ChatDelta]) -> None:
        line = raw.decode("utf-8", errors="replace")
        if line.endswith("\r"):
            line = line[:-1]
        if not line:  # a blank line ends an event
            if self._data:
                self._dispatch(out)
            return
        if line.startswith(":") or not line.startswith("data:"):
            return  # a ping, or `event:` / `id:` / `retry:`: nothing to show
        payload = line[5:]
        if payload.startswith(" "):
            payload = payload[1:]
        if not self._data:
            # Servers put one JSON chunk on one line and may leave out the blank line
            # between events: a line that is a whole event is one.
            event = _json(payload)
            if event is not _INCOMPLETE or payload.strip() == "[DONE]":
                self._event(payload, event, out)
                return
        self._data.append(payload)

    def _dispatch(self, out: list[ChatDelta]) -> None:
        payload = "\n".join(self._data)
        self._data = []
        self._event(payload, _json(payload), out)

    def _event(self, payload: str, event: Any, out: list[ChatDelta]) -> None:
        if payload.strip() == "[DONE]":
            self.done = True
            return
        if event is _INCOMPLETE:
            self.invalid += 1
            return
        out.extend(deltas_of(event))


_INCOMPLETE = object()


def _json(payload: str) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return _INCOMPLETE


def deltas_of(event: Any) -> list[ChatDelta]:
    """The deltas in one decoded chunk; anything that is not an OpenAI chunk gives none."""
    if not isinstance(event, dict):
        return []
    if "error" in event:
        raise explain_error_event(event["error"])
    usage = event.get("usage")
    usage = usage if isinstance(usage, dict) else None
    choices = event.get("choices")
    out: list[ChatDelta] = []
    for choice in choices if isinstance(choices, list) else []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        content = delta.get("content")
        # llama-server says reasoning_content; some servers say reasoning.
        reasoning = delta.get("reasoning_content", delta.get("reasoning"))
        finish = choice.get("finish_reason")
        out.append(
            ChatDelta(
                content if isinstance(content, str) else "",
                finish if isinstance(finish, str) else None,
                usage,
                reasoning if isinstance(reasoning, str) else "",
            )
        )
    if not out and usage:
        out.append(ChatDelta("", None, usage))
    return out


def parse_sse(lines: Iterable[str]) -> Iterator[ChatDelta]:
    """Deltas from lines already split (no line ends); `SseParser` does the same for bytes."""
    parser = SseParser()
    for line in lines:
        yield from parser.feed(line.encode() + b"\n")
        if parser.done:
            return
    yield from parser.finish()
