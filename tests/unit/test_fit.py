"""`stack.fit` against hand-computed cases (every number below is worked out in comments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.fit import (
    CUDA_OVERHEAD,
    GIB,
    FitError,
    ModelShape,
    Verdict,
    estimate,
)
from stack.gguf import read_header
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
