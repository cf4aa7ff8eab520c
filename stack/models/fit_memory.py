"""The buffers llama-server allocates on the GPU, summed in time independent of the layers.

`stack.models.fit` explains each part; this module does the arithmetic. Offloading N
slots puts the *last* N-1 blocks on the GPU, so every sum (and maximum) over the offloaded
blocks is a suffix, and every one over the blocks left on the CPU a prefix: built once
per shape, each breakdown then costs the same for 4 layers or 4000, and the layer search
stays linear. KV bytes are summed exactly in integers (bytes per element is a ratio of
block sizes) and rounded once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stack.models.fit import ModelShape

CTX_STEP = 256  # llama.cpp pads every KV stream to this many cells
MAX_CTX = 1 << 20  # upper bound for max_ctx_that_fits when the model states none
F32, F16 = 4, 2
# Tensors of the residual width alive at the compute buffer's peak (the final norm's input
# and output, or a block's input and its attention output).
RESIDUAL_ACTIVATIONS = 2
# A feed-forward-wide working set (gate, up and their product): what the measured 8B and
# 3B differ by beyond the other parts.
FFN_ACTIVATIONS = 3


def pad(value: int, step: int = CTX_STEP) -> int:
    return -(-value // step) * step


def slot_cells(ctx: int, parallel: int) -> int:
    """KV cells llama.cpp gives each of ``parallel`` slots for ``-c ctx`` (llama-context.cpp).

    The context is padded to 256, divided (rounding down) among the slots, and each share
    padded to 256 again: ``-c 7424 -np 4`` gives 4 x 2048 cells.
    """
    return max(CTX_STEP, pad(pad(ctx) // parallel))


class Buffers:
    """Weights, KV cache and compute buffer on the GPU for one shape and KV setting."""

    def __init__(
        self,
        shape: ModelShape,
        per_element: float,
        parallel: int,
        n_ubatch: int,
        *,
        quantized_kv: bool,
        flash: bool,
    ) -> None:
        self.shape = shape
        self.kv_numerator, self.kv_denominator = per_element.as_integer_ratio()
        self.parallel = parallel
        self.n_ubatch = n_ubatch
        self.quantized_kv = quantized_kv
        self.flash = flash
        n = shape.n_layers
        # Suffixes, [i] over blocks i..n-1 ([n]: no block offloaded): weights, the KV width
        # of full-attention and of sliding-window blocks, and the widest of each.
        self.weights_from = [0] * (n + 1)
        self.full_width_from = [0] * (n + 1)
        self.window_width_from = [0] * (n + 1)
        self.widest_full_from = [0] * (n + 1)
        self.widest_window_from = [0] * (n + 1)
        head_width = shape.head_dim_k + shape.head_dim_v
        swa, heads = shape.swa_layers, shape.kv_heads
        self.has_full = self.has_window = False
        for block in range(n - 1, -1, -1):
            width = (heads[block] if block < len(heads) else 0) * head_width
            windowed = block < len(swa) and swa[block]
            self.has_window = self.has_window or windowed
            self.has_full = self.has_full or not windowed
            full, window = (0, width) if windowed else (width, 0)
            self.weights_from[block] = self.weights_from[block + 1] + shape.layer_bytes[block]
            self.full_width_from[block] = self.full_width_from[block + 1] + full
            self.window_width_from[block] = self.window_width_from[block + 1] + window
            self.widest_full_from[block] = max(self.widest_full_from[block + 1], full)
            self.widest_window_from[block] = max(self.widest_window_from[block + 1], window)
        # Prefix, [i] over blocks 0..i-1: the largest block left on the CPU.
        self.largest_upto = [0] * (n + 1)
        for block, size in enumerate(shape.layer_bytes):
            self.largest_upto[block + 1] = max(self.largest_upto[block], size)

    def parts(self, gpu_layers: int, ctx: int) -> tuple[int, int, int]:
        """(weights, KV cache, compute buffer) bytes with ``gpu_layers`` slots offloaded."""
        shape, parallel = self.shape, self.parallel
        seq = slot_cells(ctx, parallel)
        window_seq = pad(min(seq, shape.sliding_window + self.n_ubatch)) if self.has_window else 0
        first = max(0, shape.n_layers - max(0, gpu_layers - 1))
        head_on_gpu = gpu_layers >= 1
        weights = (shape.output_bytes if head_on_gpu else 0) + self.weights_from[first]
        cell_widths = parallel * (
            seq * self.full_width_from[first] + window_seq * self.window_width_from[first]
        )
        kv = _round_ratio(cell_widths * self.kv_numerator, self.kv_denominator)
        tokens = min(self.n_ubatch, seq * parallel)
        compute = tokens * (
            F32 * shape.n_vocab  # logits of every token of the micro-batch
            + F32 * RESIDUAL_ACTIVATIONS * shape.n_embd
            + F32 * FFN_ACTIVATIONS * shape.n_ff
            # one f16 mask per attention kind, slot cells wide
            + F16 * ((seq if self.has_full else 0) + window_seq)
        )
        if self.flash and self.quantized_kv:
            # K and V of one layer's whole cache, converted to f16 for the kernel.
            compute += (
                F16
                * parallel
                * max(
                    seq * self.widest_full_from[first], window_seq * self.widest_window_from[first]
                )
            )
        if not self.flash:
            # f32 scores of every head over the slot's cells, and their softmax.
            compute += 2 * F32 * max(shape.n_head, 1) * seq * tokens
        if gpu_layers < shape.n_layers + 1:
            # Prompt batches run CPU-held weights on the GPU: one block (or the head) copied.
            compute += max(self.largest_upto[first], 0 if head_on_gpu else shape.output_bytes)
        return weights, kv, compute

    def total(self, gpu_layers: int, ctx: int) -> int:
        return sum(self.parts(gpu_layers, ctx))

    def max_ctx(self, budget: int) -> int | None:
        """Largest ``-c`` that fits ``budget`` fully offloaded, in whole 256-cell slots.

        Up to the training context per slot (llama-server caps a slot there); None when
        not even 256 cells a slot fit.
        """
        full = self.shape.n_layers + 1
        step = CTX_STEP * self.parallel
        limit = (self.shape.context_length or MAX_CTX) * self.parallel
        low, high = 0, limit // step  # in steps; total() grows with ctx
        while low < high:
            middle = (low + high + 1) // 2
            if self.total(full, middle * step) <= budget:
                low = middle
            else:
                high = middle - 1
        return low * step if low else None


def _round_ratio(numerator: int, denominator: int) -> int:
    """``round(numerator / denominator)`` done exactly: halves go to the even neighbour."""
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2):
        quotient += 1
    return quotient
