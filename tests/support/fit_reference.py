"""The fit estimate written the plain way: every breakdown sums over its blocks again.

Quadratic in layers, so only for checking `stack.models.fit.estimate` (which uses suffix
sums) on random shapes, and for the benchmark's comparison.
"""

from __future__ import annotations

from stack.models.fit import (
    CUDA_OVERHEAD,
    KV_BYTES_PER_ELEMENT,
    MAX_CTX,
    N_UBATCH,
    FitEstimate,
    ModelShape,
    Verdict,
    slot_context,
)


def _pad(value: int) -> int:
    return -(-value // 256) * 256


def plain_parts(
    shape: ModelShape,
    layers: int,
    ctx: int,
    *,
    kv_cache_type: str = "f16",
    parallel: int = 1,
    flash: bool = True,
) -> tuple[int, int, int]:
    """(weights, KV, compute) with ``layers`` slots on the GPU, block by block."""
    per_element = KV_BYTES_PER_ELEMENT[kv_cache_type]
    seq = max(256, _pad(_pad(ctx) // parallel))
    windowed = [i < len(shape.swa_layers) and shape.swa_layers[i] for i in range(shape.n_layers)]
    window_seq = _pad(min(seq, shape.sliding_window + N_UBATCH)) if any(windowed) else 0
    on_gpu = range(shape.n_layers - max(0, layers - 1), shape.n_layers)
    weights = shape.output_bytes if layers >= 1 else 0
    kv = 0.0
    widest = 0
    for block in on_gpu:
        weights += shape.layer_bytes[block]
        heads = shape.kv_heads[block] if block < len(shape.kv_heads) else 0
        width = heads * (shape.head_dim_k + shape.head_dim_v)
        cells = (window_seq if windowed[block] else seq) * parallel
        kv += cells * width * per_element
        widest = max(widest, cells * width)
    tokens = min(N_UBATCH, seq * parallel)
    masks = (seq if not all(windowed) else 0) + window_seq
    compute = tokens * (4 * shape.n_vocab + 8 * shape.n_embd + 12 * shape.n_ff + 2 * masks)
    if flash and kv_cache_type not in ("f16", "bf16", "f32"):
        compute += 2 * widest
    if not flash:
        compute += 8 * max(shape.n_head, 1) * seq * tokens
    if layers < shape.n_layers + 1:
        cpu = [shape.layer_bytes[b] for b in range(shape.n_layers) if b not in on_gpu]
        compute += max([*cpu, 0 if layers >= 1 else shape.output_bytes])
    return weights, round(kv), compute


def plain_estimate(
    shape: ModelShape,
    *,
    ctx: int,
    kv_cache_type: str,
    parallel: int,
    gpu_layers: str | int,
    free_vram: int | None,
    margin: int = 0,
) -> FitEstimate:
    total_layers = shape.n_layers + 1
    requested = total_layers if gpu_layers in ("auto", "all") else int(gpu_layers)
    requested = max(0, min(requested, total_layers))
    options = {"kv_cache_type": kv_cache_type, "parallel": parallel}

    def total(layers: int, ctx: int) -> int:
        return sum(plain_parts(shape, layers, ctx, **options)) + CUDA_OVERHEAD  # type: ignore[arg-type]

    def best_ctx(budget: int) -> int | None:
        step = 256 * parallel
        limit = (shape.context_length or MAX_CTX) * parallel
        steps = range(1, limit // step + 1)
        fitting = [k for k in steps if total(total_layers, k * step) <= budget]
        return max(fitting) * step if fitting else None

    def result(verdict: Verdict, layers: int) -> FitEstimate:
        weights, kv, compute = plain_parts(shape, layers, ctx, **options)  # type: ignore[arg-type]
        return FitEstimate(
            verdict, layers, total_layers, requested, ctx, weights, kv, compute, CUDA_OVERHEAD,
            free_vram, best_ctx(free_vram - margin) if free_vram is not None else None, margin,
            slot_context(ctx, parallel, shape.context_length),
        )  # fmt: skip

    if free_vram is None:
        return result(Verdict.UNKNOWN, requested)
    budget = free_vram - margin
    if total(requested, ctx) <= budget:
        return result(Verdict.FITS if requested == total_layers else Verdict.PARTIAL, requested)
    for layers in range(requested - 1, 0, -1):
        if total(layers, ctx) <= budget:
            return result(Verdict.PARTIAL, layers)
    return result(Verdict.NO_FIT, requested)
