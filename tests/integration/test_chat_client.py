"""`stream_chat` against servers on loopback: one that misbehaves on purpose, and a real
llama-server behind a real LiteLLM proxy.

The gateway can drop a connection mid-answer, or keep one open forever; the client must
say so in one line, and a cancel from another thread must unblock the read at once. The
real servers' failures (a wrong key, an unknown model, a prompt longer than the slot,
inference or the gateway gone) are provoked for real and must read as one line each.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack.cancel import Cancelled, CancelToken
from stack.chat import ChatError, ContextOverflow, stream_chat, stream_chat_batches
from stack.engine.gateway import write_config
from stack.settings import load_settings
from tests.support.gguf_factory import write_tiny_model
from tests.support.litellm_proxy import LiteLLMProxy, litellm_executable
from tests.support.llama_server import LlamaServer, llama_server_binary
from tests.support.tiers import unavailable


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
        if self.server.mode == "burst":
            # Many deltas in one network read, then the end.
            events = [{"choices": [{"delta": {"content": f"{n} "}}]} for n in range(50)]
            body = "".join(f"data: {json.dumps(event)}\n\n" for event in events)
            self._chunk((body + "data: [DONE]\n\n").encode())
            self._chunk(b"")
            return
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


def test_a_cancel_between_two_deltas_of_one_read_stops_at_once() -> None:
    """The rest of a read's deltas are not handed out once the caller has cancelled."""
    token = CancelToken()
    received = []
    with gateway("burst") as server, pytest.raises(Cancelled):
        messages = [{"role": "user", "content": "hi"}]
        for delta in stream_chat(url(server), "sk-k", messages, cancel=token):
            received.append(delta.text)
            token.cancel()
    assert received == ["0 "]


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


# --- against a real llama-server behind a real LiteLLM proxy --------------------------------

KEY = "sk-chat-test-" + "c" * 32
SLOT = 512  # a small context, so a long conversation overflows it
MESSAGES = [{"role": "user", "content": "Say hello"}]


@dataclass
class RealStack:
    llama: LlamaServer
    proxy: LiteLLMProxy


def real_stack(home: Path, slot: int = SLOT) -> contextlib.AbstractContextManager[RealStack]:
    """llama-server (one slot of ``slot`` tokens) behind LiteLLM with the generated config."""
    if llama_server_binary() is None:
        unavailable("llama-server", "not built; run scripts/build-llama-server")
    if litellm_executable() is None:
        unavailable("LiteLLM", "not installed; run scripts/litellm-venv")
    models = home / "models"
    models.mkdir()
    # The model's own context is the most a slot may hold.
    write_tiny_model(models / "tiny.gguf", name="tiny", seed=1, context_length=max(slot, 2048))
    (home / ".env").write_text(f"CHAT_MODEL=tiny.gguf\nLITELLM_MASTER_KEY={KEY}\nMAX_TOKENS=16\n")
    settings = load_settings(home / ".env")

    @contextlib.contextmanager
    def running() -> Iterator[RealStack]:
        model = models / "tiny.gguf"
        with LlamaServer(model, alias="local-chat", ctx=slot, parallel=1) as llama:
            bases = {"chat": llama.base_url, "code": llama.base_url}
            config = write_config(settings, api_bases=bases)
            with LiteLLMProxy(config, master_key=KEY) as proxy:
                yield RealStack(llama, proxy)

    return running()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealStack]:
    with real_stack(tmp_path_factory.mktemp("chat")) as running:
        yield running


def slot_busy(server: LlamaServer) -> bool:
    slots = httpx.get(f"{server.url}/slots", timeout=10).json()
    return any(slot.get("is_processing") for slot in slots)


def test_an_answer_streams_through_the_gateway_with_its_counts(stack: RealStack) -> None:
    deltas = list(stream_chat(stack.proxy.base_url, KEY, MESSAGES, max_tokens=12, temperature=0))
    assert "".join(delta.text for delta in deltas)
    assert sum(1 for delta in deltas if delta.text) >= 2
    usage = next(delta.usage for delta in reversed(deltas) if delta.usage)
    assert usage["completion_tokens"] == 12  # the tiny model never stops by itself
    assert usage["prompt_tokens"] > 0
    direct = list(stream_chat(stack.llama.base_url, "", MESSAGES, max_tokens=12, temperature=0))
    assert "".join(d.text for d in direct) == "".join(d.text for d in deltas)


