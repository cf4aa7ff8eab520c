"""Sparse GGUF files with the header of a real model: its shape, vocabulary size and quants.

The header is what llama.cpp's converter and `llama-quantize` write for the model: the
metadata, a byte-level BPE vocabulary of the real size (so llama.cpp loads the file), and
every tensor's name, shape and type. The tensor data is a hole (``os.truncate`` to the full
size), so an 8B file is 4.9 GB long on disk without taking that space, and the fit, the
library and llama.cpp's own tools see the real sizes.

Q4_K_M types follow llama.cpp's rules (src/llama-quant.cpp, ``llama_tensor_get_type_impl``,
at the commit the stack pins): every 2-D weight is Q4_K except

* ``output.weight`` — Q6_K; a model with tied embeddings has no output tensor and its
  ``token_embd`` takes the output's type (Q6_K), because llama.cpp loads it a second time
  as the output head;
* ``attn_v`` and ``ffn_down`` of the layers ``use_more_bits`` picks (the first and last
  eighth, and every third layer between) — Q6_K;
* a tensor whose rows do not divide into 256-element blocks falls back (Q4_K → Q5_0,
  Q6_K → Q8_0).

Norms and ``rope_freqs`` stay F32 (only 2-D tensors are quantized).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from tests.support.gguf_factory import CHATML_TEMPLATE, _big_vocab, _model_rng

Q = gguf.GGMLQuantizationType
Q4_K_M = 15  # general.file_type (llama_ftype)
_FALLBACK = {Q.Q4_K: Q.Q5_0, Q.Q6_K: Q.Q8_0}


@dataclass(frozen=True)
class RealShape:
    """A published model's architecture, as its GGUF header states it."""

    name: str
    architecture: str
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_vocab: int
    context_length: int
    tied_embeddings: bool
    rope_freqs: bool = False  # Llama 3.1/3.2 carry llama3 RoPE scaling factors
    sliding_window: int = 0
    extra_norms: tuple[str, ...] = ()  # per-block norms beyond attn_norm / ffn_norm


LLAMA_3_1_8B = RealShape(
    name="Llama-3.1-8B-Instruct",
    architecture="llama",
    n_layers=32,
    n_embd=4096,
    n_head=32,
    n_head_kv=8,
    head_dim=128,
    n_ff=14336,
    n_vocab=128_256,
    context_length=131_072,
    tied_embeddings=False,
    rope_freqs=True,
)
LLAMA_3_2_3B = RealShape(
    name="Llama-3.2-3B-Instruct",
    architecture="llama",
    n_layers=28,
    n_embd=3072,
    n_head=24,
    n_head_kv=8,
    head_dim=128,
    n_ff=8192,
    n_vocab=128_256,
    context_length=131_072,
    tied_embeddings=True,
    rope_freqs=True,
)
# Gemma 3 4B: five sliding-window layers (1024 tokens) to each full-attention layer.
GEMMA_3_4B = RealShape(
    name="gemma-3-4b-it",
    architecture="gemma3",
    n_layers=34,
    n_embd=2560,
    n_head=8,
    n_head_kv=4,
    head_dim=256,
    n_ff=10240,
    n_vocab=262_144,
    context_length=131_072,
    tied_embeddings=True,
    sliding_window=1024,
    extra_norms=("attn_q_norm", "attn_k_norm", "post_attention_norm", "post_ffw_norm"),
)


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama-quant.cpp's choice of layers that keep more bits (C integer division)."""
    eighth = n_layers // 8
    return i_layer < eighth or i_layer >= 7 * n_layers // 8 or (i_layer - eighth) % 3 == 2


def _q4_k_m(ne0: int, wanted: Q) -> Q:
    return _FALLBACK[wanted] if ne0 % 256 else wanted


