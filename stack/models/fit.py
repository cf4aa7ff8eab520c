"""Will a model fit in GPU memory? What llama-server allocates, from a GGUF header and settings.

Every caller (`llm-tui models`/`fit`/`files`/`tune`, the Models and Hugging Face screens)
goes through :func:`estimate`, so they all say the same. The sum follows what llama.cpp
(the commit the stack pins) allocates on one CUDA GPU:

* **slots**: ``-np N`` gives N separate KV streams: the context is rounded up to 256,
  split into N, and each slot's share rounded up to 256 again (llama-context.cpp), so
  ``-c 7424 -np 4`` allocates 4 x 2048 cells.
* **weights**: ``-ngl N`` counts layer *slots*: the output head goes first, then the last
  N-1 blocks; ``all`` is every block plus the head. Token embeddings stay in host memory,
  but with tied embeddings they are loaded again as the output head.
* **KV cache**: for each block on the GPU, cells x KV heads x (K dim + V dim) x bytes per
  element of KV_CACHE_TYPE; a sliding-window block keeps pad256(min(slot, window +
  n_ubatch)) cells per slot (llama-kv-cache-iswa.cpp).
* **compute buffer**, reserved for a 512-token micro-batch (llama-context.cpp,
  ``sched_reserve``): the f32 logits of 512 outputs (n_vocab x 512 x 4), two
  residual-width activations, the attention mask (f16, slot cells x 512 per mask: an
  input of the GPU split, alive through the logits: the measured totals grow by exactly
  it), and a feed-forward-wide working set (3 x 512 x n_ff x 4: the measured 8B and 3B
  differ by exactly that beyond the rest). With a quantized KV cache, flash attention
  converts a layer's K and V to f16 inside its own output buffer (ggml-cuda/fattn.cu,
  ``ggml_cuda_flash_attn_ext_get_alloc_size``): 2 bytes per element of one layer's whole
  cache. Without flash attention the f32 scores and their softmax are held instead. When
  blocks stay on the CPU, prompt batches run their weights on the GPU (op offload), so
  the largest such block is counted too. The parts are added, not overlapped: a sum is
  the safe side of whatever the allocator packs.
* **CUDA overhead**: context, cuBLAS and memory pools. A llama-server process measured on an
  H100 (driver 580, CUDA 13) held 345-362 MiB above the buffers listed here; 384 MiB is
  counted.

The total plus the VRAM safety margin (VRAM_MARGIN_MIB) is compared with NVML's free
memory, which already excludes what other processes (the desktop) hold. llama.cpp's own
``--fit`` keeps 1 GiB free and does not count the CUDA context.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from stack.errors import LlmTuiError
from stack.models.fit_memory import CTX_STEP, MAX_CTX, Buffers, slot_cells
from stack.models.header import GgufHeader

if TYPE_CHECKING:
    from stack.settings import Settings

__all__ = [
    "CTX_STEP", "CUDA_OVERHEAD", "GIB", "KV_BYTES_PER_ELEMENT", "MAX_CTX", "MIB", "N_UBATCH",
    "FitError", "FitEstimate", "ModelShape", "Verdict", "estimate", "estimate_for_settings",
    "margin_of", "scaled_to_size", "slot_cells", "slot_context",
]  # fmt: skip

MIB = 1 << 20
GIB = 1 << 30
CUDA_OVERHEAD = 384 * MIB
N_UBATCH = 512  # llama-server's default -ub; the compute buffer is reserved for it

# Bytes per KV cache element: ggml block bytes / block elements.
KV_BYTES_PER_ELEMENT: dict[str, float] = {
    "f32": 4.0,
    "f16": 2.0,
    "bf16": 2.0,
    "q8_0": 34 / 32,
    "q4_0": 18 / 32,
    "q4_1": 20 / 32,
    "q5_0": 22 / 32,
    "q5_1": 24 / 32,
    "iq4_nl": 18 / 32,
}
UNQUANTIZED_KV = ("f32", "f16", "bf16")


class FitError(LlmTuiError):
    """The estimate cannot be made from these settings."""


class Verdict(StrEnum):
    FITS = "fits"
    PARTIAL = "partial"  # fits with some layers left in host memory
    NO_FIT = "does not fit"
    UNKNOWN = "unknown"  # no free-VRAM reading to compare with


@dataclass(frozen=True)
class ModelShape:
    """The numbers the estimate needs; build it from a header or by hand."""

    layer_bytes: tuple[int, ...]  # weights of each repeating block, in order
    output_bytes: int  # output head and final norm
    n_embd: int
    n_vocab: int
    kv_heads: tuple[int, ...]  # per block; 0 for a block without attention
    head_dim_k: int
    head_dim_v: int
    sliding_window: int = 0
    swa_layers: tuple[bool, ...] = ()  # per block, True = windowed
    context_length: int = 0  # training context; 0 = unknown
    n_ff: int = 0  # widest feed-forward activation per token
    n_head: int = 0  # query heads (scores without flash attention); 0 = unknown

    @property
    def n_layers(self) -> int:
        return len(self.layer_bytes)

    @classmethod
    def from_header(cls, header: GgufHeader) -> ModelShape:
        tied = 0 if header.has_output_tensor else header.input_bytes
        return cls(
            layer_bytes=header.layer_bytes,
            output_bytes=header.output_bytes + tied,
            n_embd=header.n_embd,
            n_vocab=header.n_vocab,
            kv_heads=header.n_head_kv,
            head_dim_k=header.head_dim_k,
            head_dim_v=header.head_dim_v,
            sliding_window=header.sliding_window,
            swa_layers=header.swa_layers,
            context_length=header.context_length,
            n_ff=header.n_ff,
            n_head=header.n_head,
        )

    @classmethod
    def uniform(
        cls,
        *,
        weights_bytes: int,
        n_layers: int,
        n_embd: int,
        n_vocab: int,
        kv_heads: int,
        head_dim: int,
        output_bytes: int = 0,
        context_length: int = 0,
        n_ff: int = 0,
    ) -> ModelShape:
        """Equal blocks sharing ``weights_bytes`` minus the head; no header needed."""
        per_layer = (weights_bytes - output_bytes) // n_layers
        return cls(
            layer_bytes=(per_layer,) * n_layers,
            output_bytes=output_bytes,
            n_embd=n_embd,
            n_vocab=n_vocab,
            kv_heads=(kv_heads,) * n_layers,
            head_dim_k=head_dim,
            head_dim_v=head_dim,
            context_length=context_length,
            n_ff=n_ff,
        )


@dataclass(frozen=True)
class FitEstimate:
    """VRAM needed with ``gpu_layers`` slots offloaded, and whether that fits."""

    verdict: Verdict
    gpu_layers: int  # the -ngl value this breakdown is for
    total_layers: int  # blocks + the output head: -ngl for full offload
    requested_gpu_layers: int
    ctx: int
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    overhead_bytes: int
    free_vram: int | None
    max_ctx_that_fits: int | None  # fully offloaded, these slots; None: none or unknown
    margin_bytes: int = 0  # kept free on top of the estimate (VRAM_MARGIN_MIB)
    slot_ctx: int = 0  # tokens one request can hold: llama.cpp's slot, capped at training

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.overhead_bytes

    @property
    def summary(self) -> str:
        if self.verdict is Verdict.PARTIAL:
            return f"fits with {self.gpu_layers} of {self.total_layers} layers on the GPU"
        return str(self.verdict)


def slot_context(ctx: int, parallel: int, context_length: int = 0) -> int:
    """Tokens one request can use: its slot, capped at the training context by llama-server."""
    cells = slot_cells(ctx, max(1, parallel))
    return min(cells, context_length) if context_length > 0 else cells


def estimate(
    model: GgufHeader | ModelShape,
    *,
    ctx: int,
    kv_cache_type: str = "f16",
    parallel: int = 1,
    gpu_layers: str | int = "auto",
    free_vram: int | None = None,
    margin: int = 0,
    flash_attn: str = "auto",
    n_ubatch: int = N_UBATCH,
) -> FitEstimate:
    """Estimate VRAM for serving ``model`` with these settings on one GPU.

    ``gpu_layers``: "all", "auto" (full offload, else the most layers that fit, like
    llama-server's auto mode) or a number (-ngl). When the request does not fit in
    ``free_vram - margin``, the verdict is PARTIAL with the most layers that do, or NO_FIT
    when not even one does. ``ctx`` 0 means the model's training context.
    """
    shape = model if isinstance(model, ModelShape) else ModelShape.from_header(model)
    per_element = _kv_bytes_per_element(kv_cache_type)
    if parallel < 1:
        raise FitError(f"PARALLEL must be at least 1, not {parallel}")
    if margin < 0:
        raise FitError(f"the VRAM margin must not be negative, not {margin}")
    flash = flash_attn.strip().lower() != "off"
    if not flash and kv_cache_type.lower() not in UNQUANTIZED_KV:
        raise FitError(
            f"a {kv_cache_type} KV cache needs flash attention (llama-server refuses it)",
            fix="set FLASH_ATTN to auto, or KV_CACHE_TYPE to f16",
        )
    if ctx <= 0:
        ctx = shape.context_length
        if ctx <= 0:
            raise FitError("the model states no context length", fix="set CTX_SIZE")
    total_layers = shape.n_layers + 1
    requested = _requested_layers(gpu_layers, total_layers)
    quantized = kv_cache_type.lower() not in UNQUANTIZED_KV
    buffers = Buffers(shape, per_element, parallel, n_ubatch, quantized_kv=quantized, flash=flash)
    budget = None if free_vram is None else free_vram - margin

    def result(verdict: Verdict, layers: int) -> FitEstimate:
        weights, kv, compute = buffers.parts(layers, ctx)
        best_ctx = buffers.max_ctx(budget - CUDA_OVERHEAD) if budget is not None else None
        return FitEstimate(
            verdict, layers, total_layers, requested, ctx, weights, kv, compute,
            CUDA_OVERHEAD, free_vram, best_ctx, margin,
            slot_context(ctx, parallel, shape.context_length),
        )  # fmt: skip

    if budget is None:
        return result(Verdict.UNKNOWN, requested)

    def fits(layers: int) -> bool:
        return sum(buffers.parts(layers, ctx)) + CUDA_OVERHEAD <= budget

    if fits(requested):
        return result(Verdict.FITS if requested == total_layers else Verdict.PARTIAL, requested)
    for layers in range(requested - 1, 0, -1):
        if fits(layers):
            return result(Verdict.PARTIAL, layers)
    return result(Verdict.NO_FIT, requested)


def _kv_bytes_per_element(kv_cache_type: str) -> float:
    try:
        return KV_BYTES_PER_ELEMENT[kv_cache_type.lower()]
    except KeyError:
        raise FitError(
            f"unknown KV cache type {kv_cache_type!r}",
            fix=f"use one of {', '.join(KV_BYTES_PER_ELEMENT)}",
        ) from None


def _requested_layers(gpu_layers: str | int, total_layers: int) -> int:
    if isinstance(gpu_layers, int):
        count = gpu_layers
    elif gpu_layers.strip().lower() in ("auto", "all"):
        count = total_layers
    elif gpu_layers.strip().isdigit():
        count = int(gpu_layers)
    else:
        raise FitError(
            f"GPU_LAYERS {gpu_layers!r} is not auto, all or a number of layers",
            fix="set GPU_LAYERS to auto, all, or a number",
        )
    return max(0, min(count, total_layers))


def margin_of(settings: Settings) -> int:
    """VRAM_MARGIN_MIB in bytes."""
    return settings.vram_margin_mib * MIB


def estimate_for_settings(
    model: GgufHeader | ModelShape,
    settings: Settings,
    *,
    free_vram: int | None,
    ctx: int | None = None,
) -> FitEstimate | None:
    """The estimate for the stack's own CTX_SIZE, KV_CACHE_TYPE, PARALLEL, GPU_LAYERS,
    FLASH_ATTN and VRAM_MARGIN_MIB.

    None when the header lacks what the arithmetic needs (no layers, no heads).
    """
    try:
        return estimate(
            model,
            ctx=ctx or settings.ctx_size,
            kv_cache_type=settings.kv_cache_type,
            parallel=settings.parallel,
            gpu_layers=settings.gpu_layers,
            free_vram=free_vram,
            margin=margin_of(settings),
            flash_attn=settings.flash_attn,
        )
    except (FitError, ValueError, ZeroDivisionError, OverflowError):
        return None


def scaled_to_size(shape: ModelShape, size: int) -> ModelShape:
    """``shape`` with its weights scaled to another quant's file size (same architecture)."""
    weights = sum(shape.layer_bytes) + shape.output_bytes
    scale = size / weights if weights else 1.0
    return replace(
        shape,
        layer_bytes=tuple(int(b * scale) for b in shape.layer_bytes),
        output_bytes=int(shape.output_bytes * scale),
    )
