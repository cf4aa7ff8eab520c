"""Run every benchmark and write bench/RESULTS.md (and a chart of the ratios).

Called by `bench/run`, which first sets up the real parts the benchmarks need. Each
bench_*.py that understands ``--json PATH`` contributes rows (see bench/common.py); one that
does not is run as it is and counted by its exit status, its output kept in the appendix.
GPU benchmarks (bench_gpu*.py) run only with ``--gpu``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
CHART = BENCH / "results.png"
ROWS = BENCH / "results.json"  # every row of RESULTS.md, so a partial run can update it


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // (1 << 20)
        memory = f", {mem} GiB RAM"
    except (OSError, ValueError, IndexError):
        memory = ""
    gpu = ""
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
        out = subprocess.run(query, capture_output=True, text=True).stdout.strip()
        gpu = f", GPU {out}" if out else ""
    return f"{cpu}, {os.cpu_count()} cores{memory}{gpu}; Python {platform.python_version()}"


def commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "?"


def accepts_json(script: Path) -> bool:
    return "--json" in script.read_text()


def run_one(script: Path, runs: int | None, work: Path) -> tuple[list[dict[str, Any]], str, int]:
    """(rows, output, exit status) of one benchmark script."""
    command = [sys.executable, str(script)]
    rows_path = work / f"{script.stem}.json"
    if accepts_json(script):
        command += ["--json", str(rows_path)]
        if runs is not None:
            command += ["--runs", str(runs)]
    print(f"==> {script.name}", flush=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    output = (done.stdout + done.stderr).strip()
    print(output, flush=True)
    rows: list[dict[str, Any]] = []
    if rows_path.exists():
        rows = json.loads(rows_path.read_text())
        for row in rows:
            row["script"] = script.name
    return rows, output, done.returncode


def number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| metric | ours (median, min-max) | reference | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        spread = ""
        if r.get("low") is not None and r.get("runs", 1) > 1:
            spread = f" ({number(r['low'])}-{number(r['high'])}, {r['runs']} runs)"
        ref = ""
        if r.get("reference") is not None:
            ref = f"{number(r['reference'])} {r['unit']} {r.get('reference_name', '')}".strip()
        ratio = ""
        if r.get("reference"):
            ratio = f"{r['ours'] / r['reference']:.2f}x"
        verdict = {True: "pass", False: "**MISSED**", None: ""}[r.get("ok")]
        lines.append(
            f"| {r['metric']} | {number(r['ours'])} {r['unit']}{spread} | {ref} | {ratio} "
            f"| {r.get('target', '')} | {verdict} |"
        )
    return lines


def chart(rows: list[dict[str, Any]]) -> bool:
    """A bar chart of every ratio (ours / reference), when matplotlib can be had."""
    with_ref = [r for r in rows if r.get("reference")]
    if not with_ref:
        return False
    site = os.environ.get("LLM_TUI_BENCH_SITE")
    if site and site not in sys.path:
        sys.path.append(site)  # after the project's own packages
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False

    def better(unit: str) -> str:
        return "higher is better" if unit.endswith("/s") else "lower is better"

    labels = [f"{r['metric'][:56]}  ({better(r['unit'])})" for r in with_ref]
    ratios = [r["ours"] / r["reference"] for r in with_ref]
    colours = ["#c0392b" if r.get("ok") is False else "#2e86c1" for r in with_ref]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.5))
    # Each bar runs from 1 (as fast as the reference) to the ratio, either way.
    ax.barh(labels, [r - 1 for r in ratios], left=1, color=colours)
    ax.axvline(1.0, color="#555", linewidth=1)
    ax.set_xscale("log")  # 0.01x and 20x on one chart; 1 = as fast as the reference
    ax.set_xlabel("ours / reference (same run, log scale; red: a target missed)")
    ax.invert_yaxis()
    ax.set_title("llm-tui against the alternatives")
    fig.tight_layout()
    fig.savefig(CHART, dpi=110)
    return True


def run_stamp() -> str:
    """Where and when rows are measured: each row keeps the stamp of the run that made it."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"Machine: {machine()}. Date: {now}. Commit: {commit()}"


def stamp_date(stamp: str) -> str:
    """What orders stamps: their date (``2026-12-04 04:08 UTC`` sorts as text)."""
    return stamp.split("Date:")[-1]


def kept_lines(rows: list[dict[str, Any]], stamp: str) -> list[str]:
    """A line per earlier run whose rows the page keeps: its scripts, machine and date."""
    scripts: dict[str, set[str]] = {}
    for row in rows:
        measured = str(row.get("measured") or stamp)
        if measured != stamp:
            scripts.setdefault(measured, set()).add(str(row.get("script")))
    return [
        f"Rows of {', '.join(sorted(names))}: kept from an earlier run ({measured})."
        for measured, names in sorted(scripts.items(), key=lambda item: stamp_date(item[0]))
    ]


