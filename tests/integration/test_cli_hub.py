"""`llm-tui search | files | pull | fit REPO:QUANT` against the fake Hub over HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fakehub import FakeHub
from tests.support.gguf_factory import write_split_set, write_tiny_model


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("payload")
    write_tiny_model(root / "m-Q8_0.gguf", name="m", seed=1, file_type=7)
    write_tiny_model(root / "m-F16.gguf", name="m", seed=1, file_type=1)
    shards = write_split_set(root / "split", "m-BF16", shards=2)
    out = {
        "m-Q8_0.gguf": (root / "m-Q8_0.gguf").read_bytes(),
        "m-F16.gguf": (root / "m-F16.gguf").read_bytes(),
        "README.md": b"# tiny\n",
    }
    for shard in shards:
        out[f"BF16/{shard.name}"] = shard.read_bytes()
    return out


@pytest.fixture
def hub(files: dict[str, bytes]) -> Iterator[FakeHub]:
    with FakeHub() as fake:
        fake.add_repo("org/tiny-GGUF", files, downloads=500, likes=7)
        fake.add_repo("org/other-GGUF", {"x-Q4_K_M.gguf": files["m-Q8_0.gguf"]}, downloads=10)
        fake.add_repo("org/locked-GGUF", {"l-Q4_0.gguf": files["m-Q8_0.gguf"]}, gated=True)
        yield fake


@pytest.fixture
def home(tmp_path: Path, hub: FakeHub) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / ".env").write_text(f"HF_ENDPOINT={hub.url}\n")
    return tmp_path


def llm_tui(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(home / "cache"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "stack.cli", "--env-file", str(home / ".env"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_search_sorted_by_downloads(home: Path) -> None:
    result = llm_tui(home, "search", "GGUF", "--json")
    assert result.returncode == 0, result.stderr
    repos = [r["repo_id"] for r in json.loads(result.stdout)]
    assert repos.index("org/tiny-GGUF") < repos.index("org/other-GGUF")
    text = llm_tui(home, "search", "tiny").stdout
    assert "org/tiny-GGUF" in text and "org/other-GGUF" not in text


def test_files_groups_quants_with_sizes_and_fit(home: Path, files: dict[str, bytes]) -> None:
    result = llm_tui(home, "files", "org/tiny-GGUF", "--json", "--vram", "1")
    assert result.returncode == 0, result.stderr
    rows = {row["quant"]: row for row in json.loads(result.stdout)["files"]}
    assert set(rows) == {"Q8_0", "F16", "BF16"}
    assert rows["Q8_0"]["size"] == len(files["m-Q8_0.gguf"])
    assert rows["BF16"]["shards"] == 2 and len(rows["BF16"]["files"]) == 2
    assert rows["Q8_0"]["sha256"] == [hashlib.sha256(files["m-Q8_0.gguf"]).hexdigest()]
    assert rows["F16"]["fit"] == "fits"


def test_fit_remote_quant_reads_only_the_header(home: Path, hub: FakeHub) -> None:
    result = llm_tui(home, "fit", "org/tiny-GGUF:Q8_0", "--vram", "1")
    assert result.returncode == 0, result.stderr
    assert "org/tiny-GGUF:Q8_0" in result.stdout and "fits" in result.stdout
    ranged = [r for r in hub.requests if r.method == "GET" and r.file is not None]
    assert ranged and all(r.range and r.range.startswith("bytes=0-") for r in ranged)


def test_pull_downloads_verifies_and_prints_sha(home: Path, files: dict[str, bytes]) -> None:
    result = llm_tui(home, "pull", "org/tiny-GGUF", "q8_0")
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(files["m-Q8_0.gguf"]).hexdigest()
    assert f"{digest}  m-Q8_0.gguf" in result.stdout
    assert (home / "models" / "m-Q8_0.gguf").read_bytes() == files["m-Q8_0.gguf"]
    assert "serve it: llm-tui config set CHAT_MODEL m-Q8_0.gguf" in result.stdout
    assert "done" in result.stderr  # plain progress lines when not a terminal


def test_pull_split_set_into_its_folder(home: Path) -> None:
    result = llm_tui(home, "pull", "org/tiny-GGUF", "BF16")
    assert result.returncode == 0, result.stderr
    folder = home / "models" / "m-BF16"
    assert sorted(p.name for p in folder.iterdir()) == [
        "m-BF16-00001-of-00002.gguf",
        "m-BF16-00002-of-00002.gguf",
    ]
    models = json.loads(llm_tui(home, "models", "--json").stdout)
    assert [m["shards"] for m in models if m["path"].startswith("m-BF16/")] == [2]


def test_pull_resumes_after_a_dropped_connection(
    home: Path, hub: FakeHub, files: dict[str, bytes]
) -> None:
    hub.faults.drop_after_bytes = 50_000
    hub.faults.drop_times = 1
    result = llm_tui(home, "pull", "org/tiny-GGUF", "m-F16.gguf")
    assert result.returncode == 0, result.stderr
    assert (home / "models" / "m-F16.gguf").read_bytes() == files["m-F16.gguf"]
    ranges = [
        r.range
        for r in hub.requests
        if r.method == "GET" and r.file == ("org/tiny-GGUF", "m-F16.gguf")
    ]
    assert any(r and r.startswith("bytes=50000-") for r in ranges), ranges
    assert hub.bytes_served("org/tiny-GGUF", "m-F16.gguf") == len(files["m-F16.gguf"])


def test_pull_errors_are_plain(home: Path) -> None:
    missing = llm_tui(home, "pull", "org/tiny-GGUF", "Q2_K")
    assert missing.returncode == 1
    assert "has no GGUF 'Q2_K'" in missing.stderr and "BF16, F16, Q8_0" in missing.stderr
    gated = llm_tui(home, "pull", "org/locked-GGUF", "Q4_0")
    assert gated.returncode == 1 and "gated" in gated.stderr and "HF_TOKEN" in gated.stderr
    nothing = llm_tui(home, "files", "org/nope-GGUF")
    assert nothing.returncode == 1 and "not found" in nothing.stderr.lower()
    for result in (missing, gated, nothing):
        assert "Traceback" not in result.stderr
    assert not any((home / "models").iterdir())
