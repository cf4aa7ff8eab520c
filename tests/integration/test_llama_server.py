"""A real llama-server serves the generated tiny models over its OpenAI-compatible API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gguf_factory import (
    write_not_gguf,
    write_split_set,
    write_tiny_model,
    write_truncated,
)
from tests.support.llama_server import LlamaServer, LlamaServerError, require_llama_server_binary

pytestmark = pytest.mark.integration

PROMPT = [{"role": "user", "content": "Say hello to the test suite."}]


@pytest.fixture(scope="module")
def binary() -> Path:
    return require_llama_server_binary()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def server(binary: Path, models: Path) -> Iterator[LlamaServer]:
    model = write_tiny_model(models / "tiny-a.gguf", name="tiny-a", seed=0)
    with LlamaServer(model, alias="local-chat", binary=binary) as running:
        yield running


def chat(server: LlamaServer, **overrides: Any) -> dict[str, Any]:
    body = {"model": server.alias, "messages": PROMPT, "max_tokens": 16, "temperature": 0}
    response = httpx.post(f"{server.base_url}/chat/completions", json=body | overrides, timeout=30)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def content(result: dict[str, Any]) -> str:
    text = result["choices"][0]["message"]["content"]
    assert isinstance(text, str)
    return text


def test_loads_and_reports_health(server: LlamaServer) -> None:
    assert server.startup_s is not None  # how fast: bench/, not a test bound
    health = httpx.get(f"{server.url}/health", timeout=5)
    assert health.status_code == 200
    models = httpx.get(f"{server.base_url}/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == ["local-chat"]
    metrics = httpx.get(f"{server.url}/metrics", timeout=5)
    assert metrics.status_code == 200
    assert "llamacpp:" in metrics.text


def test_non_streamed_chat(server: LlamaServer) -> None:
    result = chat(server)
    text = content(result)
    assert text.strip()
    assert text.isascii() and text.isprintable(), repr(text)
    choice = result["choices"][0]
    # The tiny models never sample end-of-turn, so max_tokens always ends the reply.
    assert choice["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] == 16


def test_streamed_chat_matches_non_streamed(server: LlamaServer) -> None:
    body = {
        "model": server.alias,
        "messages": PROMPT,
        "max_tokens": 16,
        "temperature": 0,
        "stream": True,
    }
    pieces: list[str] = []
    saw_done = False
    url = f"{server.base_url}/chat/completions"
    with httpx.stream("POST", url, json=body, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                continue
            assert line.startswith("data: "), line
            payload = line.removeprefix("data: ")
            if payload == "[DONE]":
                saw_done = True
                break
            for choice in json.loads(payload)["choices"]:
                pieces.append(choice["delta"].get("content") or "")
    assert saw_done
    assert "".join(pieces) == content(chat(server))


def test_same_model_same_output_other_model_differs(
    server: LlamaServer, binary: Path, models: Path
) -> None:
    first = content(chat(server, seed=1))
    assert content(chat(server, seed=1)) == first
    other = write_tiny_model(models / "tiny-b.gguf", name="tiny-b", seed=1)
    with LlamaServer(other, alias="local-chat", binary=binary) as swapped:
        assert content(chat(swapped, seed=1)) != first


def test_split_set_loads_from_first_shard(binary: Path, models: Path) -> None:
    shards = write_split_set(models, "split-model", shards=3)
    with LlamaServer(shards[0], binary=binary) as split:
        assert content(chat(split)).strip()
        props = httpx.get(f"{split.url}/props", timeout=5).json()
        assert props["model_path"] == str(shards[0])


@pytest.mark.parametrize(
    ("writer", "reason"),
    [
        (write_truncated, "data is not within the file bounds"),
        (write_not_gguf, "invalid magic characters"),
    ],
    ids=["truncated", "not-gguf"],
)
def test_broken_model_fails_with_its_error(
    binary: Path, models: Path, writer: Callable[[Path], Path], reason: str
) -> None:
    server = LlamaServer(writer(models / f"broken-{writer.__name__}.gguf"), binary=binary)
    with pytest.raises(LlamaServerError) as caught:
        server.start(timeout=20)
    error = caught.value
    assert error.returncode not in (None, 0)
    assert "exited with code" in str(error)
    assert reason in error.output
    assert "failed to load model" in error.output
    assert reason in server.log_text()  # still readable after the process is gone
