"""The SSE parser fed bytes the way a network hands them over, and the servers' errors."""

from __future__ import annotations

import json
import random

import pytest

from stack.chat import ChatDelta, ChatError, ContextOverflow, KeyRefused, SseParser, explain_status
from stack.chat.errors import explain_error_event
from stack.chat.sse import MAX_LINE_BYTES

pytestmark = pytest.mark.unit


def event(content: str = "", reasoning: str = "", finish: str | None = None) -> bytes:
    delta: dict[str, str] = {}
    if content:
        delta["content"] = content
    if reasoning:
        delta["reasoning_content"] = reasoning
    choice: dict[str, object] = {"index": 0, "delta": delta}
    if finish:
        choice["finish_reason"] = finish
    return b"data: " + json.dumps({"choices": [choice]}).encode() + b"\n\n"


def feed(chunks: list[bytes]) -> tuple[list[ChatDelta], SseParser]:
    parser = SseParser()
    out: list[ChatDelta] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    return out + parser.finish(), parser


def text(deltas: list[ChatDelta]) -> str:
    return "".join(delta.text for delta in deltas)


STREAM = (
    b": ping\n\n"
    + event("Hé")
    + b": keep-alive\n"
    + event("llo ✓")
    + event(finish="stop")
    + b'data: {"choices":[],"usage":{"completion_tokens":3,"prompt_tokens":5}}\n\n'
    + b"data: [DONE]\n\n"
    + event("after done")
)


def test_lines_split_anywhere_even_inside_a_character_read_the_same() -> None:
    whole, _ = feed([STREAM])
    assert text(whole) == "Héllo ✓"
    assert whole[-1].usage == {"completion_tokens": 3, "prompt_tokens": 5}
    rng = random.Random(5)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 40)))
        chunks = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert feed(chunks)[0] == whole
    one_byte_each = [STREAM[i : i + 1] for i in range(len(STREAM))]
    assert feed(one_byte_each)[0] == whole


def test_a_stream_that_ends_without_done_keeps_its_last_event() -> None:
    body = event("a") + b'data: {"choices":[{"delta":{"content":"b"}}]}'  # no newline at all
    deltas, parser = feed([body])
    assert text(deltas) == "ab" and not parser.done


def test_invalid_json_is_counted_not_fatal() -> None:
    deltas, parser = feed([event("ok") + b"data: {not json\n\n" + event("!")])
    assert text(deltas) == "ok!"
    assert parser.invalid == 1


def test_crlf_and_other_sse_fields() -> None:
    body = (
        b"event: message\r\nid: 7\r\nretry: 100\r\ndata: "
        + json.dumps({"choices": [{"delta": {"content": "crlf"}}]}).encode()
        + b"\r\n\r\ndata:[DONE]\r\n"
    )
    assert text(feed([body])[0]) == "crlf"


def test_an_event_split_over_several_data_lines_is_joined() -> None:
    body = b'data: {"choices": [{"delta":\ndata: {"content": "joined"}}]}\n\n'
    assert text(feed([body])[0]) == "joined"


def test_a_huge_chunk_and_a_huge_event_are_linear() -> None:
    many = b"".join(event(f"{i} ") for i in range(20_000))
    deltas, _ = feed([many])
    assert len(deltas) == 20_000 and text(deltas).startswith("0 1 2 ")
    big = "x" * 3_000_000
    assert text(feed([event(big)[:1000], event(big)[1000:]])[0]) == big


