"""Tiers, and a per-tier count at the end of every run.

Each test belongs to one tier, by folder: unit, integration (real llama-server, LiteLLM and
fake Hub on loopback), engine (a real Docker Engine), tui (Pilot + snapshots), e2e (tmux
driving the real `llm-tui`). Under ``CI=true`` a real tier that ran no test, or any skipped
test of a real tier, fails the run: CI must never pass by quietly not running something.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.tiers import in_ci

TIERS = ("unit", "integration", "engine", "tui", "e2e")
REAL_TIERS = ("integration", "engine", "e2e")
_HERE = Path(__file__).parent

_results: dict[str, Counter[str]] = {tier: Counter() for tier in TIERS}
_skipped_real: list[str] = []

# The real Hub's hosts: a test that resolves one has escaped the fake Hub.
REAL_HUB_HOSTS = ("huggingface.co", "hf.co")


def _is_real_hub(host: Any) -> bool:
    name = (host.decode() if isinstance(host, bytes) else str(host or "")).lower().rstrip(".")
    return any(name == h or name.endswith("." + h) for h in REAL_HUB_HOSTS)


def pytest_configure(config: pytest.Config) -> None:
    # Tests must never pick up the developer's own settings or report telemetry.
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.pop("LLM_TUI_ENV_FILE", None)
    os.environ.pop("HF_TOKEN", None)
    # …nor reach the real Hub (HF_HUB_OFFLINE would also block the fake Hub, which speaks
    # HTTP through the same client): resolving its names fails in this process.
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if _is_real_hub(host):
            raise socket.gaierror(socket.EAI_NONAME, f"tests may not reach the real Hub ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def tier_of(item: pytest.Item) -> str:
    try:
        relative = Path(str(item.path)).relative_to(_HERE)
    except ValueError:
        return "unit"
    top = relative.parts[0] if len(relative.parts) > 1 else "unit"
    return top if top in TIERS else "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item)
        if not item.get_closest_marker(tier):
            item.add_marker(getattr(pytest.mark, tier))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tier = next((t for t in TIERS if t in report.keywords), "unit")
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _results[tier][report.outcome] += 1
        if report.outcome == "skipped" and tier in REAL_TIERS:
            _skipped_real.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.section("tiers")
    for tier in TIERS:
        counts = _results[tier]
        line = ", ".join(f"{counts[o]} {o}" for o in ("passed", "failed", "skipped"))
        terminalreporter.write_line(f"{tier:<12} {line}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not in_ci() or exitstatus != 0:
        return
    selected = {tier_of(item) for item in session.items}
    empty = [t for t in REAL_TIERS if t in selected and _results[t]["passed"] == 0]
    complaints = [f"real tier(s) ran no test: {', '.join(empty)}"] if empty else []
    if _skipped_real:
        complaints.append(
            "real-tier test(s) skipped: "
            + ", ".join(_skipped_real[:10])
            + (f" (+{len(_skipped_real) - 10} more)" if len(_skipped_real) > 10 else "")
        )
    if complaints:
        session.config.stash[_COMPLAINTS] = complaints
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_COMPLAINTS = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def remote_host(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A Docker Engine on "another machine" (tests/support/remote_host.py), one per session."""
    from tests.support.remote_host import remote_host_for_tests

    yield from remote_host_for_tests(tmp_path_factory.mktemp("remote-host"))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    for complaint in config.stash.get(_COMPLAINTS, []):
        print(f"\nCI=true: {complaint}")
