"""llm-tui beside the terminal apps a user would pick instead: oterm and parLlama.

    eval "$(scripts/dockerd start)"
    .venv/bin/python bench/bench_peers.py [--runs 5] [--json PATH]

oterm and parLlama are the Textual front ends people run for a local model (both for
Ollama). Each is installed by this script into a venv of its own under $LLM_TUI_CACHE
(pinned, never into the project's), and every app — llm-tui, a bare Textual app (Header,
Static, Footer), oterm, parLlama — is started the same way: on an 80x24 pseudo-terminal,
timed from spawn to its first real screen (text only that screen shows, timestamped as the
bytes arrive), then left alone: CPU % of a core and RSS over a quiet window. Runs alternate
app by app, round by round, so the machine's noise falls on all of them alike.

llm-tui shows its dashboard against a real Docker Engine with the stack down: nobody runs
Ollama here, so oterm and parLlama show their first screen with no server behind them
either, and no app has a model loading. What the dashboard costs with the stack up (status
polls, events, the GPU sampler) is bench_tui's idle row.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_tui import (  # noqa: E402
    BARE_APP,
    DASHBOARD_MARK,
    Terminal,
    cpu_seconds,
    llm_tui,
    rss_mb,
    terminal_env,
)
from bench.common import Result, cli, finish, result  # noqa: E402

CACHE = Path(os.environ.get("LLM_TUI_CACHE", Path.home() / ".cache" / "llm-tui-test"))
SETTLE_S = 3.0  # after the first screen: start-up work (imports, first polls) is done
WINDOW_S = 10.0  # the quiet window CPU and RSS are read over


@dataclass(frozen=True)
class Peer:
    name: str
    package: str  # pinned requirement
    program: str  # the console script it installs
    marker: bytes  # text of its first real screen


PEERS = (
    Peer("oterm", "oterm==0.26.1", "oterm", b"Welcome to oterm"),
    Peer("parLlama", "parllama==0.10.1", "parllama", b"PAR LLAMA"),
)


def installed(peer: Peer) -> Path:
    """The peer's console script, from its own cached venv (made on first use)."""
    venv = CACHE / f"ref-{peer.package.replace('==', '-')}"
    program = venv / "bin" / peer.program
    if program.exists():
        return program
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", peer.package], check=True
    )
    return program


@dataclass
class Reading:
    first_screen_ms: float
    idle_cpu_percent: float
    rss_mib: float


def measure(command: list[str], marker: bytes, env: dict[str, str], cwd: Path) -> Reading:
    terminal = Terminal(command, env, cwd)
    try:
        wall = terminal.wait_for(marker)
        pid = terminal.process.pid
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:  # a benchmark's quiet time, not a test's wait
            time.sleep(0.1)
        start_cpu, start = cpu_seconds(pid), time.perf_counter()
        time.sleep(WINDOW_S)
        cpu = (cpu_seconds(pid) - start_cpu) / (time.perf_counter() - start) * 100
        return Reading(wall * 1000, cpu, rss_mb(pid))
    finally:
        terminal.stop()


def llm_tui_home(home: Path) -> Path:
    """A configured llm-tui (a model chosen, so no first-run guide) with the stack down."""
    from tests.support.gguf_factory import write_tiny_model

    write_tiny_model(home / "models" / "alpha.gguf", name="alpha", seed=1)
    env_file = home / ".env"
    env_file.write_text(
        "STACK_NAME=llm-tui-bench-peers\nCHAT_MODEL=alpha.gguf\nGPU=none\n"
        "LITELLM_MASTER_KEY=sk-bench-peers-0123456789abcdef0123456789\n"
    )
    return env_file


def bench_peers(runs: int) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        home = Path(tmp)
        (home / "xdg").mkdir()
        bare = home / "bare_app.py"
        bare.write_text(BARE_APP)
        env_file = llm_tui_home(home)
        env = terminal_env(
            {
                "XDG_CONFIG_HOME": str(home / "xdg"),
                "XDG_DATA_HOME": str(home / "xdg"),
                "XDG_CACHE_HOME": str(home / "xdg"),
                "HOME": str(home / "xdg"),  # parLlama keeps its settings under ~/.parllama
                "OLLAMA_HOST": "http://127.0.0.1:9",  # nothing listens: no server, quickly
                "OLLAMA_URL": "http://127.0.0.1:9",
            }
        )
        apps: dict[str, tuple[list[str], bytes]] = {
            "llm-tui": ([*llm_tui(), "--env-file", str(env_file)], DASHBOARD_MARK),
            "bare Textual app": ([sys.executable, str(bare)], b"bench-ready"),
        }
        for peer in PEERS:
            apps[peer.name] = ([str(installed(peer))], peer.marker)
        readings: dict[str, list[Reading]] = {name: [] for name in apps}
        names = list(apps)
        for run in range(runs + 1):  # the first round warms the page cache, not counted
            order = names if run % 2 else names[::-1]
            for name in order:
                command, marker = apps[name]
                reading = measure(command, marker, env, home)
                if run:
                    readings[name].append(reading)
    return rows(readings)


def rows(readings: dict[str, list[Reading]]) -> list[Result]:
    ours = readings["llm-tui"]
    out: list[Result] = []
    metrics: list[tuple[str, str, Callable[[Reading], float], str]] = [
        ("first real screen", "ms", lambda r: r.first_screen_ms, "<= 1.5x"),
        ("idle CPU on the first screen", "%", lambda r: r.idle_cpu_percent, ""),
        ("idle RSS on the first screen", "MiB", lambda r: r.rss_mib, ""),
    ]
    for label, unit, value, target in metrics:
        for name, theirs in readings.items():
            if name == "llm-tui":
                continue
            checked = target if name == "bare Textual app" else ""
            out.append(
                result(
                    f"{label}: llm-tui vs {name}",
                    [value(r) for r in ours],
                    unit,
                    reference=[value(r) for r in theirs],
                    reference_name=name,
                    target=checked,
                    on="ratio",
                    note=bare_note(label, [value(r) for r in ours], [value(r) for r in theirs])
                    if name == "bare Textual app"
                    else "",
                )
            )
    return out


def bare_note(label: str, ours: list[float], bare: list[float]) -> str:
    """How the bare-app rows were measured; for the first screen, the ratio run by run and
    what the difference is made of."""
    note = (
        "80x24 pseudo-terminal, spawn to the first screen's text; idle: "
        f"{WINDOW_S:g} s window after {SETTLE_S:g} s"
    )
    if label != "first real screen" or not ours or len(ours) != len(bare):
        return note
    ratios = [a / b for a, b in zip(ours, bare, strict=True) if b]
    return (
        f"{note}; ratio run by run {min(ratios):.2f}-{max(ratios):.2f}, the bare app "
        f"{min(bare):.0f}-{max(bare):.0f} ms. What the difference is made of: see the cold "
        "start row (bench_tui.py), the same start timed to its first frame"
    )


def main() -> None:
    args = cli(__doc__.splitlines()[0]).parse_args()
    finish(bench_peers(args.runs), args.json)


if __name__ == "__main__":
    main()
