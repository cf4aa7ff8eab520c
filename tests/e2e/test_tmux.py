"""The real `llm-tui` entry point in a private tmux server: keys in, screen text out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.tmux_session import Tmux, llm_tui_in_tmux

pytestmark = pytest.mark.e2e


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    (tmp_path / "models").mkdir()
    with llm_tui_in_tmux(tmp_path, tmp_path / ".env") as server:
        yield server


def test_real_llm_tui_starts_switches_modes_and_quits(tmux: Tmux, tmp_path: Path) -> None:
    # A first run (no model anywhere) opens the guided setup; Esc leaves it.
    tmux.wait_for("Step 1 of 7")
    tmux.send("Escape")
    dashboard = tmux.wait_for("Getting started")
    assert "Gateway" in dashboard and "http://localhost:8000/v1" in dashboard
    assert "none — press 2 to pick one" in dashboard
    # The real checks finish (no engine or GPU needed): each row gets ✓, ! or ✗.
    tmux.wait_for(lambda text: "ready ─" in text and "checking…" not in text)

    tmux.send("2")
    models = tmux.wait_for("No GGUF models in")
    assert "Copy a .gguf file into MODELS_DIR" in models

    tmux.send("6")
    connect = tmux.wait_for("OpenAI API")
    assert "http://localhost:8000/v1" in connect
    # The first tab is Claude Code's, and the default window is too small for it.
    connect = tmux.wait_for("export ANTHROPIC_BASE_URL=http://localhost:8000")
    assert "Claude Code needs 32,768" in connect

    tmux.send("5")
    settings = tmux.wait_for("LITELLM_MASTER_KEY")
    assert "CTX_SIZE" in settings and "8192" in settings
    key = next(
        line.partition("=")[2]
        for line in (tmp_path / ".env").read_text().splitlines()
        if line.startswith("LITELLM_MASTER_KEY=")
    )
    assert key and key not in settings  # masked on screen

    tmux.send("q")
    assert tmux.wait_dead() == 0
