"""`stack.models.fit` against hand-computed cases, a real GPU's measurements and llama.cpp's fitter.

The measured rows (NVML, an H100, llama.cpp 0c1e570 built with CUDA, the stack's own
flags) were served from files shaped like Llama-3.1-8B and Llama-3.2-3B at Q4_K_M, which
`tests.support.real_shapes` writes again as sparse files.
"""

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
    MIB,
    FitError,
    ModelShape,
    Verdict,
    estimate,
    slot_context,
)
from stack.models.gguf import read_header
from stack.models.header import MAX_LAYERS, GgufHeader
from tests.support.fit_reference import plain_estimate
from tests.support.gguf_factory import write_big_vocab_header, write_tiny_model
from tests.support.real_shapes import LLAMA_3_1_8B, LLAMA_3_2_3B, Q, tensor_layout, use_more_bits

pytestmark = pytest.mark.unit

# A Llama-3-8B Q4_K_M as the estimate sees it: 0.30 GB token embeddings (kept in host
# memory) + 32 blocks x 0.13 GB + a 0.44 GB output head.
LLAMA_8B = ModelShape(
    layer_bytes=(130_000_000,) * 32,
    output_bytes=440_000_000,
    n_embd=4096,
    n_vocab=128_256,
    kv_heads=(8,) * 32,
    head_dim_k=128,
    head_dim_v=128,
    context_length=131_072,
    n_ff=14336,
    n_head=32,
)
SIX_GIB = 6 * GIB  # 6_442_450_944
# Compute buffer for a 512-token micro-batch: 512 x (4 x 128256 logits + 2 x 4 x 4096
# activations + 3 x 4 x 14336 feed-forward) = 367_525_888, plus a 2-byte mask cell for
# each cell of one slot: 512 x 2 x slot cells.
COMPUTE_FIXED = 367_525_888
BLOCK = 130_000_000


def test_kv_cache_of_an_8b_at_8k_is_one_gib() -> None:
    # 32 layers x 8192 cells x 8 heads x (128 + 128) x 2 bytes = 2^30.
    fit = estimate(LLAMA_8B, ctx=8192, kv_cache_type="f16", parallel=1, gpu_layers="all")
    assert fit.kv_bytes == GIB
    assert fit.compute_bytes == COMPUTE_FIXED + 512 * 2 * 8192  # 375_914_496
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


def test_each_slot_is_padded_to_256_cells() -> None:
    # -c 7424 -np 4: 7424 / 4 = 1856, padded to 2048 a slot: the cache holds 8192 cells.
    fit = estimate(LLAMA_8B, ctx=7424, parallel=4, gpu_layers="all")
    assert fit.kv_bytes == estimate(LLAMA_8B, ctx=8192, parallel=4, gpu_layers="all").kv_bytes
    assert fit.slot_ctx == slot_context(7424, 4) == 2048
    # -c 8192 -np 3: 2730 a slot, padded to 2816: 8448 cells.
    assert estimate(LLAMA_8B, ctx=8192, parallel=3, gpu_layers="all").kv_bytes == 8448 * 131_072
    # A slot never holds more than the training context, however large its share.
    assert slot_context(262_144, 1, context_length=131_072) == 131_072


def test_8b_q4_k_m_fits_an_8_gib_gpu_at_8k() -> None:
    fit = estimate(LLAMA_8B, ctx=8192, parallel=4, gpu_layers="auto", free_vram=8 * GIB)
    assert fit.weights_bytes == 32 * BLOCK + 440_000_000  # 4_600_000_000
    # Four slots of 2048 cells: the mask is 512 x 2 x 2048 bytes.
    assert fit.compute_bytes == COMPUTE_FIXED + 512 * 2 * 2048
    assert fit.overhead_bytes == CUDA_OVERHEAD == 384 * MIB
    # 4_600_000_000 + 1_073_741_824 + 369_623_040 + 402_653_184
    assert fit.total_bytes == 6_446_018_048
    assert (fit.verdict, fit.summary) == (Verdict.FITS, "fits")


def test_8b_q4_k_m_at_8k_on_a_6_gib_gpu_leaves_one_block_on_the_cpu() -> None:
    fit = estimate(LLAMA_8B, ctx=8192, parallel=4, gpu_layers="auto", free_vram=SIX_GIB)
    # Full offload is 6_446_018_048, 3_567_104 too much. One block fewer saves its weights
    # and its 33_554_432 of KV, but prompt batches copy a CPU block to the GPU: the compute
    # buffer grows by one block (130_000_000), so the saving is the KV only.
    assert (fit.verdict, fit.gpu_layers) == (Verdict.PARTIAL, 32)
    assert fit.total_bytes == 6_446_018_048 - 33_554_432
    assert fit.summary == "fits with 32 of 33 layers on the GPU"
    # Fully offloaded, 7 x 1024 cells fit: 4_600_000_000 + 402_653_184 + COMPUTE_FIXED
    # + 7168 x 131_072 (KV) + 512 x 2 x 1792 (mask) = 6_310_521_856; 8192 cells do not.
    assert fit.max_ctx_that_fits == 7168


