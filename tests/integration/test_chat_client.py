"""`stream_chat` against a real HTTP server on loopback that misbehaves on purpose.

The gateway can drop a connection mid-answer, or keep one open forever; the client must
say so in one line, and a cancel from another thread must unblock the read at once.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from stack.cancel import Cancelled, CancelToken
from stack.chat import ChatError, stream_chat


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.server.mode == "silent":
            # No headers at all (a long prompt being processed): only a cancel ends this.
            self.server.sent_first.set()
            self.server.release.wait()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in ("Hel", "lo"):
            event = {"choices": [{"delta": {"content": piece}}]}
            self._chunk(f"data: {json.dumps(event)}\n\n".encode())
        self.server.sent_first.set()
        if self.server.mode == "drop":
            # A broken chunked body: the client must see a protocol error, not a hang.
            self.wfile.write(b"zz\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        # "hang": an answer that never finishes (a stuck model), until the test ends.
        self.server.release.wait()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.sent_first = threading.Event()
        self.release = threading.Event()


@contextlib.contextmanager
def gateway(mode: str) -> Iterator[_Server]:
    server = _Server(mode)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def test_a_connection_dropped_mid_answer_is_one_clear_error() -> None:
    with gateway("drop") as server:
        stream = stream_chat(url(server), "sk-k", [{"role": "user", "content": "hi"}])
        received = []
        with pytest.raises(ChatError) as err:
            for delta in stream:
                received.append(delta.text)
    assert "".join(received) == "Hello"  # what arrived before the drop is kept
    assert "broke off mid-answer" in err.value.message
    assert err.value.fix and "llm-tui status" in err.value.fix


@pytest.mark.parametrize("mode", ["hang", "silent"])
def test_cancel_from_another_thread_unblocks_a_stuck_answer(mode: str) -> None:
    token = CancelToken()
    outcome: dict[str, Any] = {}

    def read() -> None:
        received = []
        try:
            for delta in stream_chat(
                url(server), "sk-k", [{"role": "user", "content": "hi"}], cancel=token
            ):
                received.append(delta.text)
        except BaseException as exc:
            outcome["error"] = exc
        outcome["text"] = "".join(received)

    with gateway(mode) as server:
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert server.sent_first.wait(30), "the server never answered"
        token.cancel()
        # The server still holds the answer open: only the cancel can end the read.
        reader.join(30)
        assert not reader.is_alive(), "the read stayed blocked after cancel()"
        assert not server.release.is_set()
    assert isinstance(outcome.get("error"), Cancelled)
    assert outcome["text"] in ("", "Hel", "Hello")
