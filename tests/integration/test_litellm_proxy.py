"""Smoke test of the LiteLLM proxy fixture: a real ``litellm`` process on loopback.

The model points at a dead upstream (port 9, discard), so nothing here needs a model
server: only the proxy's own routes and key checks are exercised.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.litellm_proxy import LiteLLMProxy, litellm_executable
from tests.support.tiers import unavailable

pytestmark = pytest.mark.integration

MASTER_KEY = "sk-llm-tui-test-master"


def write_config(path: Path, api_base: str) -> Path:
    config = {
        "model_list": [
            {
                "model_name": "local-chat",
                "litellm_params": {
                    "model": "openai/local-model",
                    "api_base": api_base,
                    "api_key": "none",
                    "temperature": 0.7,
                    "max_tokens": 256,
                },
            }
        ],
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
        "litellm_settings": {"drop_params": True},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteLLMProxy]:
    if litellm_executable() is None:
        unavailable("LiteLLM", "run scripts/litellm-venv")
    config = write_config(
        tmp_path_factory.mktemp("litellm") / "config.yaml", "http://127.0.0.1:9/v1"
    )
    with LiteLLMProxy(config, master_key=MASTER_KEY) as running:
        yield running


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_liveliness(proxy: LiteLLMProxy) -> None:
    response = httpx.get(f"{proxy.url}/health/liveliness", timeout=10)
    assert response.status_code == 200


def test_models_lists_alias_with_master_key(proxy: LiteLLMProxy) -> None:
    response = httpx.get(f"{proxy.base_url}/models", headers=auth(MASTER_KEY), timeout=10)
    assert response.status_code == 200
    assert [model["id"] for model in response.json()["data"]] == ["local-chat"]


def test_missing_key_is_401(proxy: LiteLLMProxy) -> None:
    response = httpx.get(f"{proxy.base_url}/models", timeout=10)
    assert response.status_code == 401, response.text


def test_wrong_key_is_rejected(proxy: LiteLLMProxy) -> None:
    # Without a database LiteLLM cannot look a non-master key up, so it answers
    # 400 ``no_db_connection`` rather than 401; either way the request is refused.
    response = httpx.get(f"{proxy.base_url}/models", headers=auth("sk-wrong"), timeout=10)
    assert response.status_code in (400, 401), response.text
    if response.status_code == 400:
        assert response.json()["error"]["type"] == "no_db_connection"


def test_start_failure_reports_log_tail(tmp_path: Path) -> None:
    if litellm_executable() is None:
        unavailable("LiteLLM", "run scripts/litellm-venv")
    config = tmp_path / "broken.yaml"
    config.write_text("model_list: [unterminated\n")
    proxy = LiteLLMProxy(config, master_key=MASTER_KEY)
    with pytest.raises(RuntimeError, match="exited with status"):
        proxy.start(timeout=60)
    assert proxy.log_text()
