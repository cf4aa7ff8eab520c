"""What a GGUF header says about its model, what a plausible one looks like, and its errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack.errors import LlmTuiError

REDOWNLOAD = "delete it and download it again"

# Plausibility limits. Real models stay far below each (a few hundred layers at most, a few
# thousand tensors, under a hundred metadata keys, vocabularies under 300k tokens, 128
# attention heads, a 10M-token context); a header past one is refused before anything is
# sized by it, so memory and time stay bounded whatever the header claims.
MAX_LAYERS = 4096  # block_count and every blk.N index
MAX_TENSORS = 1 << 16
MAX_METADATA_KEYS = 4096
MAX_ARRAY_LENGTH = 1 << 24  # token, merge and score lists
MAX_STRING_LENGTH = 1 << 24  # chat templates are the longest, tens of KB
MAX_EMBEDDING = 1 << 20
MAX_HEADS = 1 << 14  # per layer, query and KV heads alike
MAX_HEAD_DIM = 1 << 16
MAX_CONTEXT = 1 << 32  # training context and sliding window
MAX_ELEMENTS = (1 << 63) - 1  # llama.cpp's INT64_MAX checks on tensor shapes and offsets
MAX_DIMS = 4  # GGML_MAX_DIMS
IMPLAUSIBLE = "it is not a model llama.cpp can load: download it again, or pick another file"


class GgufError(LlmTuiError):
    """A GGUF file is unreadable, incomplete or not GGUF at all."""

    def __init__(
        self, reason: str, *, path: Path | None = None, fix: str | None = REDOWNLOAD
    ) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path.name}: {reason}" if path else reason, fix=fix)


def implausible(reason: str) -> GgufError:
    """A header that no real model has: refused before anything is sized by it."""
    return GgufError(f"not a plausible GGUF: {reason}", fix=IMPLAUSIBLE)


class HeaderIncomplete(GgufError):
    """The bytes given end inside the header; ``needed`` bytes of prefix are required.

    ``needed`` is a lower bound (the next item may reveal more): fetch at least that much,
    preferably double what was given, and read again.
    """

    def __init__(self, needed: int, have: int) -> None:
        self.needed = needed
        self.have = have
        super().__init__(
            f"the header continues past the {have:,} bytes given (need at least {needed:,})",
            fix="read a longer prefix of the file",
        )


class TruncatedData(GgufError):
    """The header is whole but the tensor data stops early; ``header`` is still usable."""

    def __init__(self, header: GgufHeader, *, path: Path | None = None) -> None:
        self.header = header
        self.missing = header.missing_bytes
        super().__init__(
            f"the file is {self.missing:,} bytes short of its last tensor "
            f"({header.file_size:,} of {header.data_offset + header.data_size:,} bytes): "
            "incomplete download?",
            path=path,
        )


@dataclass(frozen=True)
class GgufHeader:
    """What a GGUF header says about its model; sizes are bytes, counts are per file."""

    version: int
    architecture: str
    name: str
    size_label: str
    file_type: int | None  # general.file_type, None when absent
    quant: str  # from file_type, else the dominant tensor type
    parameter_count: int  # sum of tensor element counts
    context_length: int  # training context, 0 when absent
    n_layers: int  # <arch>.block_count
    n_embd: int
    n_head: int
    n_head_kv: tuple[int, ...]  # per layer (0 = a layer without attention)
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    sliding_window: int  # 0 = none
    swa_layers: tuple[bool, ...]  # per layer, True = windowed; empty = no windowed layer
    split_no: int  # 0-based shard index
    split_count: int  # 0 = not a split set
    has_chat_template: bool
    tensor_count: int
    alignment: int
    data_offset: int  # where tensor data starts
    data_size: int  # bytes from data_offset to the end of the last tensor
    file_size: int | None  # None for a prefix whose file size is unknown
    layer_bytes: tuple[int, ...]  # tensor bytes of each repeating block (blk.N.*)
    input_bytes: int  # token embeddings: llama.cpp keeps them in host memory
    output_bytes: int  # output head and norms: on the GPU whenever any layer is
    has_output_tensor: bool  # False: the head reuses token_embd (tied embeddings)
    n_ff: int = 0  # widest feed-forward activation per token (experts in use x their width)

    @property
    def kv_heads(self) -> int:
        return max(self.n_head_kv, default=0)

    @property
    def missing_bytes(self) -> int:
        if self.file_size is None:
            return 0
        return max(0, self.data_offset + self.data_size - self.file_size)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GgufHeader:
        """Rebuild from :meth:`as_dict` output (e.g. JSON); KeyError/TypeError if it differs."""
        names = {f.name for f in dataclasses.fields(cls)}
        if set(data) != names:
            raise KeyError(f"fields differ: {sorted(set(data) ^ names)}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**values)
