"""The real `llm-tui` entry point: --help/--version and the `config` commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.smallfs import fill, small_filesystem

pytestmark = pytest.mark.unit

KEY = "sk-" + "Q" * 40


def llm_tui(
    *args: str, env_file: Path | None = None, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("llm-tui", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "cli.main"]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    return subprocess.run(
        command + list(args),
        capture_output=True,
        text=True,
        input=stdin if stdin is not None else "",
        env={**os.environ, **env},
        timeout=60,
    )


HAND = textwrap.dedent(
    f"""\
    # hand-written, with odd quoting
    export CTX_SIZE = "8192"   # doubled later?
    LITELLM_MASTER_KEY='{KEY}'

    MY_NOTE="keep # this"
    PARALLEL=4 # slots
    """
)


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text(HAND)
    (tmp_path / "models").mkdir()
    return path


def test_version_and_help() -> None:
    assert llm_tui("--version").stdout.strip() == "llm-tui 0.1.0"
    out = llm_tui("--help").stdout
    for command in ("config", "doctor", "up", "down", "status", "swap", "logs", "pull"):
        assert command in out


def test_config_set_changes_only_the_value(env_file: Path) -> None:
    result = llm_tui("config", "set", "PARALLEL", "2", env_file=env_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "PARALLEL=2"
    assert env_file.read_text() == HAND.replace("PARALLEL=4 # slots", "PARALLEL=2 # slots")
    result = llm_tui("config", "set", "CTX_SIZE", "4096", env_file=env_file)
    assert env_file.read_text().splitlines()[1] == 'export CTX_SIZE = "4096"   # doubled later?'


def test_config_set_refuses_bad_value_naming_line_and_key(env_file: Path) -> None:
    result = llm_tui("config", "set", "CTX_SIZE", "huge", env_file=env_file)
    assert result.returncode == 1
    assert "line 2: CTX_SIZE=huge: must be a whole number" in result.stderr
    assert "nothing was written" in result.stderr
    assert "Traceback" not in result.stderr
    assert env_file.read_text() == HAND


def test_config_get_masks_secrets(env_file: Path) -> None:
    masked = llm_tui("config", "get", "LITELLM_MASTER_KEY", env_file=env_file).stdout
    assert KEY not in masked and masked.startswith("sk-QQ")
    shown = llm_tui("config", "get", "LITELLM_MASTER_KEY", "--show-secrets", env_file=env_file)
    assert shown.stdout.strip() == KEY
    assert llm_tui("config", "get", "MY_NOTE", env_file=env_file).stdout == "keep # this\n"
    assert llm_tui("config", "get", "GPU", env_file=env_file).stdout == "auto\n"
    listing = llm_tui("config", "list", env_file=env_file).stdout
    assert KEY not in listing and "MY_NOTE" in listing


def test_config_check_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("GPU=cuda\nFLASH_ATTN=maybe\nAPI_GATEWAY_PORT=99999\n")
    result = llm_tui("config", "check", env_file=path)
    assert result.returncode == 1
    for fragment in ("line 1: GPU=cuda", "line 2: FLASH_ATTN=maybe", "line 3: API_GATEWAY_PORT"):
        assert fragment in result.stderr
    path.write_text("GPU=none\n")
    (tmp_path / "models").mkdir()
    assert llm_tui("config", "check", env_file=path).returncode == 0


def test_env_file_from_environment_and_first_run(tmp_path: Path) -> None:
    path = tmp_path / "stack" / "my.env"
    result = llm_tui("config", "init", LLM_TUI_ENV_FILE=str(path))
    assert result.returncode == 0, result.stderr
    assert path.exists() and path.stat().st_mode & 0o777 == 0o600
    assert "sk-" not in result.stdout  # the new key is never printed
    assert llm_tui("config", "path", LLM_TUI_ENV_FILE=str(path)).stdout.strip() == str(path)


def test_missing_env_file_is_a_clear_error(tmp_path: Path) -> None:
    result = llm_tui("config", "check", env_file=tmp_path / "none.env")
    assert result.returncode == 1
    assert "no settings file" in result.stderr and "llm-tui config init" in result.stderr


def test_unknown_config_action_is_a_usage_error() -> None:
    assert llm_tui("config", "bogus").returncode == 2


def test_a_secret_is_set_from_stdin_never_from_the_command_line(env_file: Path) -> None:
    token = "hf_" + "t" * 30
    result = llm_tui("config", "set", "HF_TOKEN", env_file=env_file, stdin=token + "\n")
    assert result.returncode == 0, result.stderr
    assert token not in result.stdout + result.stderr
    assert f"HF_TOKEN={token}\n" in env_file.read_text()
    dash = llm_tui("config", "set", "HF_TOKEN", "-", env_file=env_file, stdin="hf_other\n")
    assert dash.returncode == 0 and "HF_TOKEN=hf_other\n" in env_file.read_text()
    empty = llm_tui("config", "set", "HF_TOKEN", env_file=env_file, stdin="")
    assert empty.returncode == 1 and "no value for HF_TOKEN on stdin" in empty.stderr


def test_unknown_secret_looking_keys_are_masked_in_list_and_get(env_file: Path) -> None:
    env_file.write_text(env_file.read_text() + "OPENAI_API_KEY=sk-proj-hidden-value\n")
    listing = llm_tui("config", "list", env_file=env_file).stdout
    assert "OPENAI_API_KEY" in listing and "sk-proj-hidden-value" not in listing
    as_json = llm_tui("config", "list", "--json", env_file=env_file).stdout
    assert "sk-proj-hidden-value" not in as_json
    got = llm_tui("config", "get", "OPENAI_API_KEY", env_file=env_file).stdout
    assert "sk-proj-hidden-value" not in got
    shown = llm_tui("config", "get", "OPENAI_API_KEY", "--show-secrets", env_file=env_file)
    assert shown.stdout.strip() == "sk-proj-hidden-value"


def test_config_set_tightens_a_readable_env_and_says_so_once(env_file: Path) -> None:
    env_file.chmod(0o644)
    first = llm_tui("config", "set", "PARALLEL", "2", env_file=env_file)
    assert first.returncode == 0, first.stderr
    assert "it is now 0600" in first.stderr
    assert env_file.stat().st_mode & 0o777 == 0o600
    second = llm_tui("config", "set", "PARALLEL", "3", env_file=env_file)
    assert second.returncode == 0 and second.stderr == ""


def test_config_set_on_a_full_disk_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small") as home:
        path = home / ".env"
        path.write_text(HAND + "# padding\n" * 50)
        (home / "models").mkdir()
        before = path.read_text()
        fill(home)
        result = llm_tui("config", "set", "PARALLEL", "2", env_file=path)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("llm-tui: error: could not save .env: No space left")
        assert path.read_text() == before
