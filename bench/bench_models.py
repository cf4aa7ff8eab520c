"""Header-read, library-scan, fit and fixture timings against their targets.

Run: ``.venv/bin/python bench/bench_models.py [--json PATH]``. Prints a table and exits 1
when a target is missed: a 150k-token-vocabulary header read in <= 20 ms (median of 20), a crafted
header refused in <= 5 ms, a warm rescan of 100 models in <= 0.2 s (median of 5), a fit
estimate for the most layers a header may have in <= 50 ms even when it searches every
layer count, and the tiny test model written in <= 1 s. gguf.GGUFReader, and the fit
estimate summed the plain way (quadratic in layers), are timed once for comparison.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Result, cli, report
from stack.models.fit import CUDA_OVERHEAD, GIB, ModelShape, estimate
from stack.models.gguf import read_header
from stack.models.header import MAX_LAYERS, GgufError
from stack.models.library import scan_library
from tests.support.fit_reference import plain_parts
from tests.support.gguf_factory import (
    STRING,
    U32,
    craft_header,
    write_big_vocab_header,
    write_tiny_model,
)

HEADER_TARGET_S = 0.020
CRAFTED_TARGET_S = 0.005
WARM_SCAN_TARGET_S = 0.2
FIT_TARGET_S = 0.050
TINY_MODEL_TARGET_S = 1.0
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


def _refuse(data: bytes) -> None:
    try:
        read_header(data)
    except GgufError:
        return
    raise AssertionError("the crafted header was read")


def _deep_shape() -> ModelShape:
    """The most layers a header may have; sliding windows on every other layer."""
    return ModelShape(
        layer_bytes=(100_000_000,) * MAX_LAYERS,
        output_bytes=500_000_000,
        n_embd=8192,
        n_vocab=128_000,
        kv_heads=(8,) * MAX_LAYERS,
        head_dim_k=128,
        head_dim_v=128,
        sliding_window=4096,
        swa_layers=tuple(i % 2 == 0 for i in range(MAX_LAYERS)),
        context_length=131_072,
    )


def _plain_layer_search(shape: ModelShape, ctx: int, free_vram: int) -> int:
    """The layer search the plain way: each layer count sums its blocks again."""
    for layers in range(shape.n_layers + 1, 0, -1):
        if sum(plain_parts(shape, layers, ctx)) + CUDA_OVERHEAD <= free_vram:
            return layers
    return 0


def main() -> int:
    import gguf  # test-only dependency, kept out of the product code

    parser = cli(__doc__.splitlines()[0])
    json_path = parser.parse_args().json

    rows: list[tuple[str, float, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        root = Path(tmp)
        big = write_big_vocab_header(root / "big-vocab.gguf")
        first = _timed(lambda: read_header(big))
        header = _median(lambda: read_header(big), 20)
        reference = _timed(lambda: gguf.GGUFReader(big))
        crafted = craft_header(
            [("general.architecture", STRING, "llama"), ("llama.block_count", U32, 10**8)]
        )
        refused = _median(lambda: _refuse(crafted), 20)
        rows += [
            ("header, 150k vocab, first call", first, None),
            ("header, 150k vocab, median of 20", header, HEADER_TARGET_S),
            ("gguf.GGUFReader, same header, once", reference, None),
            ("crafted header (1e8 layers) refused, median", refused, CRAFTED_TARGET_S),
        ]

        shape = _deep_shape()
        fit = estimate(shape, ctx=8192, gpu_layers="all", free_vram=2 * GIB)
        assert fit.gpu_layers == _plain_layer_search(shape, 8192, 2 * GIB), fit
        searched = _median(lambda: estimate(shape, ctx=8192, free_vram=2 * GIB), 20)
        plain = _timed(lambda: _plain_layer_search(shape, 8192, 2 * GIB))
        rows += [
            (f"fit, {MAX_LAYERS} layers, full search, median", searched, FIT_TARGET_S),
            (f"fit summed the plain way, {MAX_LAYERS} layers", plain, None),
        ]

        tiny = _median(lambda: write_tiny_model(root / "tiny.gguf", name="bench"), 5)
        rows.append(("write_tiny_model, median of 5", tiny, TINY_MODEL_TARGET_S))

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
    print(f"the fit estimate is {plain / searched:,.0f}x faster than the plain sum here")
    if json_path is not None:
        return report(_results(rows, reference, plain), json_path)
    return 1 if missed else 0


def _results(
    rows: list[tuple[str, float, float | None]], reader: float, plain: float
) -> list[Result]:
    """The table's rows for bench/run: each timing with its target, and the two references."""
    references = {
        "header, 150k vocab, median of 20": (reader, "gguf.GGUFReader, once"),
        f"fit, {MAX_LAYERS} layers, full search, median": (plain, "the plain (quadratic) sum"),
    }
    out = []
    for label, seconds, target in rows:
        if target is None:
            continue
        reference, name = references.get(label, (None, ""))
        out.append(
            Result(
                label,
                seconds * 1000,
                "ms",
                reference=None if reference is None else reference * 1000,
                reference_name=name,
                target=f"<= {target * 1000:g}",
                ok=seconds <= target,
            )
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
