"""The gateway config is LiteLLM's real schema, generated from settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stack.engine import gateway
from stack.settings import load_settings

pytestmark = pytest.mark.unit


def settings_for(tmp_path: Path, text: str = ""):  # type: ignore[no-untyped-def]
    path = tmp_path / ".env"
    path.write_text(text)
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    for name in ("a.gguf", "b.gguf"):
        (models / name).write_bytes(b"GGUF" + b"\0" * 28)
    return load_settings(path)


def test_config_maps_aliases_to_openai_provider(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "CHAT_MODEL=a.gguf\nTEMPERATURE=0.7\nMAX_TOKENS=99\n")
    config = yaml.safe_load(gateway.render_config(settings))
    chat, code = config["model_list"]
    assert chat["model_name"] == "local-chat"
    assert chat["litellm_params"]["model"] == "openai/local-chat"
    assert chat["litellm_params"]["api_base"] == "http://llm-tui-inference:8080/v1"
    assert chat["litellm_params"]["temperature"] == 0.7
    assert chat["litellm_params"]["max_tokens"] == 99
    assert "/v1/messages" in chat["model_info"]["supported_endpoints"]
    # No distinct code model: local-code is served by the chat container.
    assert code["model_name"] == "local-code"
    assert code["litellm_params"]["api_base"] == chat["litellm_params"]["api_base"]
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert config["litellm_settings"]["drop_params"] is True
    # The seed plan's keys do nothing in LiteLLM: never emit them.
    assert not {"defaults", "server"} & set(config)
    assert "llamacpp/" not in gateway.render_config(settings)


def test_distinct_code_model_gets_its_own_container(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "CHAT_MODEL=a.gguf\nCODE_MODEL=b.gguf\nSTACK_NAME=dev\n")
    config = yaml.safe_load(gateway.render_config(settings))
    code = config["model_list"][1]["litellm_params"]
    assert code["api_base"] == "http://dev-inference-code:8080/v1"
    assert code["model"] == "openai/local-code"


def test_config_holds_no_secret_and_is_written_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "LITELLM_MASTER_KEY=sk-supersecretvalue1234567890abcd\n")
    path = gateway.write_config(settings)
    assert path == tmp_path / "services" / "api-gateway" / "config.yaml"
    assert "supersecret" not in path.read_text()
    mtime = path.stat().st_mtime_ns
    gateway.write_config(settings)
    assert path.stat().st_mtime_ns == mtime  # unchanged content is not rewritten
