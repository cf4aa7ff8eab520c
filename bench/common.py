"""What every benchmark shares: results with their reference and target, measured fairly.

A benchmark measures ours and a reference side by side in the same run, alternating run by
run (this machine is shared and noisy: absolute times drift, ratios measured together
hold), and reports the median with min-max. `bench/run` collects every script's results
(``--json PATH``) into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import operator
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Result:
    """One line of the results table."""

    metric: str  # what was measured, as a reader says it
    ours: float  # the median
    unit: str  # "s", "ms", "tok/s", "lines/s", "MiB", "%", "x"
    low: float | None = None  # min of the runs
    high: float | None = None  # max of the runs
    runs: int = 1
    reference: float | None = None  # the alternative's median, same unit, same run
    reference_name: str = ""
    target: str = ""  # e.g. "<= 1.5x" or ">= 50000"; "" = for information
    ok: bool | None = None  # None when there is no target
    note: str = ""  # what dominates when a target is missed, how it was measured

    @property
    def ratio(self) -> float | None:
        if self.reference in (None, 0):
            return None
        return self.ours / self.reference  # type: ignore[operator]


def summary(samples: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max) of ``samples``."""
    return statistics.median(samples), min(samples), max(samples)


def percentile(samples: Sequence[float], p: float) -> float:
    """The ``p``-th percentile, nearest rank (no interpolation between two runs)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def alternate(
    runs: int, ours: Callable[[], float], reference: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Measure ``ours`` and ``reference`` in turn, ``runs`` times each (ref first on odd runs)."""
    a: list[float] = []
    b: list[float] = []
    for i in range(runs):
        if i % 2:
            b.append(reference())
            a.append(ours())
        else:
            a.append(ours())
            b.append(reference())
    return a, b


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def meets(value: float, target: str) -> bool:
    """``value`` against a target such as "<= 1.5" (the number only; units are prose)."""
    op, _, number = target.partition(" ")
    return bool(_OPS[op](value, float(number.rstrip("x%").replace(",", ""))))


def result(
    metric: str,
    samples: Sequence[float],
    unit: str,
    *,
    reference: Sequence[float] | None = None,
    reference_name: str = "",
    target: str = "",
    on: str = "ours",  # what the target is checked on: "ours" or "ratio"
    note: str = "",
) -> Result:
    """A `Result` from raw samples; the target is checked on the median (or the ratio)."""
    median, low, high = summary(samples)
    ref = statistics.median(reference) if reference else None
    value = median if on == "ours" or not ref else median / ref
    return Result(
        metric,
        median,
        unit,
        low,
        high,
        len(samples),
        ref,
        reference_name,
        target,
        meets(value, target) if target else None,
        note,
    )


def cli(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, help="also write the results here (for bench/run)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each side (default 5)")
    return parser


def report(results: Sequence[Result], json_path: Path | None = None) -> int:
    """Print the table; write JSON when asked; exit status 1 when a target is missed."""
    width = max((len(r.metric) for r in results), default=10)
    for r in results:
        spread = f" ({r.low:.4g}-{r.high:.4g})" if r.low is not None and r.runs > 1 else ""
        ref = f"  vs {r.reference:.4g} {r.reference_name}" if r.reference is not None else ""
        ratio = f" = {r.ratio:.2f}x" if r.ratio is not None else ""
        verdict = "" if r.ok is None else f"  [{'ok' if r.ok else 'MISSED'} {r.target}]"
        print(f"{r.metric:<{width}}  {r.ours:.4g} {r.unit}{spread}{ref}{ratio}{verdict}")
    if json_path is not None:
        json_path.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 1 if any(r.ok is False for r in results) else 0


def finish(results: Sequence[Result], json_path: Path | None) -> None:
    sys.exit(report(results, json_path))
