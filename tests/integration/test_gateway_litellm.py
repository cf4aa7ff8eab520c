"""The generated gateway config in a real LiteLLM proxy in front of a real llama-server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from stack.engine.gateway import write_config
from stack.settings import Settings, load_settings
from tests.support.gguf_factory import write_tiny_model
from tests.support.litellm_proxy import LiteLLMProxy, litellm_executable
from tests.support.llama_server import LlamaServer, llama_server_binary
from tests.support.tiers import unavailable

KEY = "sk-test-" + "k" * 40
DEFAULT_MAX_TOKENS = 7


@dataclass
class Stack:
    settings: Settings
    llama: LlamaServer
    code: LlamaServer
    proxy: LiteLLMProxy

    def client(self, key: str | None = KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.proxy.url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if llama_server_binary() is None:
        unavailable("llama-server", "not built; run scripts/build-llama-server")
    if litellm_executable() is None:
        unavailable("LiteLLM", "not installed; run scripts/litellm-venv")
    home = tmp_path_factory.mktemp("home")
    models = home / "models"
    models.mkdir()
    # Two different models (different weights), so a wrong route gives a different answer.
    write_tiny_model(models / "tiny.gguf", name="tiny", seed=1)
    write_tiny_model(models / "coder.gguf", name="coder", seed=2)
    (home / ".env").write_text(
        f"CHAT_MODEL=tiny.gguf\nCODE_MODEL=coder.gguf\nLITELLM_MASTER_KEY={KEY}\n"
        f"MAX_TOKENS={DEFAULT_MAX_TOKENS}\nTEMPERATURE=0\n"
    )
    settings = load_settings(home / ".env")
    assert settings.problems == ()
    with (
        LlamaServer(models / "tiny.gguf", alias="local-chat") as llama,
        LlamaServer(models / "coder.gguf", alias="local-code") as code,
    ):
        bases = {"chat": llama.base_url, "code": code.base_url}
        config = write_config(settings, api_bases=bases)
        with LiteLLMProxy(config, master_key=KEY) as proxy:
            yield Stack(settings, llama, code, proxy)


def direct_answer(server: LlamaServer, body: dict[str, object]) -> str:
    response = httpx.post(
        f"{server.base_url}/chat/completions", json={**body, "model": server.alias}, timeout=60
    )
    response.raise_for_status()
    text = response.json()["choices"][0]["message"]["content"]
    assert isinstance(text, str) and text
    return text


def test_models_lists_both_aliases(stack: Stack) -> None:
    with stack.client() as client:
        response = client.get("/v1/models")
    assert response.status_code == 200, response.text
    ids = {model["id"] for model in response.json()["data"]}
    assert {"local-chat", "local-code"} <= ids


def test_requests_without_the_key_are_refused(stack: Stack) -> None:
    with stack.client(key=None) as client:
        response = client.get("/v1/models")
    assert response.status_code == 401


def test_chat_completion_applies_per_model_defaults(stack: Stack) -> None:
    body = {"model": "local-chat", "messages": [{"role": "user", "content": "Say hello"}]}
    with stack.client() as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["choices"][0]["message"]["content"]
    # No max_tokens was sent: the config's MAX_TOKENS default capped the answer.
    assert 0 < data["usage"]["completion_tokens"] <= DEFAULT_MAX_TOKENS


def test_each_alias_reaches_its_own_llama_server(stack: Stack) -> None:
    body: dict[str, object] = {
        "max_tokens": 8,
        "temperature": 0,
        "messages": [{"role": "user", "content": "def f():"}],
    }
    expected = {"local-chat": direct_answer(stack.llama, body)}
    expected["local-code"] = direct_answer(stack.code, body)
    assert expected["local-chat"] != expected["local-code"]  # the models really differ
    with stack.client() as client:
        for alias, text in expected.items():
            response = client.post("/v1/chat/completions", json={**body, "model": alias})
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"] == text, alias


def test_streamed_chat_completion(stack: Stack) -> None:
    body = {
        "model": "local-chat",
        "stream": True,
        "max_tokens": 12,
        "messages": [{"role": "user", "content": "Count"}],
    }
    pieces: list[str] = []
    done = False
    with stack.client() as client, client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            payload = line[len("data: ") :]
            if payload == "[DONE]":
                done = True
                break
            chunk = json.loads(payload)
            if chunk["choices"]:
                pieces.append(chunk["choices"][0]["delta"].get("content") or "")
    assert done
    assert len([p for p in pieces if p]) >= 2
    assert "".join(pieces)


def test_anthropic_messages_endpoint(stack: Stack) -> None:
    body = {
        "model": "local-chat",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=stack.proxy.url, timeout=60) as client:
        response = client.post("/v1/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["type"] == "message"
    assert data["content"][0]["type"] == "text" and data["content"][0]["text"]
    assert data["stop_reason"] in ("max_tokens", "end_turn")


def test_openai_sdk_through_the_gateway(stack: Stack) -> None:
    import openai  # a test dependency: its absence is a broken install, not a skip

    client = openai.OpenAI(base_url=stack.proxy.base_url, api_key=KEY)
    answer = client.chat.completions.create(
        model="local-chat", messages=[{"role": "user", "content": "Hello"}], max_tokens=5
    )
    assert answer.choices[0].message.content
    assert Path(stack.settings.gateway_config_path).exists()