def test_batches_hold_each_network_read(stack: RealStack) -> None:
    batches = list(
        stream_chat_batches(stack.proxy.base_url, KEY, MESSAGES, max_tokens=40, temperature=0)
    )
    assert all(batches) and sum(len(batch) for batch in batches) >= 40


@pytest.mark.parametrize("key", ["sk-wrong-key", ""])
def test_a_wrong_or_missing_key_is_one_line_with_the_fix(stack: RealStack, key: str) -> None:
    with pytest.raises(ChatError) as error:
        list(stream_chat(stack.proxy.base_url, key, MESSAGES, max_tokens=4))
    said = "wrong key: the gateway refused it" if key else "no key: LITELLM_MASTER_KEY is empty"
    assert error.value.message == said
    assert error.value.fix and "LITELLM_MASTER_KEY" in error.value.fix


def test_an_unknown_model_is_named(stack: RealStack) -> None:
    with pytest.raises(ChatError) as error:
        list(stream_chat(stack.proxy.base_url, KEY, MESSAGES, model="nope", max_tokens=4))
    assert error.value.message == "the gateway does not know that model (nope)"


@pytest.mark.parametrize("through", ["gateway", "llama-server"])
def test_a_conversation_longer_than_the_slot_says_both_sizes(
    stack: RealStack, through: str
) -> None:
    long = [{"role": "user", "content": "hello world " * 600}]
    base = stack.proxy.base_url if through == "gateway" else stack.llama.base_url
    with pytest.raises(ContextOverflow) as error:
        list(stream_chat(base, KEY, long, max_tokens=4))
    assert error.value.slot_tokens == SLOT
    assert error.value.prompt_tokens and error.value.prompt_tokens > SLOT
    assert error.value.message == (
        f"this conversation is {error.value.prompt_tokens:,} tokens; a slot holds {SLOT}"
    )
    assert error.value.fix and "`llm-tui tune`" in error.value.fix


def predicted(server: LlamaServer) -> float:
    """Tokens llama-server generated so far (its /metrics)."""
    for line in httpx.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith("llamacpp:tokens_predicted_total"):
            return float(line.split()[-1])
    raise AssertionError("no llamacpp:tokens_predicted_total in /metrics")


def test_cancelling_mid_answer_stops_the_model(tmp_path: Path) -> None:
    """Esc in the pane cancels like this: the model stops long before its max_tokens."""
    # Several seconds of generation for the tiny model on two cores, even with the machine
    # busy (it decodes ~5,000 tokens a second): the cancel has that long to arrive.
    wanted = 60_000
    with real_stack(tmp_path, slot=65_536) as running:
        token = CancelToken()
        received = []
        with pytest.raises(Cancelled):
            for delta in stream_chat(
                running.proxy.base_url, KEY, MESSAGES, max_tokens=wanted, cancel=token
            ):
                received.append(delta.text)
                if len(received) == 20:
                    token.cancel()
        assert len(received) == 20
        # LiteLLM drops the request when its client goes; llama-server stops the task.
        end = time.monotonic() + 30
        while slot_busy(running.llama):
            assert time.monotonic() < end, "llama-server kept generating after the cancel"
            time.sleep(0.05)
        assert predicted(running.llama) < wanted / 2


def test_inference_stopped_then_the_gateway_stopped(tmp_path: Path) -> None:
    with real_stack(tmp_path) as running:
        running.llama.stop()
        with pytest.raises(ChatError) as error:
            list(stream_chat(running.proxy.base_url, KEY, MESSAGES, max_tokens=4))
        assert error.value.message == "the gateway cannot reach inference (llama-server)"
        running.proxy.stop()
        with pytest.raises(ChatError) as error:
            list(stream_chat(running.proxy.base_url, KEY, MESSAGES, max_tokens=4))
        assert error.value.message == f"nothing answers at {running.proxy.base_url}"
        assert error.value.fix == "start the stack (`llm-tui up`)"
