"""bench/run.py: the page says where and when each row was measured, after partial runs too."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys
path = sys.argv[sys.argv.index("--json") + 1]  # rows of {name}, as bench/common.py writes
json.dump([{{"metric": "{name} speed", "ours": 2.0, "unit": "x", "ok": True}}], open(path, "w"))
"""


@pytest.fixture
def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("bench_a", "bench_b"):
        (tmp_path / f"{name}.py").write_text(SCRIPT.format(name=name))
    monkeypatch.setattr(module, "BENCH", tmp_path)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "RESULTS.md")
    monkeypatch.setattr(module, "ROWS", tmp_path / "results.json")
    monkeypatch.setattr(module, "CHART", tmp_path / "results.png")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "chart", lambda rows: False)
    return module


def run(bench: ModuleType, monkeypatch: pytest.MonkeyPatch, stamp: str, *only: str) -> str:
    monkeypatch.setattr(bench, "run_stamp", lambda: stamp)
    monkeypatch.setattr(sys, "argv", ["run.py", *only])
    assert bench.main() == 0
    return str((bench.RESULTS).read_text())


def head(page: str) -> list[str]:
    return page.split("\n\n")[1].splitlines()  # the stamp lines under the title


ONE = "Machine: one. Date: 2026-01-01 10:00 UTC. Commit: aaa"
TWO = "Machine: two. Date: 2026-01-02 10:00 UTC. Commit: bbb"
THREE = "Machine: three. Date: 2026-01-03 10:00 UTC. Commit: ccc"


def kept(script: str, stamp: str) -> str:
    return f"Rows of {script}: kept from an earlier run ({stamp})."


def test_kept_rows_keep_the_stamp_of_the_run_that_measured_them(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert head(run(bench, monkeypatch, ONE)) == [f"{ONE}."]
    assert head(run(bench, monkeypatch, TWO, "bench_a")) == [f"{TWO}.", kept("bench_b.py", ONE)]
    # bench_a again: bench_b's rows are still the first run's, not the last page's.
    assert head(run(bench, monkeypatch, THREE, "bench_a")) == [
        f"{THREE}.",
        kept("bench_b.py", ONE),
    ]
    rows = {r["script"]: r["measured"] for r in json.loads(bench.ROWS.read_text())}
    assert rows == {"bench_a.py": THREE, "bench_b.py": ONE}


def test_rows_from_before_stamps_take_the_one_their_page_gave_them(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        {"metric": f"{name} speed", "ours": 2.0, "unit": "x", "ok": True, "script": f"{name}.py"}
        for name in ("bench_a", "bench_b", "bench_c")
    ]
    bench.ROWS.write_text(json.dumps(rows))
    bench.RESULTS.write_text(f"# Benchmark results\n\n{TWO}.\n{kept('bench_b.py', ONE)}\n")
    (bench.BENCH / "bench_c.py").unlink(missing_ok=True)  # only its rows are left
    assert head(run(bench, monkeypatch, THREE, "bench_a")) == [
        f"{THREE}.",
        kept("bench_b.py", ONE),
        kept("bench_c.py", TWO),
    ]


def test_rewrite_keeps_the_page_stamp_and_every_row_stamp(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(bench, monkeypatch, ONE)
    page = run(bench, monkeypatch, TWO, "bench_a")
    monkeypatch.setattr(sys, "argv", ["run.py", "--rewrite"])
    assert bench.main() == 0
    assert bench.RESULTS.read_text() == page