def test_the_margin_is_kept_free() -> None:
    fits = estimate(LLAMA_8B, ctx=8192, parallel=4, free_vram=7 * GIB)
    assert fits.verdict is Verdict.FITS
    kept = estimate(LLAMA_8B, ctx=8192, parallel=4, free_vram=7 * GIB, margin=GIB)
    # 7 GiB - 1 GiB of margin is the 6 GiB case above.
    assert (kept.verdict, kept.gpu_layers, kept.margin_bytes) == (Verdict.PARTIAL, 32, GIB)
    assert kept.max_ctx_that_fits == 7168
    with pytest.raises(FitError, match="margin"):
        estimate(LLAMA_8B, ctx=8192, margin=-1)


def test_a_quantized_cache_is_converted_to_f16_for_flash_attention() -> None:
    f16 = estimate(LLAMA_8B, ctx=32768, kv_cache_type="f16", gpu_layers="all")
    q8 = estimate(LLAMA_8B, ctx=32768, kv_cache_type="q8_0", gpu_layers="all")
    # One layer's K and V, 32768 cells x 8 heads x (128 + 128), at 2 bytes: 128 MiB.
    assert q8.compute_bytes - f16.compute_bytes == 32768 * 2048 * 2 == 128 * MIB
    assert q8.kv_bytes == f16.kv_bytes * 17 // 32


def test_without_flash_attention_the_scores_are_held() -> None:
    on = estimate(LLAMA_8B, ctx=8192, gpu_layers="all")
    off = estimate(LLAMA_8B, ctx=8192, gpu_layers="all", flash_attn="off")
    # f32 scores of 32 heads x 8192 cells x 512 tokens, and their softmax: 1 GiB.
    assert off.compute_bytes - on.compute_bytes == 2 * 4 * 32 * 8192 * 512 == GIB
    with pytest.raises(FitError, match="needs flash attention") as caught:
        estimate(LLAMA_8B, ctx=8192, kv_cache_type="q8_0", flash_attn="off")
    assert caught.value.fix is not None and "FLASH_ATTN" in caught.value.fix


def test_partial_offload_on_a_4_gib_gpu() -> None:
    fit = estimate(LLAMA_8B, ctx=8192, kv_cache_type="f16", gpu_layers="auto", free_vram=4 * GIB)
    # Head + compute (with one CPU block copied) + overhead = 440_000_000 + 375_914_496
    # + 130_000_000 + 402_653_184 = 1_348_567_680; a block at 8k = 130_000_000 + 33_554_432
    # = 163_554_432; (4 GiB - 1_348_567_680) / 163_554_432 = 18.01 blocks, so -ngl 19.
    assert (fit.verdict, fit.gpu_layers) == (Verdict.PARTIAL, 19)
    assert fit.total_bytes == 1_348_567_680 + 18 * 163_554_432


def test_requested_layers_are_kept_when_they_fit() -> None:
    fit = estimate(LLAMA_8B, ctx=8192, gpu_layers="10", free_vram=SIX_GIB)
    assert (fit.verdict, fit.gpu_layers, fit.requested_gpu_layers) == (Verdict.PARTIAL, 10, 10)
    assert fit.weights_bytes == 440_000_000 + 9 * BLOCK
    assert fit.kv_bytes == 9 * 33_554_432
    cpu = estimate(LLAMA_8B, ctx=8192, gpu_layers=0, free_vram=SIX_GIB)
    assert (cpu.weights_bytes, cpu.kv_bytes) == (0, 0)
    # Nothing on the GPU: prompt batches copy the output head there (the largest part).
    assert cpu.compute_bytes == COMPUTE_FIXED + 512 * 2 * 8192 + 440_000_000
    assert estimate(LLAMA_8B, ctx=8192, gpu_layers=999).gpu_layers == 33


