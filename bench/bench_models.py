"""Header-read and library-scan timings against their targets.

Run: ``.venv/bin/python bench/bench_models.py``. Prints a table and exits 1 when a target
is missed: a 150k-token-vocabulary header read in <= 20 ms (median of 20), a warm rescan
of 100 models in <= 0.2 s (median of 5). gguf.GGUFReader is timed once on the same header
for comparison.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stack.gguf import read_header
from stack.library import scan_library
from tests.support.gguf_factory import write_big_vocab_header, write_tiny_model

HEADER_TARGET_S = 0.020
WARM_SCAN_TARGET_S = 0.2
N_MODELS = 100


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _median(
    call: Callable[[], object], runs: int, before: Callable[[], object] | None = None
) -> float:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        times.append(_timed(call))
    return statistics.median(times)


def main() -> int:
    import gguf  # test-only dependency, kept out of the product code

    rows: list[tuple[str, float, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        root = Path(tmp)
        big = write_big_vocab_header(root / "big-vocab.gguf")
        first = _timed(lambda: read_header(big))
        header = _median(lambda: read_header(big), 20)
        reference = _timed(lambda: gguf.GGUFReader(big))
        rows += [
            ("header, 150k vocab, first call", first, None),
            ("header, 150k vocab, median of 20", header, HEADER_TARGET_S),
            ("gguf.GGUFReader, same header, once", reference, None),
        ]

        models = root / "models"
        for i in range(N_MODELS):
            write_tiny_model(
                models / f"family-{i % 10}" / f"m{i:03d}.gguf", name=f"m{i}", n_layers=1
            )
        cache = root / "library.json"
        count = len(scan_library(models, cache_path=cache))
        assert count == N_MODELS, count
        cold = _median(
            lambda: scan_library(models, cache_path=cache), 5, before=lambda: cache.unlink()
        )
        scan_library(models, cache_path=cache)
        warm = _median(lambda: scan_library(models, cache_path=cache), 5)
        rows += [
            (f"library scan, {N_MODELS} files, cold, median of 5", cold, None),
            (f"library scan, {N_MODELS} files, warm, median of 5", warm, WARM_SCAN_TARGET_S),
        ]

    missed = 0
    print(f"{'measure':<44} {'time':>10} {'target':>10}")
    for label, seconds, target in rows:
        mark = ""
        if target is not None:
            ok = seconds <= target
            missed += not ok
            mark = f"{target * 1000:>7.0f} ms {'ok' if ok else 'MISSED'}"
        print(f"{label:<44} {seconds * 1000:>7.1f} ms {mark}")
    print(f"read_header is {reference / header:,.0f}x faster than gguf.GGUFReader here")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
