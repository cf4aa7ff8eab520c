"""Tiers, and a per-tier count at the end of every run.

Each test belongs to one tier, by folder: unit, integration (real llama-server, LiteLLM and
fake Hub on loopback), engine (a real Docker Engine), tui (Pilot + snapshots), e2e (tmux
driving the real `llm-tui`). Under ``CI=true`` a real tier that ran no test fails the run.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from tests.support.tiers import in_ci

TIERS = ("unit", "integration", "engine", "tui", "e2e")
REAL_TIERS = ("integration", "engine", "e2e")
_HERE = Path(__file__).parent

_results: dict[str, Counter[str]] = {tier: Counter() for tier in TIERS}


def pytest_configure(config: pytest.Config) -> None:
    # Tests must never reach a real Hub or pick up the developer's own settings.
    os.environ.setdefault("HF_HUB_OFFLINE", "0")
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.pop("LLM_TUI_ENV_FILE", None)


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
    if empty:
        session.config.stash[_EMPTY_TIERS] = empty
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_EMPTY_TIERS = pytest.StashKey[list[str]]()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    empty = config.stash.get(_EMPTY_TIERS, None)
    if empty:
        print(f"\nCI=true: real tier(s) ran no test: {', '.join(empty)}")
