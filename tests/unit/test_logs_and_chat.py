"""Log line reassembly and the SSE chat parser, with no server."""

from __future__ import annotations

import pytest

from stack.chat import ChatError, parse_sse
from stack.engine.logs import LineSplitter, clean, split_lines


def test_lines_split_across_chunks_are_reassembled() -> None:
    chunks = [b"first li", b"ne\nsecond\nthi", b"rd", b"\n", b"partial"]
    assert [line.text for line in split_lines(chunks)] == [
        "first line",
        "second",
        "third",
        "partial",
    ]


def test_utf8_split_inside_a_character_and_invalid_bytes() -> None:
    text = "naïve ✓\n".encode()
    chunks = [text[:3], text[3:8], text[8:], b"bad \xff byte\n"]
    assert [line.text for line in split_lines(chunks)] == ["naïve ✓", "bad \ufffd byte"]


def test_terminal_escapes_are_stripped() -> None:
    assert clean(b"\x1b[31mred\x1b[0m \x1b]0;title\x07done\r") == "red done"
    assert clean(b"[bold]not markup[/bold]") == "[bold]not markup[/bold]"
    assert clean(b"bell\x07 and \x1b[2J clear") == "bell and  clear"


def test_timestamps_are_kept_apart() -> None:
    splitter = LineSplitter(timestamps=True)
    (line,) = splitter.feed(b"2026-11-24T06:00:00.123456789Z srv  main: ready\n")
    assert line.timestamp == "2026-11-24T06:00:00.123456789Z"
    assert line.text == "srv  main: ready"


def test_parse_sse_events_pings_and_done() -> None:
    lines = [
        ": ping",
        'data: {"choices":[{"delta":{"role":"assistant"}}]}',
        'data: {"choices":[{"delta":{"content":"Hel"}}]}',
        "",
        'data: {"choices":[{"delta":{"content":"lo"},"finish_reason":"length"}]}',
        'data: {"choices":[],"usage":{"completion_tokens":2}}',
        "data: [DONE]",
        'data: {"choices":[{"delta":{"content":"after done"}}]}',
    ]
    deltas = list(parse_sse(lines))
    assert "".join(d.text for d in deltas) == "Hello"
    assert deltas[2].finish_reason == "length"
    assert deltas[-1].usage == {"completion_tokens": 2}


def test_parse_sse_error_event() -> None:
    with pytest.raises(ChatError, match="the model failed: boom"):
        list(parse_sse(['data: {"error":{"message":"boom"}}']))


def test_dechunk_and_demultiplex_across_reads() -> None:
    import struct

    from stack.engine.logs import dechunk, demultiplex

    frames = b"".join(
        struct.pack(">BxxxL", 1 + (i % 2), len(payload)) + payload
        for i, payload in enumerate([b"one\n", b"two\nthr", b"ee\n", b"x" * 300 + b"\n"])
    )
    # Each frame as its own HTTP chunk, as the engine sends them.
    body = b""
    offset = 0
    for size in (12, 15, 11, 309):
        body += f"{size:x}\r\n".encode() + frames[offset : offset + size] + b"\r\n"
        offset += size
    body += b"0\r\n\r\n"
    for step in (1, 7, 64, len(body)):
        reads = iter([body[i : i + step] for i in range(0, len(body), step)])
        data = b"".join(demultiplex(dechunk(lambda reads=reads: next(reads, b""))))
        assert data == b"one\ntwo\nthree\n" + b"x" * 300 + b"\n", step


def test_c1_controls_are_stripped_as_well_as_c0() -> None:
    # U+009B is an 8-bit CSI: some terminals obey it like ESC [.
    raw = "red\u009b31m text\u0085 next\u009d0;title\u009c end\tok\n".encode()
    (line,) = split_lines([raw])
    assert line.text == "red31m text next0;title end\tok"
    assert clean("a\u0080b\u009fc".encode()) == "abc"
    assert clean("naïve ✓ ÿ".encode()) == "naïve ✓ ÿ"  # U+00A0 and up are text


def test_a_line_that_never_ends_is_cut_and_memory_stays_bounded() -> None:
    splitter = LineSplitter(max_line=1024)
    out = []
    for _ in range(5000):  # 5 MB without a newline
        out += splitter.feed(b"x" * 1000)
        assert splitter._pending_size <= 1024
    out += splitter.feed(b"y\nnext\n")
    texts = [line.text for line in out]
    assert all(len(text) <= 1024 for text in texts)
    assert "".join(texts[:-1]) == "x" * 5_000_000 + "y"
    assert texts[-1] == "next"


def test_long_lines_inside_one_chunk_are_cut_too() -> None:
    splitter = LineSplitter(max_line=10)
    lines = splitter.feed(b"short\n" + b"z" * 25 + b"\nend\n")
    assert [line.text for line in lines] == ["short", "z" * 10, "z" * 10, "z" * 5, "end"]


@pytest.mark.parametrize(
    "event",
    ['data: "just a string"', "data: 42", "data: [1, 2]", 'data: {"choices": "nope"}',
     'data: {"choices": [null, {"delta": "x"}]}', 'data: {"choices": [{"delta": {"content": 7}}]}'],
)  # fmt: skip
def test_odd_sse_events_are_ignored_not_fatal(event: str) -> None:
    lines = [event, 'data: {"choices":[{"delta":{"content":"ok"}}]}', "data: [DONE]"]
    assert "".join(d.text for d in parse_sse(lines)) == "ok"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ('data: {"error": "plain text"}', "the model failed: plain text"),
        ('data: {"error": {"message": "boom", "code": 500}}', "the model failed: boom"),
        ('data: {"error": {"code": 500}}', "the model failed: {'code': 500}"),
        ('data: {"error": null}', "the model failed: None"),
    ],
)
def test_error_events_of_any_shape_are_a_chat_error(event: str, message: str) -> None:
    with pytest.raises(ChatError) as err:
        list(parse_sse([event]))
    assert err.value.message == message