def test_does_not_fit() -> None:
    fit = estimate(LLAMA_8B, ctx=8192, gpu_layers="all", free_vram=GIB)
    # Even the head alone needs 1_348_567_680 > 1 GiB.
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
    # A cell of one layer: 4 heads x (64 + 64) x 2 bytes = 1024 bytes. Windowed layers keep
    # pad256(min(slot, 1024 + 512)) = 1536 cells a slot.
    one = estimate(shape, ctx=8192, parallel=1, gpu_layers="all")
    assert one.kv_bytes == 5 * 1536 * 1024 + 8192 * 1024
    # Four slots of 2048: each keeps its own 1536-cell window.
    four = estimate(shape, ctx=8192, parallel=4, gpu_layers="all")
    assert four.kv_bytes == 5 * 4 * 1536 * 1024 + 4 * 2048 * 1024
    # A window wider than the slot changes nothing.
    small = estimate(shape, ctx=1024, parallel=1, gpu_layers="all")
    assert small.kv_bytes == 6 * 1024 * 1024


def test_context_is_rounded_up_to_256_cells() -> None:
    fit = estimate(LLAMA_8B, ctx=1000, gpu_layers="all")
    assert fit.kv_bytes == 32 * 1024 * 8 * 256 * 2


def test_max_ctx_stops_at_the_training_context_of_each_slot() -> None:
    shape = ModelShape.uniform(
        weights_bytes=1000, n_layers=2, n_embd=8, n_vocab=16, kv_heads=1, head_dim=8,
        context_length=4000,
    )  # fmt: skip
    assert estimate(shape, ctx=512, free_vram=64 * GIB).max_ctx_that_fits == 3840
    # Two slots: whole 512-cell steps, each slot at most 4000 (3840).
    assert estimate(shape, ctx=512, parallel=2, free_vram=64 * GIB).max_ctx_that_fits == 7680


def test_estimate_from_a_header(tmp_path: Path) -> None:
    header = read_header(write_tiny_model(tmp_path / "m.gguf", n_layers=3, context_length=4096))
    assert (header.n_ff, header.n_vocab, header.n_embd) == (128, 453, 64)
    fit = estimate(header, ctx=0, kv_cache_type="f16", gpu_layers="all", free_vram=GIB)
    assert fit.ctx == 4096  # -c 0: the model's own context
    assert fit.weights_bytes == sum(header.layer_bytes) + header.output_bytes
    # 3 layers x 4096 cells x 2 KV heads x (16 + 16) x 2 bytes
    assert fit.kv_bytes == 3 * 4096 * 2 * 32 * 2
    # 512 x (4 x 453 + 8 x 64 + 12 x 128 + 2 x 4096)
    assert fit.compute_bytes == 512 * 12_052
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


# -- the real shapes, against what a GPU measured and what llama.cpp's fitter said ------------

# (model, ctx, parallel, KV type, MiB NVML measured for the llama-server process)
MEASURED = [
    ("8b", 8192, 4, "f16", 6142),
    ("8b", 32768, 1, "q8_0", 7376),
    ("8b", 131072, 1, "f16", 21628),
    ("3b", 8192, 4, "f16", 3386),
    ("3b", 65536, 2, "q8_0", 6542),
]
# llama-fit-params with 6 GiB left usable: the largest -c (one slot, f16).
LLAMA_FITTER_MAX_CTX = {"8b": 7424, "3b": 32000}


@pytest.fixture
def real(real_headers: dict[str, GgufHeader]) -> dict[str, GgufHeader]:
    return real_headers


def test_the_sparse_files_have_the_measured_sizes(real: dict[str, GgufHeader]) -> None:
    sizes = {name: header.file_size or 0 for name, header in real.items()}
    assert sizes["8b"] == pytest.approx(4.93e9, rel=0.005)
    assert sizes["3b"] == pytest.approx(1.92e9, rel=0.005)
    assert sizes["3b-llama-quantize"] == pytest.approx(2.02e9, rel=0.005)
    assert real["8b"].quant == "Q4_K_M" and real["8b"].n_ff == 14336
    assert real["3b"].has_output_tensor is False and real["3b"].context_length == 131_072


def test_q4_k_m_keeps_more_bits_where_llama_quantize_does() -> None:
    more = [i for i in range(32) if use_more_bits(i, 32)]
    assert more == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
    types = {name: kind for name, _, kind in tensor_layout(LLAMA_3_1_8B)}
    assert types["blk.6.ffn_down.weight"] == types["blk.6.attn_v.weight"] == Q.Q6_K
    assert types["blk.7.ffn_down.weight"] == types["blk.7.attn_q.weight"] == Q.Q4_K
    assert (types["output.weight"], types["token_embd.weight"]) == (Q.Q6_K, Q.Q4_K)
    tied = {name: kind for name, _, kind in tensor_layout(LLAMA_3_2_3B)}
    assert "output.weight" not in tied and tied["token_embd.weight"] == Q.Q6_K


