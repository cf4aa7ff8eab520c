"""`stack.models.fit` against hand-computed cases (every number below is worked out in comments)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.models.fit import (
    CUDA_OVERHEAD,
    GIB,
    KV_BYTES_PER_ELEMENT,
    MAX_CTX,
    N_UBATCH,
    FitError,
    FitEstimate,
    ModelShape,
    Verdict,
    estimate,
)
from stack.models.gguf import read_header
from stack.models.header import MAX_LAYERS
from tests.support.gguf_factory import write_big_vocab_header, write_tiny_model

pytestmark = pytest.mark.unit

# A Llama-3-8B Q4_K_M as the estimate sees it: 4.9 GB on disk = 0.30 GB token embeddings
# (kept in host memory) + 32 blocks x 0.13 GB + 0.44 GB output head.
LLAMA_8B = ModelShape(
    layer_bytes=(130_000_000,) * 32,
    output_bytes=440_000_000,
    n_embd=4096,
    n_vocab=128_256,
    kv_heads=(8,) * 32,
    head_dim_k=128,
    head_dim_v=128,
    context_length=131_072,
)
SIX_GIB = 6 * GIB  # 6_442_450_944
# Compute buffer: 512 x (4 x (128256 + 4 x 4096) + 2 x ctx) = 296_222_720 + 1024 x ctx.
COMPUTE_8K = 296_222_720 + 1024 * 8192  # 304_611_328


def test_kv_cache_of_an_8b_at_8k_is_one_gib() -> None:
    # 32 layers x 8192 cells x 8 heads x (128 + 128) x 2 bytes = 2^30.
    fit = estimate(LLAMA_8B, ctx=8192, kv_cache_type="f16", parallel=1, gpu_layers="all")
    assert fit.kv_bytes == GIB
    assert fit.verdict is Verdict.UNKNOWN
    assert (fit.gpu_layers, fit.total_layers) == (33, 33)
    assert fit.max_ctx_that_fits is None


@pytest.mark.parametrize(
    ("kv_cache_type", "kv_bytes"),
    [
        ("f32", 2 * GIB),
        ("bf16", GIB),
        ("q8_0", GIB * 17 // 32),  # 34 bytes per 32 values: 570_425_344, about half
        ("q4_0", GIB * 9 // 32),  # 18 bytes per 32 values
        ("q5_1", GIB * 12 // 32),
    ],
)
def test_kv_cache_types(kv_cache_type: str, kv_bytes: int) -> None:
    fit = estimate(LLAMA_8B, ctx=8192, kv_cache_type=kv_cache_type, gpu_layers="all")
    assert fit.kv_bytes == kv_bytes


def test_8b_q4_k_m_fits_a_6_gib_gpu_at_8k() -> None:
    fit = estimate(
        LLAMA_8B, ctx=8192, kv_cache_type="f16", parallel=4, gpu_layers="auto", free_vram=SIX_GIB
    )
    assert fit.weights_bytes == 32 * 130_000_000 + 440_000_000  # 4_600_000_000
    assert fit.compute_bytes == COMPUTE_8K
    assert fit.overhead_bytes == CUDA_OVERHEAD == 375_809_638
    # 4_600_000_000 + 1_073_741_824 + 304_611_328 + 375_809_638
    assert fit.total_bytes == 6_354_162_790 <= SIX_GIB
    assert fit.verdict is Verdict.FITS
    assert fit.summary == "fits"
    # Fixed: 4_600_000_000 + 375_809_638 + 296_222_720 = 5_272_032_358; each token of
    # context costs 131_072 (KV) + 1_024 (mask) = 132_096 bytes. (6 GiB - fixed) / 132_096
    # = 8860.3 tokens, so 8704 = 34 x 256.
    assert fit.max_ctx_that_fits == 8704


def test_8b_q4_k_m_at_16k_fits_a_6_gib_gpu_only_in_part() -> None:
    fit = estimate(LLAMA_8B, ctx=16384, kv_cache_type="f16", gpu_layers="all", free_vram=SIX_GIB)
    # Full offload: 6_354_162_790 + 1_073_741_824 more KV + 8_388_608 more mask
    # = 7_436_293_222, 993_842_278 too much. A block costs 130_000_000 + 67_108_864 (KV at
    # 16k) = 197_108_864: 5 fewer blocks leave 8_297_958 too much, 6 fewer fit.
    assert fit.verdict is Verdict.PARTIAL
    assert fit.gpu_layers == 27  # the head + 26 blocks
    assert fit.requested_gpu_layers == 33
    assert fit.weights_bytes == 440_000_000 + 26 * 130_000_000
    assert fit.kv_bytes == 26 * 67_108_864
    assert fit.total_bytes == 6_253_640_038
    assert fit.summary == "fits with 27 of 33 layers offloaded"
    assert fit.max_ctx_that_fits == 8704  # the context that would fit fully offloaded


def test_partial_offload_on_a_4_gib_gpu() -> None:
    fit = estimate(LLAMA_8B, ctx=8192, kv_cache_type="f16", gpu_layers="auto", free_vram=4 * GIB)
    # Head + compute + overhead = 440_000_000 + 304_611_328 + 375_809_638 = 1_120_420_966;
    # a block at 8k = 130_000_000 + 33_554_432 = 163_554_432; (4 GiB - 1_120_420_966)
    # / 163_554_432 = 19.4 blocks, so -ngl 20.
    assert (fit.verdict, fit.gpu_layers) == (Verdict.PARTIAL, 20)
    assert fit.total_bytes == 1_120_420_966 + 19 * 163_554_432


def test_requested_layers_are_kept_when_they_fit() -> None:
    fit = estimate(LLAMA_8B, ctx=8192, gpu_layers="10", free_vram=SIX_GIB)
    assert (fit.verdict, fit.gpu_layers, fit.requested_gpu_layers) == (Verdict.PARTIAL, 10, 10)
    assert fit.weights_bytes == 440_000_000 + 9 * 130_000_000
    assert fit.kv_bytes == 9 * 33_554_432
    cpu = estimate(LLAMA_8B, ctx=8192, gpu_layers=0, free_vram=SIX_GIB)
    assert (cpu.weights_bytes, cpu.kv_bytes) == (0, 0)
    assert estimate(LLAMA_8B, ctx=8192, gpu_layers=999).gpu_layers == 33


def test_does_not_fit() -> None:
    fit = estimate(LLAMA_8B, ctx=8192, gpu_layers="all", free_vram=GIB)
    # Even the head alone needs 1_120_420_966 > 1 GiB.
    assert fit.verdict is Verdict.NO_FIT
    assert fit.summary == "does not fit"
    assert fit.max_ctx_that_fits is None


def test_sliding_window_layers_keep_a_window_per_slot() -> None:
    shape = ModelShape(
        layer_bytes=(0,) * 6,
        output_bytes=0,
        n_embd=0,
        n_vocab=0,
        kv_heads=(4,) * 6,
        head_dim_k=64,
        head_dim_v=64,
        sliding_window=1024,
        swa_layers=(True, True, True, True, True, False),
    )
    # A cell of one layer: 4 heads x (64 + 64) x 2 bytes = 1024 bytes.
    # One slot: windowed layers keep min(8192, 1024 + 512) = 1536 cells.
    one = estimate(shape, ctx=8192, parallel=1, gpu_layers="all")
    assert one.kv_bytes == 5 * 1536 * 1024 + 8192 * 1024
    # Four slots: min(8192, 4 x 1024 + 512) = 4608 cells.
    four = estimate(shape, ctx=8192, parallel=4, gpu_layers="all")
    assert four.kv_bytes == 5 * 4608 * 1024 + 8192 * 1024
    # A window wider than the context changes nothing.
    small = estimate(shape, ctx=1024, parallel=1, gpu_layers="all")
    assert small.kv_bytes == 6 * 1024 * 1024


def test_context_is_rounded_up_to_256_cells() -> None:
    fit = estimate(LLAMA_8B, ctx=1000, gpu_layers="all")
    assert fit.kv_bytes == 32 * 1024 * 8 * 256 * 2


def test_max_ctx_stops_at_the_training_context() -> None:
    shape = ModelShape.uniform(
        weights_bytes=1000, n_layers=2, n_embd=8, n_vocab=16, kv_heads=1, head_dim=8,
        context_length=4000,
    )  # fmt: skip
    assert estimate(shape, ctx=512, free_vram=64 * GIB).max_ctx_that_fits == 3840


def test_estimate_from_a_header(tmp_path: Path) -> None:
    header = read_header(write_tiny_model(tmp_path / "m.gguf", n_layers=3, context_length=4096))
    fit = estimate(header, ctx=0, kv_cache_type="f16", gpu_layers="all", free_vram=GIB)
    assert fit.ctx == 4096  # -c 0: the model's own context
    assert fit.weights_bytes == sum(header.layer_bytes) + header.output_bytes
    # 3 layers x 4096 cells x 2 KV heads x (16 + 16) x 2 bytes
    assert fit.kv_bytes == 3 * 4096 * 2 * 32 * 2
    assert fit.verdict is Verdict.FITS
    assert fit.max_ctx_that_fits == 4096


def test_tied_embeddings_are_loaded_again_as_the_output_head(tmp_path: Path) -> None:
    header = read_header(write_big_vocab_header(tmp_path / "big.gguf"))
    assert not header.has_output_tensor
    shape = ModelShape.from_header(header)
    assert shape.output_bytes == header.output_bytes + header.input_bytes


def test_bad_settings_are_explained() -> None:
    with pytest.raises(FitError, match="unknown KV cache type 'q3'") as caught:
        estimate(LLAMA_8B, ctx=8192, kv_cache_type="q3")
    assert caught.value.fix is not None and "q8_0" in caught.value.fix
    with pytest.raises(FitError, match="GPU_LAYERS 'most'"):
        estimate(LLAMA_8B, ctx=8192, gpu_layers="most")
    with pytest.raises(FitError, match="PARALLEL"):
        estimate(LLAMA_8B, ctx=8192, parallel=0)
    no_context = ModelShape.uniform(
        weights_bytes=10, n_layers=1, n_embd=1, n_vocab=1, kv_heads=1, head_dim=1
    )
    with pytest.raises(FitError, match="no context length"):
        estimate(no_context, ctx=0)


# -- cost: linear in layers, the same numbers as the straightforward sum ----------------------


def _reference(
    shape: ModelShape,
    *,
    ctx: int,
    kv_cache_type: str,
    parallel: int,
    gpu_layers: str | int,
    free_vram: int | None,
) -> FitEstimate:
    """The estimate written the plain way: every breakdown sums over its blocks again."""
    per_element = KV_BYTES_PER_ELEMENT[kv_cache_type]
    total_layers = shape.n_layers + 1
    requested = total_layers if gpu_layers in ("auto", "all") else int(gpu_layers)
    requested = max(0, min(requested, total_layers))

    def parts(layers: int, ctx: int) -> tuple[int, int, int]:
        cells = -(-ctx // 256) * 256
        swa_cells = min(cells, shape.sliding_window * parallel + N_UBATCH)
        weights = shape.output_bytes if layers >= 1 else 0
        kv = 0.0
        for block in range(shape.n_layers - max(0, layers - 1), shape.n_layers):
            weights += shape.layer_bytes[block]
            windowed = block < len(shape.swa_layers) and shape.swa_layers[block]
            heads = shape.kv_heads[block] if block < len(shape.kv_heads) else 0
            width = heads * (shape.head_dim_k + shape.head_dim_v)
            kv += (swa_cells if windowed else cells) * width * per_element
        compute = N_UBATCH * (4 * (shape.n_vocab + 4 * shape.n_embd) + 2 * cells)
        return weights, round(kv), compute

    def total(layers: int, ctx: int) -> int:
        return sum(parts(layers, ctx)) + CUDA_OVERHEAD

    def best_ctx(free: int) -> int | None:
        fitting = [
            steps
            for steps in range(1, (shape.context_length or MAX_CTX) // 256 + 1)
            if total(total_layers, steps * 256) <= free
        ]
        return max(fitting) * 256 if fitting else None

    def result(verdict: Verdict, layers: int) -> FitEstimate:
        weights, kv, compute = parts(layers, ctx)
        return FitEstimate(
            verdict, layers, total_layers, requested, ctx, weights, kv, compute, CUDA_OVERHEAD,
            free_vram, best_ctx(free_vram) if free_vram is not None else None,
        )  # fmt: skip

    if free_vram is None:
        return result(Verdict.UNKNOWN, requested)
    if total(requested, ctx) <= free_vram:
        return result(Verdict.FITS if requested == total_layers else Verdict.PARTIAL, requested)
    for layers in range(requested - 1, 0, -1):
        if total(layers, ctx) <= free_vram:
            return result(Verdict.PARTIAL, layers)
    return result(Verdict.NO_FIT, requested)


@st.composite
def _shapes(draw: st.DrawFn) -> ModelShape:
    n = draw(st.integers(1, 40))
    return ModelShape(
        layer_bytes=tuple(draw(st.lists(st.integers(0, 2**32), min_size=n, max_size=n))),
        output_bytes=draw(st.integers(0, 2**32)),
        n_embd=draw(st.integers(0, 16384)),
        n_vocab=draw(st.integers(0, 300_000)),
        # Shorter per-layer lists than layers happen (a block without attention data).
        kv_heads=tuple(draw(st.lists(st.integers(0, 64), max_size=n))),
        head_dim_k=draw(st.integers(0, 512)),
        head_dim_v=draw(st.integers(0, 512)),
        sliding_window=draw(st.integers(0, 8192)),
        swa_layers=tuple(draw(st.lists(st.booleans(), max_size=n))),
        context_length=draw(st.sampled_from([0, 512, 4096, 8192, 32768])),
    )


@given(
    shape=_shapes(),
    ctx=st.integers(1, 32768),
    kv_cache_type=st.sampled_from(sorted(KV_BYTES_PER_ELEMENT)),
    parallel=st.integers(1, 8),
    gpu_layers=st.one_of(st.sampled_from(["auto", "all"]), st.integers(0, 45)),
    free_vram=st.one_of(st.none(), st.integers(0, 64 * GIB)),
)
@settings(max_examples=300, deadline=None)
def test_estimate_equals_the_plain_sum(
    shape: ModelShape,
    ctx: int,
    kv_cache_type: str,
    parallel: int,
    gpu_layers: str | int,
    free_vram: int | None,
) -> None:
    options = {
        "ctx": ctx,
        "kv_cache_type": kv_cache_type,
        "parallel": parallel,
        "gpu_layers": gpu_layers,
        "free_vram": free_vram,
    }
    assert estimate(shape, **options) == _reference(shape, **options)  # type: ignore[arg-type]


class _CountedReads(Sequence[Any]):
    """A per-layer tuple that counts how many items are read from it."""

    def __init__(self, items: Sequence[Any], counter: list[int]) -> None:
        self._items = tuple(items)
        self._counter = counter

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        self._counter[0] += 1
        return self._items[index]


def test_an_estimate_reads_each_layer_a_few_times_at_the_most_layers_a_header_has() -> None:
    n = MAX_LAYERS
    reads = [0]
    shape = ModelShape(
        layer_bytes=_CountedReads([100_000_000] * n, reads),  # type: ignore[arg-type]
        output_bytes=500_000_000,
        n_embd=8192,
        n_vocab=128_000,
        kv_heads=_CountedReads([8] * n, reads),  # type: ignore[arg-type]
        head_dim_k=128,
        head_dim_v=128,
        sliding_window=4096,
        swa_layers=_CountedReads([i % 2 == 0 for i in range(n)], reads),  # type: ignore[arg-type]
        context_length=131_072,
    )
    # Too little memory for more than a few blocks: the search walks down every layer count.
    # Head + compute + overhead = 1_213_451_110 of 2 GiB leaves 934_032_538; the last block
    # (full attention) costs 133_554_432, the one before (windowed) 118_874_368: 7 blocks.
    fit = estimate(shape, ctx=8192, gpu_layers="all", free_vram=2 * GIB)
    assert (fit.verdict, fit.gpu_layers) == (Verdict.PARTIAL, 8)
    # Three per-layer lists read once each; the sum redone per layer count read ~25 million.
    assert reads[0] <= 3 * n, reads[0]
