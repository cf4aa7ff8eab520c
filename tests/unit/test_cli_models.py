"""`llm-tui models | fit | rm` on real GGUF files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gguf_factory import (
    write_not_gguf,
    write_split_set,
    write_tiny_model,
    write_truncated,
)


def llm_tui(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(home / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "--env-file", str(home / ".env"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    write_tiny_model(models / "chat.gguf", name="chat")
    write_tiny_model(models / "spare.gguf", name="spare", seed=3)
    write_split_set(models / "big", "big", shards=2)
    write_truncated(models / "partial.gguf")
    write_not_gguf(models / "notes.gguf")
    (tmp_path / ".env").write_text("CHAT_MODEL=chat.gguf\nCTX_SIZE=2048\n")
    return tmp_path


def test_models_json_lists_metadata_roles_and_broken_files(home: Path) -> None:
    result = llm_tui(home, "models", "--json", "--vram", "4")
    assert result.returncode == 0, result.stderr
    rows = {row["path"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {
        "chat.gguf",
        "spare.gguf",
        "big/big-00001-of-00002.gguf",
        "partial.gguf",
        "notes.gguf",
    }
    chat = rows["chat.gguf"]
    assert chat["role"] == "chat" and chat["quant"] == "F16" and chat["architecture"] == "llama"
    assert chat["context_length"] == 2048 and chat["parameters"] > 0
    assert chat["fit"] == "fits"
    assert rows["big/big-00001-of-00002.gguf"]["shards"] == 2
    assert "short of its last tensor" in rows["partial.gguf"]["broken"]
    assert "not a GGUF file" in rows["notes.gguf"]["broken"]


def test_fit_reports_the_breakdown(home: Path) -> None:
    result = llm_tui(home, "fit", "chat.gguf", "--vram", "0.2", "--ctx", "2048")
    assert result.returncode == 0, result.stderr
    assert "KV cache" in result.stdout and "does not fit" in result.stdout
    assert llm_tui(home, "fit", "../x.gguf", "--vram", "1").returncode == 1


def test_rm_asks_refuses_the_model_in_use_and_deletes_shards(home: Path) -> None:
    refused = llm_tui(home, "rm", "spare.gguf")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    in_use = llm_tui(home, "rm", "chat.gguf", "--yes")
    assert in_use.returncode == 1 and "in use" in in_use.stderr
    assert (home / "models" / "chat.gguf").exists()
    done = llm_tui(home, "rm", "big/big-00001-of-00002.gguf", "--yes")
    assert done.returncode == 0, done.stderr
    assert list((home / "models" / "big").iterdir()) == []
    assert "deleted 2 file(s)" in done.stdout