@pytest.mark.parametrize(("model", "ctx", "parallel", "kv", "measured_mib"), MEASURED)
def test_never_under_what_the_gpu_measured(
    real: dict[str, GgufHeader], model: str, ctx: int, parallel: int, kv: str, measured_mib: int
) -> None:
    fit = estimate(real[model], ctx=ctx, parallel=parallel, kv_cache_type=kv, gpu_layers="all")
    total_mib = fit.total_bytes / MIB
    assert total_mib >= measured_mib
    # ...and not so far over that it wastes a card: within 2 %.
    assert total_mib <= measured_mib * 1.02


@pytest.mark.parametrize("model", ["8b", "3b", "3b-llama-quantize"])
def test_largest_context_is_within_10_percent_of_llamas_fitter(
    real: dict[str, GgufHeader], model: str
) -> None:
    fit = estimate(real[model], ctx=8192, parallel=1, free_vram=SIX_GIB, margin=0)
    reference = LLAMA_FITTER_MAX_CTX[model.partition("-")[0]]
    assert fit.max_ctx_that_fits is not None
    assert abs(fit.max_ctx_that_fits - reference) <= 0.10 * reference


def test_8b_at_8k_on_6_gib_keeps_one_layer_on_the_cpu_as_llamas_fitter_does(
    real: dict[str, GgufHeader],
) -> None:
    fit = estimate(real["8b"], ctx=8192, parallel=4, free_vram=SIX_GIB)
    # llama-fit-params answered -ngl 32 here; the process alone measured 6142 MiB.
    assert fit.summary == "fits with 32 of 33 layers on the GPU"


def test_a_gemma_like_model_keeps_sliding_windows_per_slot(real: dict[str, GgufHeader]) -> None:
    header = real["gemma"]
    # gemma3: every sixth of 34 layers attends to everything, 29 keep a 1024-token window.
    assert (header.sliding_window, sum(header.swa_layers), header.n_layers) == (1024, 29, 34)
    assert header.head_dim_k == 256 and header.kv_heads == 4
    # A cell of one layer: 4 heads x (256 + 256) x 2 bytes = 4096 bytes.
    one = estimate(header, ctx=32768, parallel=1, gpu_layers="all")
    assert one.kv_bytes == 5 * 32768 * 4096 + 29 * 1536 * 4096  # 640 MiB + 174 MiB
    four = estimate(header, ctx=32768, parallel=4, gpu_layers="all")
    assert four.kv_bytes == 5 * 4 * 8192 * 4096 + 29 * 4 * 1536 * 4096  # 640 + 696 MiB
    # q8_0: the widest conversion is a full-attention layer's: 32768 cells x 2048 x 2 bytes.
    q8 = estimate(header, ctx=32768, parallel=1, kv_cache_type="q8_0", gpu_layers="all")
    assert q8.compute_bytes - one.compute_bytes == 32768 * 2048 * 2


# -- cost: linear in layers, the same numbers as the straightforward sum ----------------------


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
        n_ff=draw(st.integers(0, 65536)),
        n_head=draw(st.integers(0, 128)),
    )


@given(
    shape=_shapes(),
    ctx=st.integers(1, 32768),
    kv_cache_type=st.sampled_from(sorted(KV_BYTES_PER_ELEMENT)),
    parallel=st.integers(1, 8),
    gpu_layers=st.one_of(st.sampled_from(["auto", "all"]), st.integers(0, 45)),
    free_vram=st.one_of(st.none(), st.integers(0, 64 * GIB)),
    margin=st.integers(0, 2 * GIB),
)
@settings(max_examples=300, deadline=None)
def test_estimate_equals_the_plain_sum(
    shape: ModelShape,
    ctx: int,
    kv_cache_type: str,
    parallel: int,
    gpu_layers: str | int,
    free_vram: int | None,
    margin: int,
) -> None:
    options: dict[str, Any] = {
        "ctx": ctx,
        "kv_cache_type": kv_cache_type,
        "parallel": parallel,
        "gpu_layers": gpu_layers,
        "free_vram": free_vram,
        "margin": margin,
    }
    assert estimate(shape, **options) == plain_estimate(shape, **options)


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
        n_ff=28672,
    )
    # Too little memory for more than a few blocks: the search walks down every layer count.
    fit = estimate(shape, ctx=8192, gpu_layers="all", free_vram=3 * GIB)
    assert fit.verdict is Verdict.PARTIAL and fit.gpu_layers < 20
    # The per-layer lists read a few times each; the sum redone per layer count read ~25M.
    assert reads[0] <= 5 * n, reads[0]
