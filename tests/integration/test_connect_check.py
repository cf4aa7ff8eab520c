"""Test connection against a real LiteLLM proxy in front of a real llama-server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from stack.cancel import Cancelled, CancelToken
from stack.clients import Connection, check_connection
from stack.engine.gateway import write_config
from stack.settings import load_settings
from tests.support.gguf_factory import write_tiny_model
from tests.support.litellm_proxy import LiteLLMProxy, litellm_executable
from tests.support.llama_server import LlamaServer, llama_server_binary
from tests.support.net import free_port
from tests.support.tiers import unavailable

KEY = "sk-check-" + "q" * 40


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Connection]:
    if llama_server_binary() is None:
        unavailable("llama-server", "not built; run scripts/build-llama-server")
    if litellm_executable() is None:
        unavailable("LiteLLM", "not installed; run scripts/litellm-venv")
    home: Path = tmp_path_factory.mktemp("check")
    write_tiny_model(home / "models" / "tiny.gguf", name="tiny", seed=1)
    (home / ".env").write_text(f"CHAT_MODEL=tiny.gguf\nLITELLM_MASTER_KEY={KEY}\n")
    settings = load_settings(home / ".env")
    with LlamaServer(home / "models" / "tiny.gguf", alias="local-chat") as llama:
        config = write_config(settings, api_bases={"chat": llama.base_url, "code": llama.base_url})
        with LiteLLMProxy(config, master_key=KEY) as proxy:
            yield Connection(proxy.base_url, KEY, window=2048, parallel=1)


def test_the_three_calls_pass_through_the_gateway(gateway: Connection) -> None:
    probes = check_connection(gateway)
    assert [p.name for p in probes] == [
        "GET /v1/models",
        "one-token chat",
        "one-token /v1/messages",
    ]
    assert all(p.ok for p in probes), probes
    assert probes[0].detail == "local-chat, local-code"
    assert probes[1].detail.startswith("answered (") and "prompt tokens" in probes[1].detail
    assert probes[2].detail == "answered (stop_reason max_tokens)"
    assert all(p.seconds > 0 for p in probes)


def test_a_wrong_key_is_named_with_the_fix(gateway: Connection) -> None:
    probes = check_connection(replace(gateway, key="sk-wrong"))
    assert not any(p.ok for p in probes)
    # LiteLLM without a database answers 400 no_db_connection, not 401.
    assert {p.detail for p in probes} == {"the gateway refused the key (HTTP 400)"}
    assert all("LITELLM_MASTER_KEY" in p.fix for p in probes)


def test_a_model_the_gateway_does_not_serve(gateway: Connection) -> None:
    probes = check_connection(replace(gateway, model="local-other"))
    assert probes[0].detail == "local-other is not among local-chat, local-code"
    assert not probes[1].ok and "does not serve local-other" in probes[1].detail


def test_nothing_listening() -> None:
    closed = Connection(f"http://127.0.0.1:{free_port()}/v1", KEY, 2048, 1)
    probes = check_connection(closed)
    assert all(not p.ok and p.detail.startswith("nothing answers at") for p in probes)
    assert "llm-tui up" in probes[0].fix


def test_a_cancelled_check_stops(gateway: Connection) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        check_connection(gateway, cancel=token)