def test_a_line_without_end_is_refused_past_the_bound() -> None:
    parser = SseParser()
    with pytest.raises(ChatError, match="longer than 16 MiB"):
        for _ in range(MAX_LINE_BYTES // 2**20 + 2):
            parser.feed(b"x" * 2**20)


def test_reasoning_deltas_come_apart_from_the_answer() -> None:
    body = event(reasoning="Let me think. ") + event(reasoning="Done.") + event("Answer.")
    body += b'data: {"choices":[{"delta":{"reasoning":"other servers"}}]}\n\n'
    deltas, _ = feed([body])
    assert "".join(d.reasoning for d in deltas) == "Let me think. Done.other servers"
    assert text(deltas) == "Answer."


def test_an_error_event_mid_stream_is_a_chat_error() -> None:
    body = event("partial") + b'data: {"error": {"message": "boom", "code": 500}}\n\n'
    parser = SseParser()
    with pytest.raises(ChatError, match="the model failed: boom"):
        parser.feed(body)


# --- what each server says, as read from the real ones -----------------------------------

NO_DB = (
    '{"error":{"message":"No connected db.","type":"no_db_connection","param":null,"code":"400"}}'
)
NO_KEY = (
    '{"error":{"message":"Authentication Error, No api key passed in.","type":"auth_error",'
    '"param":"None","code":"401"}}'
)
UNKNOWN_MODEL = (
    '{"error":{"message":"/chat/completions: Invalid model name passed in model=nope. Call '
    '`/v1/models` to view available models for your key.","type":"invalid_request_error",'
    '"param":null,"code":"400"}}'
)
LLAMA_OVERFLOW = (
    '{"error":{"code":400,"message":"request (820 tokens) exceeds the available context size '
    '(256 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":820,'
    '"n_ctx":256}}'
)
LITELLM_OVERFLOW = (
    '{"error":{"message":"litellm.ContextWindowExceededError: litellm.BadRequestError: '
    "ContextWindowExceededError: OpenAIException - request (820 tokens) exceeds the available "
    'context size (256 tokens), try increasing it\\nmodel=local-chat.","type":'
    '"invalid_request_error","param":null,"code":"400"}}'
)
INFERENCE_DOWN = (
    '{"error":{"message":"litellm.InternalServerError: InternalServerError: OpenAIException - '
    "Connection error.\\n\\nLiteLLM: model group 'local-chat' failed with the error above.\","
    '"type":"internal_server_error","param":null,"code":"500"}}'
)


@pytest.mark.parametrize(("status", "body"), [(400, NO_DB), (401, NO_KEY)])
def test_a_bad_key_is_said_plainly(status: int, body: str) -> None:
    error = explain_status(status, body)
    assert isinstance(error, KeyRefused)
    assert error.message == "wrong key: the gateway refused it"
    assert error.fix and "LITELLM_MASTER_KEY" in error.fix


def test_no_key_at_all_is_not_called_wrong() -> None:
    error = explain_status(401, NO_KEY, key_sent=False)
    assert isinstance(error, KeyRefused)
    assert error.message == "no key: LITELLM_MASTER_KEY is empty"
    assert error.fix and "Settings, 5" in error.fix


def test_an_unknown_model_is_not_a_bad_key() -> None:
    # Its text says "invalid" and "key": it used to be read as a refused key.
    error = explain_status(400, UNKNOWN_MODEL)
    assert error.message == "the gateway does not know that model (nope)"
    assert error.fix and "local-chat" in error.fix
    assert explain_status(404, "Not Found").message == "the gateway does not know that model"


@pytest.mark.parametrize("body", [LLAMA_OVERFLOW, LITELLM_OVERFLOW])
def test_a_prompt_longer_than_a_slot_says_both_sizes_and_the_fix(body: str) -> None:
    error = explain_status(400, body)
    assert isinstance(error, ContextOverflow)
    assert (error.prompt_tokens, error.slot_tokens) == (820, 256)
    assert error.message == "this conversation is 820 tokens; a slot holds 256"
    assert error.fix and "ctrl+n" in error.fix and "`llm-tui tune`" in error.fix


def test_an_overflow_inside_the_stream_is_the_same_error() -> None:
    error = explain_error_event(json.loads(LLAMA_OVERFLOW)["error"])
    assert isinstance(error, ContextOverflow) and error.slot_tokens == 256


def test_inference_gone_behind_the_gateway_is_named() -> None:
    error = explain_status(500, INFERENCE_DOWN)
    assert error.message == "the gateway cannot reach inference (llama-server)"


def test_anything_else_keeps_the_status_and_one_line_of_text() -> None:
    error = explain_status(502, "Bad\n  gateway\n", "http://127.0.0.1:8000/v1")
    assert error.message == "the gateway at http://127.0.0.1:8000/v1 answered 502: Bad gateway"