def tensor_layout(shape: RealShape) -> list[tuple[str, tuple[int, ...], Q]]:
    """Every tensor as (name, ggml ne dimensions, type) for a Q4_K_M file of ``shape``."""
    d, kv = shape.n_embd, shape.n_head_kv * shape.head_dim
    q = shape.n_head * shape.head_dim
    f32 = Q.F32
    embd_type = Q.Q6_K if shape.tied_embeddings else Q.Q4_K
    layout: list[tuple[str, tuple[int, ...], Q]] = [
        ("token_embd.weight", (d, shape.n_vocab), _q4_k_m(d, embd_type)),
    ]
    if shape.rope_freqs:
        layout.append(("rope_freqs.weight", (shape.head_dim // 2,), f32))
    for i in range(shape.n_layers):
        more = use_more_bits(i, shape.n_layers)
        wide = Q.Q6_K if more else Q.Q4_K
        block = f"blk.{i}."
        layout += [
            (block + "attn_norm.weight", (d,), f32),
            (block + "attn_q.weight", (d, q), _q4_k_m(d, Q.Q4_K)),
            (block + "attn_k.weight", (d, kv), _q4_k_m(d, Q.Q4_K)),
            (block + "attn_v.weight", (d, kv), _q4_k_m(d, wide)),
            (block + "attn_output.weight", (q, d), _q4_k_m(q, Q.Q4_K)),
            (block + "ffn_norm.weight", (d,), f32),
            (block + "ffn_gate.weight", (d, shape.n_ff), _q4_k_m(d, Q.Q4_K)),
            (block + "ffn_up.weight", (d, shape.n_ff), _q4_k_m(d, Q.Q4_K)),
            (block + "ffn_down.weight", (shape.n_ff, d), _q4_k_m(shape.n_ff, wide)),
        ]
        for norm in shape.extra_norms:
            width = shape.head_dim if norm in ("attn_q_norm", "attn_k_norm") else d
            layout.append((block + f"{norm}.weight", (width,), f32))
    layout.append(("output_norm.weight", (d,), f32))
    if not shape.tied_embeddings:
        layout.append(("output.weight", (d, shape.n_vocab), _q4_k_m(d, Q.Q6_K)))
    return layout


def tensor_bytes(dims: tuple[int, ...], ggml_type: Q) -> int:
    block, size = gguf.GGML_QUANT_SIZES[ggml_type]
    elements = int(np.prod(dims))
    return elements // block * size


def write_sparse_model(
    path: Path, shape: RealShape, *, token_embd_type: Q | None = None, seed: int = 0
) -> Path:
    """A Q4_K_M GGUF of ``shape`` whose tensor data is a hole; returns ``path``.

    ``token_embd_type`` overrides the embedding's type (e.g. a converter that does not
    know the embeddings are tied writes Q4_K there).
    """
    layout = tensor_layout(shape)
    if token_embd_type is not None:
        name, dims, _ = layout[0]
        layout[0] = (name, dims, token_embd_type)
    arch = shape.architecture
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, arch)
    writer.add_name(shape.name)
    writer.add_file_type(Q4_K_M)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layers)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_key_length(shape.head_dim)
    writer.add_value_length(shape.head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(shape.head_dim)
    writer.add_rope_freq_base(500_000.0)
    writer.add_vocab_size(shape.n_vocab)
    if shape.sliding_window:
        writer.add_sliding_window(shape.sliding_window)
    vocab = _big_vocab(shape.n_vocab, _model_rng(shape.name, seed))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(vocab.bos_id)
    writer.add_eos_token_id(vocab.eos_id)
    writer.add_chat_template(CHATML_TEMPLATE)
    for name, dims, ggml_type in layout:
        # numpy order is the reverse of ggml's ne order.
        writer.add_tensor_info(
            name, tuple(reversed(dims)), np.dtype(np.float32), tensor_bytes(dims, ggml_type),
            raw_dtype=ggml_type,
        )  # fmt: skip
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    alignment = writer.data_alignment
    header_end = path.stat().st_size
    data_start = -(-header_end // alignment) * alignment
    *padded, last = (tensor_bytes(dims, t) for _, dims, t in layout)
    offsets = sum(-(-size // alignment) * alignment for size in padded)
    os.truncate(path, data_start + offsets + last)
    return path
