"""Will a model fit in GPU memory? Pure arithmetic over a GGUF header and the settings.

The model follows llama.cpp's placement with one GPU:

* ``-ngl N`` counts layer *slots*: the output head is the first slot to go to the GPU,
  then the last N-1 repeating blocks; ``all`` (and any N > block count) is every block plus
  the head, N = block count + 1. The token embeddings always stay in host memory, but a
  model with tied embeddings loads them a second time as its output head.
* weights: the bytes of the tensors placed on the GPU, as listed in the header.
* KV cache: for each block on the GPU, cells x KV heads x (K dim + V dim) x bytes per
  element of KV_CACHE_TYPE. ``ctx`` (llama-server ``-c``) is the total shared by the
  ``parallel`` slots, rounded up to 256 cells. A sliding-window block keeps
  min(ctx, window x parallel + n_ubatch) cells, as llama.cpp's SWA cache does.
  Recurrent state (Mamba/RWKV layers) is not counted.
* compute buffer: assumes flash attention (llama-server's default on CUDA). The largest
  live tensors per micro-batch are the f32 logits (n_ubatch x n_vocab), a few f32
  activations (4 x n_ubatch x n_embd) and the f16 attention mask (n_ubatch x ctx).
  For an 8B Llama 3 at 8k that is ~290 MiB; llama.cpp reports ~260 MiB.
* CUDA overhead: the context and cuBLAS workspace, ~0.35 GiB.

The sum is compared with the free VRAM as given; llama.cpp's own ``--fit`` keeps a 1 GiB
margin, so callers wanting the same pass ``free_vram - margin``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from stack.errors import LlmTuiError
from stack.models.header import GgufHeader

if TYPE_CHECKING:
    from stack.settings import Settings

GIB = 1 << 30
CUDA_OVERHEAD = int(0.35 * GIB)
N_UBATCH = 512
CTX_STEP = 256
MAX_CTX = 1 << 20  # upper bound for max_ctx_that_fits when the model states none

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
    max_ctx_that_fits: int | None  # fully offloaded, multiple of 256; None: none or unknown

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.overhead_bytes

    @property
    def summary(self) -> str:
        if self.verdict is Verdict.PARTIAL:
            return f"fits with {self.gpu_layers} of {self.total_layers} layers offloaded"
        return str(self.verdict)


def estimate(
    model: GgufHeader | ModelShape,
    *,
    ctx: int,
    kv_cache_type: str = "f16",
    parallel: int = 1,
    gpu_layers: str | int = "auto",
    free_vram: int | None = None,
    n_ubatch: int = N_UBATCH,
) -> FitEstimate:
    """Estimate VRAM for serving ``model`` with these settings on one GPU.

    ``gpu_layers``: "all", "auto" (full offload, else the most layers that fit, like
    llama-server's auto mode) or a number (-ngl). When the request does not fit, the
    verdict is PARTIAL with the most layers that do, or NO_FIT when not even one does.
    ``ctx`` 0 means the model's training context.
    """
    shape = model if isinstance(model, ModelShape) else ModelShape.from_header(model)
    per_element = _kv_bytes_per_element(kv_cache_type)
    if parallel < 1:
        raise FitError(f"PARALLEL must be at least 1, not {parallel}")
    if ctx <= 0:
        ctx = shape.context_length
        if ctx <= 0:
            raise FitError("the model states no context length", fix="set CTX_SIZE")
    total_layers = shape.n_layers + 1
    requested = _requested_layers(gpu_layers, total_layers)
    calc = _Calculator(shape, per_element, parallel, n_ubatch)

    def result(verdict: Verdict, layers: int) -> FitEstimate:
        weights, kv, compute = calc.parts(layers, ctx)
        best_ctx = calc.max_ctx(free_vram) if free_vram is not None else None
        return FitEstimate(
            verdict, layers, total_layers, requested, ctx, weights, kv, compute,
            CUDA_OVERHEAD, free_vram, best_ctx,
        )  # fmt: skip

    if free_vram is None:
        return result(Verdict.UNKNOWN, requested)
    if calc.total(requested, ctx) <= free_vram:
        return result(Verdict.FITS if requested == total_layers else Verdict.PARTIAL, requested)
    for layers in range(requested - 1, 0, -1):
        if calc.total(layers, ctx) <= free_vram:
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


class _Calculator:
    """The estimate's arithmetic, in time independent of the layer count once built.

    Offloading N slots puts the *last* N-1 blocks on the GPU, so every sum over the
    offloaded blocks is a suffix sum: built once per shape (one pass over the layers), each
    breakdown then costs the same for 4 layers or 4000, and the layer search stays linear.
    KV bytes are summed exactly in integers (bytes per element is a ratio of block sizes)
    and rounded once, as the float sum rounded when it was exact.
    """

    def __init__(self, shape: ModelShape, per_element: float, parallel: int, n_ubatch: int):
        self.shape = shape
        self.kv_numerator, self.kv_denominator = per_element.as_integer_ratio()
        self.parallel = parallel
        self.n_ubatch = n_ubatch
        n = shape.n_layers
        # [i]: the sum over blocks i..n-1; [n] = 0 (no block offloaded).
        self.weights_from = [0] * (n + 1)
        self.full_width_from = [0] * (n + 1)  # KV width of full-attention blocks
        self.window_width_from = [0] * (n + 1)  # KV width of sliding-window blocks
        head_width = shape.head_dim_k + shape.head_dim_v
        swa, heads = shape.swa_layers, shape.kv_heads
        for block, size in zip(range(n - 1, -1, -1), reversed(shape.layer_bytes), strict=True):
            width = (heads[block] if block < len(heads) else 0) * head_width
            windowed = block < len(swa) and swa[block]
            self.weights_from[block] = self.weights_from[block + 1] + size
            self.full_width_from[block] = self.full_width_from[block + 1] + (
                0 if windowed else width
            )
            self.window_width_from[block] = self.window_width_from[block + 1] + (
                width if windowed else 0
            )

    def parts(self, gpu_layers: int, ctx: int) -> tuple[int, int, int]:
        """(weights, KV cache, compute buffer) bytes with ``gpu_layers`` slots offloaded."""
        shape = self.shape
        cells = -(-ctx // CTX_STEP) * CTX_STEP
        swa_cells = min(cells, shape.sliding_window * self.parallel + self.n_ubatch)
        first = max(0, shape.n_layers - max(0, gpu_layers - 1))
        weights = (shape.output_bytes if gpu_layers >= 1 else 0) + self.weights_from[first]
        cell_widths = (
            cells * self.full_width_from[first] + swa_cells * self.window_width_from[first]
        )
        kv = _round_ratio(cell_widths * self.kv_numerator, self.kv_denominator)
        compute = self.n_ubatch * (4 * (shape.n_vocab + 4 * shape.n_embd) + 2 * cells)
        return weights, kv, compute

    def total(self, gpu_layers: int, ctx: int) -> int:
        return sum(self.parts(gpu_layers, ctx)) + CUDA_OVERHEAD

    def max_ctx(self, free_vram: int) -> int | None:
        """Largest multiple of 256 that fits fully offloaded, up to the training context."""
        full = self.shape.n_layers + 1
        limit = self.shape.context_length or MAX_CTX
        low, high = 0, limit // CTX_STEP  # in steps; total() grows with ctx
        while low < high:
            middle = (low + high + 1) // 2
            if self.total(full, middle * CTX_STEP) <= free_vram:
                low = middle
            else:
                high = middle - 1
        return low * CTX_STEP if low else None


def _round_ratio(numerator: int, denominator: int) -> int:
    """``round(numerator / denominator)`` done exactly: halves go to the even neighbour."""
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2):
        quotient += 1
    return quotient


def estimate_for_settings(
    model: GgufHeader | ModelShape,
    settings: Settings,
    *,
    free_vram: int | None,
    ctx: int | None = None,
) -> FitEstimate | None:
    """The estimate for the stack's own CTX_SIZE, KV_CACHE_TYPE, PARALLEL and GPU_LAYERS.

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
