"""`llm-tui search | files | pull | fit REPO:QUANT` against the fake Hub over HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stack.hub.client import Hub
from stack.hub.downloads import Downloader, DownloadRequest, JobState
from stack.hub.files import pick_entry
from stack.hub.parts import file_size
from stack.settings import load_settings
from tests.support.fakehub import FakeHub
from tests.support.gguf_factory import write_split_set, write_tiny_model

TIMEOUT = 60.0


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


def _command(home: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "XDG_CACHE_HOME": str(home / "cache"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_TOKEN", None)
    return [sys.executable, "-m", "cli.main", "--env-file", str(home / ".env"), *args], env


def llm_tui(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command, env = _command(home, *args)
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL
    )


def _wait_for(test: Callable[[], bool], what: str) -> None:
    """Poll a state another process changes; the deadline only reports a hang."""
    deadline = time.monotonic() + TIMEOUT
    while not test():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


def _files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _file_gets(hub: FakeHub, name: str) -> int:
    return sum(1 for r in hub.requests if r.method == "GET" and r.file == ("org/tiny-GGUF", name))


def _request(hub: FakeHub, name: str) -> DownloadRequest:
    listing = Hub(endpoint=hub.url).list_gguf_files("org/tiny-GGUF")
    return DownloadRequest.for_entry(listing, pick_entry(listing, name))


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


# -- one download of a file at a time, across processes ---------------------------------------

HELD = 50_000  # the fake Hub holds each body here, so the first download is caught mid-file


def test_a_download_elsewhere_is_refused_while_pull_has_the_file(
    home: Path, hub: FakeHub, files: dict[str, bytes]
) -> None:
    hub.faults.hold_after_bytes = HELD
    command, env = _command(home, "pull", "org/tiny-GGUF", "m-F16.gguf")
    pull = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    models = home / "models"
    try:
        hub.wait_held(timeout=TIMEOUT)
        _wait_for(lambda: file_size(models / "m-F16.gguf.part") == HELD, "pull wrote its bytes")
        before = _files_in(models)
        with Downloader.from_settings(load_settings(home / ".env")) as other:
            refused = other.enqueue(_request(hub, "m-F16.gguf")).wait(TIMEOUT)
        assert refused.state is JobState.FAILED
        assert refused.error is not None
        assert refused.error.message == (
            f"m-F16.gguf is being downloaded by another llm-tui (pid {pull.pid})"
        )
        assert (
            refused.error.fix == f"wait for it to finish, or stop it (kill {pull.pid}), then retry"
        )
        assert _files_in(models) == before  # not a byte touched
        assert _file_gets(hub, "m-F16.gguf") == 1  # and nothing asked of the server
    finally:
        hub.release()
        _, stderr = pull.communicate(timeout=TIMEOUT)
    assert pull.returncode == 0, stderr
    assert _files_in(models) == {"m-F16.gguf": files["m-F16.gguf"]}


def test_pull_is_refused_while_another_process_has_the_file(
    home: Path, hub: FakeHub, files: dict[str, bytes]
) -> None:
    hub.faults.hold_after_bytes = HELD
    models = home / "models"
    with Downloader.from_settings(load_settings(home / ".env")) as ours:
        job = ours.enqueue(_request(hub, "m-F16.gguf"))
        try:
            hub.wait_held(timeout=TIMEOUT)
            _wait_for(lambda: job.bytes_done == HELD, "our bytes were written")
            before = _files_in(models)
            refused = llm_tui(home, "pull", "org/tiny-GGUF", "m-F16.gguf")
            assert refused.returncode == 1
            assert (
                f"m-F16.gguf is being downloaded by another llm-tui (pid {os.getpid()})"
                in refused.stderr
            )
            assert f"kill {os.getpid()}" in refused.stderr
            assert "Traceback" not in refused.stderr
            assert _files_in(models) == before
            assert _file_gets(hub, "m-F16.gguf") == 1
        finally:
            hub.release()
        assert job.wait(TIMEOUT).state is JobState.DONE
    assert _files_in(models) == {"m-F16.gguf": files["m-F16.gguf"]}


def test_pull_sends_hf_token_only_to_a_trusted_mirror(
    home: Path, hub: FakeHub, files: dict[str, bytes]
) -> None:
    hub.allowed_tokens.add("hf_ok")
    (home / ".env").write_text(f"HF_ENDPOINT={hub.url}\nHF_TOKEN=hf_ok\n")
    untrusted = llm_tui(home, "pull", "org/locked-GGUF", "Q4_0")
    assert untrusted.returncode == 1 and "gated" in untrusted.stderr
    assert "HF_TOKEN is not sent to" in untrusted.stderr
    assert "config set HF_TRUST_ENDPOINT true" in untrusted.stderr
    assert hub.requests and all("authorization" not in r.headers for r in hub.requests)

    (home / ".env").write_text(f"HF_ENDPOINT={hub.url}\nHF_TOKEN=hf_ok\nHF_TRUST_ENDPOINT=true\n")
    hub.clear_requests()
    trusted = llm_tui(home, "pull", "org/locked-GGUF", "Q4_0")
    assert trusted.returncode == 0, trusted.stderr
    assert (home / "models" / "l-Q4_0.gguf").read_bytes() == files["m-Q8_0.gguf"]
    resolves = [r for r in hub.requests if "/resolve/" in r.path]
    assert resolves and all(r.headers.get("authorization") == "Bearer hf_ok" for r in resolves)
