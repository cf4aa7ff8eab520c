"""Settings: schema, first run, validation messages, and refusing bad writes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from stack import settings as s
from stack.errors import EnvFileError, SettingsError
from tests.support.smallfs import fill, small_filesystem

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def write_env(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text)
    (tmp_path / "models").mkdir(exist_ok=True)
    return path


def problems_for(tmp_path: Path, text: str) -> list[s.Problem]:
    return list(s.load_settings(write_env(tmp_path, text)).problems)


def test_env_example_is_generated_from_the_schema() -> None:
    assert (REPO / ".env.example").read_text() == s.render_env_example(), (
        "regenerate .env.example: python -c 'from stack.settings import render_env_example;"
        ' print(render_env_example(), end="")\' > .env.example'
    )


def test_every_design_key_is_in_the_schema_and_example() -> None:
    design_keys = {
        "MODELS_DIR", "CHAT_MODEL", "CODE_MODEL", "INFERENCE_IMAGE", "GATEWAY_IMAGE", "GPU",
        "GPU_LAYERS", "CTX_SIZE", "PARALLEL", "FLASH_ATTN", "KV_CACHE_TYPE", "INFERENCE_PORT",
        "API_GATEWAY_PORT", "BIND_ADDRESS", "LITELLM_MASTER_KEY", "HF_TOKEN", "HF_ENDPOINT",
        "TEMPERATURE", "MAX_TOKENS", "STACK_NAME", "LOAD_TIMEOUT",
    }  # fmt: skip
    assert design_keys <= set(s.FIELDS)
    example = (REPO / ".env.example").read_text()
    readme = (REPO / "README.md").read_text()
    for key in s.FIELDS:
        assert re.search(rf"^{key}=", example, re.M), key
        assert f"`{key}`" in readme, f"README does not document {key}"


def test_defaults_are_valid(tmp_path: Path) -> None:
    path = write_env(tmp_path, s.render_env_example())
    settings = s.load_settings(path)
    assert settings.problems == ()
    assert settings.models_dir == tmp_path / "models"
    assert settings.gateway_url == "http://localhost:8000/v1"
    for image in (settings.inference_image, settings.gateway_image):
        assert not image.endswith((":latest", ":main")) and ":" in image


def test_first_run_creates_env_with_key_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".env"
    settings = s.load_settings(path, create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    key = settings.litellm_master_key
    assert re.fullmatch(r"sk-[A-Za-z0-9_-]{32,}", key)
    # The rest of the file is the template, byte for byte.
    assert path.read_text().replace(key, "") == s.render_env_example()
    # A second load does not regenerate the key.
    assert s.load_settings(path, create=True).litellm_master_key == key


def test_env_file_selection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert s.resolve_env_file(environ={}) == tmp_path / ".env"
    assert s.resolve_env_file(environ={"LLM_TUI_ENV_FILE": "/x/y.env"}) == Path("/x/y.env")
    assert s.resolve_env_file("a.env", {"LLM_TUI_ENV_FILE": "/x/y.env"}) == tmp_path / "a.env"


def test_unknown_keys_are_kept(tmp_path: Path) -> None:
    path = write_env(tmp_path, "MY_KEY=1\nCTX_SIZE=4096\n")
    settings = s.load_settings(path)
    assert settings.values["MY_KEY"] == "1"
    s.set_setting(settings, "CTX_SIZE", "2048")
    assert path.read_text() == "MY_KEY=1\nCTX_SIZE=2048\n"


@pytest.mark.parametrize(
    ("line", "key", "fragment"),
    [
        ("API_GATEWAY_PORT=0", "API_GATEWAY_PORT", "1 to 65535"),
        ("API_GATEWAY_PORT=70000", "API_GATEWAY_PORT", "1 to 65535"),
        ("INFERENCE_PORT=http", "INFERENCE_PORT", "or empty"),
        ("BIND_ADDRESS=localhost", "BIND_ADDRESS", "IP address"),
        ("GPU=cuda", "GPU", "auto, all, none, or device ids"),
        ("GPU_LAYERS=most", "GPU_LAYERS", "auto, all, or a number"),
        ("FLASH_ATTN=yes", "FLASH_ATTN", "auto, on, off"),
        ("KV_CACHE_TYPE=q2", "KV_CACHE_TYPE", "f16"),
        ("CTX_SIZE=-5", "CTX_SIZE", "whole number"),
        ("CTX_SIZE=0", "CTX_SIZE", "whole number from 1"),
        ("PARALLEL=two", "PARALLEL", "whole number"),
        ("TEMPERATURE=hot", "TEMPERATURE", "number from 0 to 2"),
        ("MAX_TOKENS=1.5", "MAX_TOKENS", "whole number"),
        ("INFERENCE_IMAGE=ghcr.io/ggml-org/llama.cpp:latest", "INFERENCE_IMAGE", "floats"),
        ("GATEWAY_IMAGE=ghcr.io/berriai/litellm:main-stable", "GATEWAY_IMAGE", "floats"),
        ("GATEWAY_IMAGE=ghcr.io/berriai/litellm", "GATEWAY_IMAGE", "pinned tag"),
        ("HF_ENDPOINT=huggingface.co", "HF_ENDPOINT", "http(s) URL"),
        ("STACK_NAME=my stack", "STACK_NAME", "letters, digits"),
        ("CHAT_MODEL=../secret.gguf", "CHAT_MODEL", "no '..'"),
        ("CHAT_MODEL=/etc/passwd", "CHAT_MODEL", "not an absolute path"),
        ("CODE_MODEL=missing.gguf", "CODE_MODEL", "file not found"),
        ("API_GATEWAY_PORT=", "API_GATEWAY_PORT", "must not be empty"),
    ],
)
def test_validation_names_line_key_value_and_what_is_allowed(
    tmp_path: Path, line: str, key: str, fragment: str
) -> None:
    problems = problems_for(tmp_path, f"# header\n\n{line}\n")
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.key == key
    assert problem.line == 3
    text = str(problem)
    assert text.startswith(f"line 3: {key}=")
    assert fragment in text


def test_model_must_be_gguf(tmp_path: Path) -> None:
    path = write_env(tmp_path, "CHAT_MODEL=notes.gguf\nCODE_MODEL=good.gguf\n")
    (tmp_path / "models" / "notes.gguf").write_text("just text")
    (tmp_path / "models" / "good.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    problems = s.load_settings(path).problems
    assert [p.key for p in problems] == ["CHAT_MODEL"]
    assert "not a GGUF file" in problems[0].message


def test_ports_must_differ_and_lan_needs_a_key(tmp_path: Path) -> None:
    problems = problems_for(
        tmp_path, "API_GATEWAY_PORT=9000\nINFERENCE_PORT=9000\nBIND_ADDRESS=0.0.0.0\n"
    )
    messages = {p.key: p.message for p in problems}
    assert "must differ" in messages["INFERENCE_PORT"]
    assert "LITELLM_MASTER_KEY must be set" in messages["BIND_ADDRESS"]
    assert problems_for(tmp_path, "INFERENCE_PORT=\nAPI_GATEWAY_PORT=8001\n") == []


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.168.1.5", "10.1.2.3", "fe80::1"])
def test_any_address_beyond_loopback_needs_the_master_key(tmp_path: Path, bind: str) -> None:
    (problem,) = problems_for(tmp_path, f"BIND_ADDRESS={bind}\n")
    assert problem.key == "BIND_ADDRESS" and "LITELLM_MASTER_KEY must be set" in problem.message
    assert problems_for(tmp_path, f"BIND_ADDRESS={bind}\nLITELLM_MASTER_KEY=sk-k\n") == []


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.2", "::1"])
def test_loopback_needs_no_key(tmp_path: Path, bind: str) -> None:
    assert problems_for(tmp_path, f"BIND_ADDRESS={bind}\n") == []


def test_invalid_values_fall_back_to_defaults(tmp_path: Path) -> None:
    settings = s.load_settings(write_env(tmp_path, "CTX_SIZE=lots\nPARALLEL=2\n"))
    assert settings.ctx_size == 8192
    assert settings.parallel == 2


def test_set_refuses_invalid_and_leaves_file_untouched(tmp_path: Path) -> None:
    original = "# mine\nCTX_SIZE='4096' # quoted\nAPI_GATEWAY_PORT=8000\n"
    path = write_env(tmp_path, original)
    before = path.stat()
    settings = s.load_settings(path)
    with pytest.raises(SettingsError) as err:
        s.set_setting(settings, "CTX_SIZE", "big")
    assert "line 2: CTX_SIZE=big: must be a whole number" in str(err.value)
    with pytest.raises(SettingsError, match="must differ"):
        s.set_setting(settings, "API_GATEWAY_PORT", "8001")
    with pytest.raises(SettingsError, match="did you mean CTX_SIZE"):
        s.set_setting(settings, "CTX_SIZ", "1")
    assert path.read_text() == original
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    new = s.set_setting(settings, "CTX_SIZE", "2048")
    assert new.ctx_size == 2048
    assert path.read_text() == original.replace("'4096'", "'2048'")


def test_older_problems_elsewhere_do_not_block_an_edit(tmp_path: Path) -> None:
    path = write_env(tmp_path, "GPU=cuda\nCTX_SIZE=1\n")
    s.set_setting(s.load_settings(path), "CTX_SIZE", "2")
    assert path.read_text() == "GPU=cuda\nCTX_SIZE=2\n"


def test_secrets_are_masked() -> None:
    key = "sk-" + "a" * 40
    assert key not in s.mask("LITELLM_MASTER_KEY", key)
    assert s.mask("LITELLM_MASTER_KEY", key).startswith("sk-aa")
    assert s.mask("HF_TOKEN", "hf_short") == "…••••••"
    assert s.mask("CTX_SIZE", "8192") == "8192"
    assert "sk-" + "a" * 40 not in repr(
        s.Settings(Path("x"), Path("."), {}, litellm_master_key=key)
    )


def test_unknown_keys_that_look_secret_are_masked() -> None:
    assert s.mask("OPENAI_API_KEY", "sk-proj-abcdefghijklmnopqrstuvwxyz") == "…••••••"
    assert s.mask("GITHUB_TOKEN", "ghp_x") == "…••••••"
    assert s.mask("DB_PASSWORD", "hunter2") == "…••••••"
    assert s.mask("MY_NOTE", "plain") == "plain"
    assert s.is_secret("my_secret") and not s.is_secret("CTX_SIZE")


def test_a_readable_env_with_a_secret_is_tightened_on_the_next_write(tmp_path: Path) -> None:
    path = write_env(tmp_path, "LITELLM_MASTER_KEY=sk-abc\nCTX_SIZE=1024\n")
    path.chmod(0o644)
    first = s.set_setting(s.load_settings(path), "CTX_SIZE", "2048")
    assert path.stat().st_mode & 0o777 == 0o600
    assert "readable by other users (mode 0644); it is now 0600" in first.notice
    second = s.set_setting(first, "CTX_SIZE", "4096")
    assert second.notice == ""  # said once: the file is private now
    assert path.read_text() == "LITELLM_MASTER_KEY=sk-abc\nCTX_SIZE=4096\n"


def test_a_readable_env_without_secrets_keeps_its_mode(tmp_path: Path) -> None:
    path = write_env(tmp_path, "CTX_SIZE=1024\n")
    path.chmod(0o644)
    assert s.set_setting(s.load_settings(path), "CTX_SIZE", "2048").notice == ""
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_full_disk_during_a_write_loses_nothing(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small") as home:
        original = "# mine\nCTX_SIZE=1024\n" + "# padding to make the rewrite big\n" * 40
        path = write_env(home, original)
        settings = s.load_settings(path)
        fill(home)
        with pytest.raises(EnvFileError) as err:
            s.set_setting(settings, "CTX_SIZE", "2048")
        assert "could not save .env: No space left on device" in err.value.message
        assert err.value.fix and "free some disk space" in err.value.fix
        assert ".env is unchanged" in err.value.fix
        assert path.read_text() == original
        assert sorted(p.name for p in home.iterdir()) == [".env", ".filler", "models"]


def test_new_env_file_from_set_when_missing(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    (tmp_path / "models").mkdir()
    s.set_setting(s.load_settings(path), "CTX_SIZE", "1024")
    text = path.read_text()
    assert "CTX_SIZE=1024\n" in text
    assert "LITELLM_MASTER_KEY=sk-" in text
    assert os.stat(path).st_mode & 0o777 == 0o600