def page_stamps() -> tuple[str, dict[str, str]]:
    """What the last page said: its run's stamp, and the stamp of each script it kept (for
    rows written before each row carried its own)."""
    if not RESULTS.exists():
        return "", {}
    header, kept = "", {}
    for line in RESULTS.read_text().splitlines():
        if line.startswith("Machine: ") and not header:
            header = line.rstrip(".")
        elif line.startswith("Rows of ") and ": kept from an earlier run (" in line:
            names, _, measured = line.removeprefix("Rows of ").partition(
                ": kept from an earlier run ("
            )
            for name in names.split(", "):
                kept[name] = measured.rstrip(".").removesuffix(")")
    return header, kept


def stamp_rows(rows: list[dict[str, Any]]) -> str:
    """Rows without a stamp of their own get the one the last page gave them; returns the
    last page's own stamp ("" without a page)."""
    header, kept = page_stamps()
    for row in rows:
        if not row.get("measured"):
            row["measured"] = kept.get(str(row.get("script")), header)
    return header


def write(
    rows: list[dict[str, Any]], legacy: list[tuple[str, str, int]], drew: bool, stamp: str
) -> None:
    missed = [r for r in rows if r.get("ok") is False]
    lines = [
        "# Benchmark results",
        "",
        f"{stamp}.",
        *kept_lines(rows, stamp),
        "",
        "Each figure is the median of its runs (min-max in brackets); ours and the reference",
        "are measured in the same run, alternating run by run. Written by `bench/run`.",
        "",
        *table(rows),
        "",
    ]
    if drew:
        lines += ["![ratios](results.png)", ""]
    if missed:
        lines += ["## Missed targets", ""]
        for r in missed:
            lines.append(
                f"- **{r['metric']}**: {number(r['ours'])} {r['unit']} against "
                f"{r['target']}. {r.get('note', '')}".rstrip()
            )
        lines.append("")
    notes = [r for r in rows if r.get("note") and r.get("ok") is not False]
    if notes:
        lines += ["## Notes", ""]
        lines += [f"- {r['metric']}: {r['note']}" for r in notes]
        lines.append("")
    if legacy:
        lines += ["## Other benchmarks (their own output)", ""]
        for name, output, code in legacy:
            lines += [f"### {name} ({'pass' if code == 0 else 'MISSED or failed'})", "", "```"]
            lines += [output[-4000:], "```", ""]
    RESULTS.write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="also run the GPU benchmarks")
    parser.add_argument("--runs", type=int, help="runs per side, for scripts that take it")
    parser.add_argument(
        "only",
        nargs="*",
        help="run only these scripts (e.g. bench_gateway); the others keep their last rows",
    )
    parser.add_argument(
        "--rewrite", action="store_true", help="only rewrite RESULTS.md and the chart"
    )
    args = parser.parse_args()
    if args.rewrite:  # from the rows of the last run, e.g. after changing the page's layout
        rows = json.loads(ROWS.read_text())
        header = stamp_rows(rows)
        newest = max((str(r["measured"]) for r in rows), key=stamp_date)
        ROWS.write_text(json.dumps(rows, indent=1) + "\n")
        write(rows, [], chart(rows), header or newest)
        return 0
    scripts = sorted(BENCH.glob("bench_*.py"))
    if not args.gpu:
        scripts = [s for s in scripts if not s.name.startswith("bench_gpu")]
    if args.only:
        scripts = [s for s in scripts if s.stem in args.only or s.name in args.only]
    rows: list[dict[str, Any]] = []
    legacy: list[tuple[str, str, int]] = []
    failures = 0
    stamp = run_stamp()
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        for script in scripts:
            got, output, code = run_one(script, args.runs, Path(tmp))
            for row in got:
                row["measured"] = stamp
            if got:
                rows += got
            else:
                legacy.append((script.name, output, code))
            failures += code != 0
    if args.only and ROWS.exists():
        # Only some scripts ran: the others keep their rows, each with the stamp of the run
        # that measured it, and the page says where and when that was.
        ran = {script.name for script in scripts}
        kept = [r for r in json.loads(ROWS.read_text()) if r.get("script") not in ran]
        stamp_rows(kept)
        rows = sorted(kept + rows, key=lambda r: str(r.get("script")))
    ROWS.write_text(json.dumps(rows, indent=1) + "\n")
    write(rows, legacy, chart(rows), stamp)
    print(f"\nwrote {RESULTS.relative_to(ROOT)}; {failures} script(s) missed a target or failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
