"""Chat through the gateway: the streaming client, its SSE parser, conversations on disk.

- `client`: `stream_chat` / `stream_chat_batches`, one answer from `/v1/chat/completions`;
- `sse`: `SseParser` and `ChatDelta`, the stream as deltas (pure, no network);
- `errors`: `ChatError`, `ContextOverflow` and how each server's failures are said;
- `conversation`: a conversation's settings, messages, what is sent and the export;
- `store`: one append-only JSONL file per conversation in the user's data folder.
"""

from stack.chat.client import Sampling, stream_chat, stream_chat_batches
from stack.chat.errors import ChatError, ContextOverflow, KeyRefused, explain_status
from stack.chat.sse import ChatDelta, SseParser, parse_sse

__all__ = [
    "ChatDelta",
    "ChatError",
    "ContextOverflow",
    "KeyRefused",
    "Sampling",
    "SseParser",
    "explain_status",
    "parse_sse",
    "stream_chat",
    "stream_chat_batches",
]
