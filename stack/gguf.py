"""Read a GGUF file's header without loading it: what the model is, and whether it is whole.

The reader walks the header with ``struct`` over an ``mmap`` (or over a ``bytes`` prefix
fetched from a remote file) and skips the big arrays (token lists, merges, scores) by length
instead of decoding them, so a 150k-token vocabulary costs milliseconds rather than seconds.
A prefix that stops inside the header raises :class:`HeaderIncomplete` with the prefix length
known to be needed, so a remote reader can fetch more and try again.

A header is untrusted input (any repo on the Hub, any file in MODELS_DIR): every count in it
is checked against a plausible limit and against the bytes there are before anything is
sized by it, so a crafted header is refused in milliseconds with a :class:`GgufError`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import mmap
import os
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from stack.engine_errors import SPLIT_NAME
from stack.errors import LlmTuiError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
REDOWNLOAD = "delete it and download it again"

# llama.cpp's llama_ftype (llama.h), general.file_type -> the name llama.cpp prints.
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
    16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
    22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
    28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE", 39: "NVFP4", 40: "Q1_0",
}  # fmt: skip

# ggml_type -> (name, elements per block, bytes per block), from ggml.h / ggml.c.
TENSOR_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}  # fmt: skip

# Sliding-window layout llama.cpp hard-codes per architecture when the GGUF has no
# `<arch>.attention.sliding_window_pattern`: every n-th layer is full attention, the rest
# windowed. Architectures not listed are treated as full attention on every layer (the
# safe side for a memory estimate). llama4 also hard-codes its 8192-token chunk.
SWA_PERIODS: dict[str, int] = {
    "gemma2": 2, "gemma3": 6, "gemma-embedding": 6, "cohere2": 4, "gpt-oss": 2,
    "exaone4": 4, "llama4": 4,
}  # fmt: skip
_FIXED_WINDOWS: dict[str, int] = {"llama4": 8192}

# GGUF value types: scalar struct formats; 8 is a string, 9 an array.
_SCALARS: dict[int, str] = {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_ARRAY_HEAD = struct.Struct("<IQ")
_PREAMBLE = struct.Struct("<4sIQQ")

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
_MAX_DIMS = 4  # GGML_MAX_DIMS
IMPLAUSIBLE = "it is not a model llama.cpp can load: download it again, or pick another file"

# The fewest bytes a metadata entry (empty key, type, one u8) and a tensor info (empty
# name, no dimensions, type, offset) take: a count the file cannot hold is refused at once.
_MIN_KV_BYTES = 8 + 4 + 1
_MIN_TENSOR_BYTES = 8 + 4 + 4 + 8

# Metadata kept for the header, by exact key or by the part after the architecture; the
# rest is skipped unread. Strings up to this size are decoded; scalar arrays up to this
# length are read as per-layer values (longer ones count as absent, as token lists do).
_KEPT_KEYS = frozenset({
    "general.architecture", "general.name", "general.size_label", "general.file_type",
    "general.alignment", "split.no", "split.count", "tokenizer.ggml.tokens",
    "tokenizer.chat_template",
})  # fmt: skip
_KEPT_ARCH_KEYS = tuple(
    "." + k
    for k in (
        "block_count", "embedding_length", "context_length", "vocab_size",
        "attention.head_count", "attention.head_count_kv", "attention.key_length",
        "attention.value_length", "attention.sliding_window",
        "attention.sliding_window_pattern",
    )
)  # fmt: skip
_MAX_KEPT_KEY = 256
_MAX_KEPT_STRING = 4096
_MAX_KEPT_ARRAY = MAX_LAYERS


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


def _check_count(what: str, value: int, limit: int) -> int:
    if value < 0:
        raise implausible(f"{what} {value:,} is negative")
    if value > limit:
        raise implausible(f"{what} {value:,} is more than {limit:,}")
    return value


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


def read_header(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    file_size: int | None = None,
) -> GgufHeader:
    """Parse a GGUF header from a path or from the first bytes of a file.

    A path is memory-mapped; its tensor data is checked against the file size and a short
    file raises :class:`TruncatedData`. For bytes, pass ``file_size`` when it is known (a
    remote file's length) to get the same check; bytes that end inside the header raise
    :class:`HeaderIncomplete`, unless they are the whole file, which is reported as truncated.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        buf = bytes(source) if isinstance(source, memoryview) else source
        try:
            header = _parse_safely(buf, file_size)
        except HeaderIncomplete as exc:
            if file_size is not None and exc.needed > file_size:
                raise _truncated_header(None) from None
            raise
        if header.missing_bytes:
            raise TruncatedData(header)
        return header
    path = Path(source)
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                raise GgufError("the file is empty: incomplete download?", path=path)
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                header = _parse_safely(mapped, size)
    except HeaderIncomplete:
        raise _truncated_header(path) from None
    except GgufError as exc:
        if exc.path is None:
            raise GgufError(exc.reason, path=path, fix=exc.fix) from None
        raise
    except OSError as exc:
        raise GgufError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    if header.missing_bytes:
        raise TruncatedData(header, path=path)
    return header


def _parse_safely(buf: bytes | bytearray | mmap.mmap, file_size: int | None) -> GgufHeader:
    """:func:`_parse`, with any failure the limits missed reported as a bad header.

    The limits keep every structure small, so none of these should happen; if one does,
    it is this file's fault, and a scan or a screen must get a GgufError, not a crash.
    """
    try:
        return _parse(buf, file_size)
    except (MemoryError, OverflowError, RecursionError, ValueError, struct.error) as exc:
        raise implausible(f"the header cannot be read ({type(exc).__name__}: {exc})") from None


def _truncated_header(path: Path | None) -> GgufError:
    return GgufError("the file ends inside its header: incomplete download?", path=path)


def _not_gguf(data: bytes | bytearray | mmap.mmap, path: Path | None) -> GgufError:
    start = bytes(data[:4])
    # safetensors: a u64 header length, then a JSON object.
    hint = " (a safetensors file?)" if bytes(data[8:10]) == b'{"' else ""
    return GgufError(
        f"not a GGUF file: it starts with {start!r}, not {GGUF_MAGIC!r}{hint}",
        path=path,
        fix="llama.cpp only loads .gguf files: download a GGUF build of this model",
    )


@functools.cache
def _short_string_run(count: int) -> re.Pattern[bytes]:
    """``count`` consecutive GGUF strings of at most 127 bytes, matched in C.

    A string is a u64 little-endian length and its bytes. One alternative per length
    (its first byte picks exactly one), so a match is the exact walk a loop would do.
    Vocabulary and merge lists are almost all short strings; a run holding a longer one
    fails to match and is walked in Python instead.
    """
    # Tokens and merges are mostly 3-12 bytes: try those lengths first.
    lengths = [6, 5, 7, 4, 8, 3, 9, 10, 2, 11, 12, 1, *range(13, 128), 0]
    one = b"|".join(re.escape(bytes([n])) + b"\x00{7}" + b".{%d}" % n for n in lengths)
    # Possessive: a run that fails never backtracks into alternatives that cannot match.
    return re.compile(b"(?:%s){%d}+" % (one, count), re.DOTALL)


_RUN = 256


class _Array(NamedTuple):
    """A metadata array left in the buffer: read later, and only as far as it is needed.

    ``fmt`` is the struct code of a scalar item, None for strings (never read).
    """

    fmt: str | None
    start: int
    length: int


class _Reader:
    """A cursor over the header bytes; running past the end raises HeaderIncomplete."""

    def __init__(self, buf: bytes | bytearray | mmap.mmap) -> None:
        self.buf = buf
        self.end = len(buf)
        self.pos = 0

    def need(self, size: int) -> int:
        start = self.pos
        self.pos = start + size
        if self.pos > self.end:
            raise HeaderIncomplete(self.pos, self.end)
        return start

    def unpack(self, fmt: struct.Struct) -> tuple[Any, ...]:
        return fmt.unpack_from(self.buf, self.need(fmt.size))

    def u32(self) -> int:
        return int(_U32.unpack_from(self.buf, self.need(4))[0])

    def u64(self) -> int:
        return int(_U64.unpack_from(self.buf, self.need(8))[0])

    def string(self, keep: int = _MAX_KEPT_STRING) -> str | None:
        """The next string, or None (skipped) when it is longer than ``keep`` bytes."""
        length = _check_count("string length", self.u64(), MAX_STRING_LENGTH)
        start = self.need(length)
        if length > keep:
            return None
        return bytes(self.buf[start : self.pos]).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        buf, pos, end = self.buf, self.pos, self.end
        match = _short_string_run(_RUN).match if count >= _RUN else None
        while count:
            found = match(buf, pos) if match is not None and count >= _RUN else None
            if found is not None:
                pos = found.end()
                count -= _RUN
                continue
            for _ in range(min(count, _RUN)):
                if pos + 8 > end:
                    raise HeaderIncomplete(pos + 8, end)
                length = _U64.unpack_from(buf, pos)[0]
                if length > MAX_STRING_LENGTH:
                    _check_count("string length", length, MAX_STRING_LENGTH)
                pos += 8 + length
                if pos > end:
                    raise HeaderIncomplete(pos, end)
            count -= min(count, _RUN)
        self.pos = pos

    def value(self, vtype: int, *, keep: bool = True) -> Any:
        """One metadata value: a scalar, a str (None when skipped) or an :class:`_Array`."""
        if vtype in _SCALARS:
            fmt = "<" + _SCALARS[vtype]
            return struct.unpack_from(fmt, self.buf, self.need(struct.calcsize(fmt)))[0]
        if vtype == _STRING:
            return self.string(_MAX_KEPT_STRING if keep else -1)
        if vtype != _ARRAY:
            raise GgufError(f"unknown metadata value type {vtype}: the header is corrupt")
        item_type, count = self.unpack(_ARRAY_HEAD)
        _check_count("array length", count, MAX_ARRAY_LENGTH)
        if item_type in _SCALARS:
            code = _SCALARS[item_type]
            return _Array(code, self.need(count * struct.calcsize("<" + code)), count)
        if item_type == _STRING:
            self.skip_strings(count)
            return _Array(None, -1, count)
        if item_type == _ARRAY:
            # llama.cpp refuses them too (gguf.cpp: "has invalid GGUF type").
            raise implausible("an array of arrays in the metadata")
        raise GgufError(f"unknown metadata array type {item_type}: the header is corrupt")

    def items(self, value: Any, limit: int = _MAX_KEPT_ARRAY) -> list[Any] | None:
        """The items of a scalar array up to ``limit`` long; None for anything else."""
        if not isinstance(value, _Array) or value.fmt is None or value.length > limit:
            return None
        return list(struct.unpack_from(f"<{value.length}{value.fmt}", self.buf, value.start))


def _parse(buf: bytes | bytearray | mmap.mmap, file_size: int | None) -> GgufHeader:
    reader = _Reader(buf)
    if not GGUF_MAGIC.startswith(bytes(buf[:4])):
        raise _not_gguf(buf, None)
    _, version, tensor_count, kv_count = reader.unpack(_PREAMBLE)
    if version not in SUPPORTED_VERSIONS:
        swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
        detail = " (a big-endian file)" if swapped in SUPPORTED_VERSIONS else ""
        raise GgufError(
            f"unsupported GGUF version {version}{detail}; llm-tui reads versions 2 and 3",
            fix="download a current GGUF conversion of this model",
        )
    _check_count("tensor count", tensor_count, MAX_TENSORS)
    _check_count("metadata key count", kv_count, MAX_METADATA_KEYS)
    least = reader.pos + kv_count * _MIN_KV_BYTES + tensor_count * _MIN_TENSOR_BYTES
    if file_size is not None and least > file_size:
        raise implausible(
            f"{kv_count:,} metadata keys and {tensor_count:,} tensors need at least "
            f"{least:,} bytes, and the file has {file_size:,}"
        )
    if least > reader.end:
        raise HeaderIncomplete(least, reader.end)
    meta: dict[str, Any] = {}
    for _ in range(kv_count):
        key = reader.string(keep=_MAX_KEPT_KEY)
        (vtype,) = reader.unpack(_U32)
        kept = key is not None and (key in _KEPT_KEYS or key.endswith(_KEPT_ARCH_KEYS))
        value = reader.value(vtype, keep=kept)
        if key is not None and kept:
            meta[key] = value
    tensors = _TensorTotals()
    for _ in range(tensor_count):
        name = reader.string(keep=1024) or ""
        n_dims = reader.u32()
        if n_dims > _MAX_DIMS:
            raise GgufError(f"tensor {name!r} has {n_dims} dimensions: the header is corrupt")
        dims = struct.unpack_from(f"<{n_dims}Q", buf, reader.need(8 * n_dims))
        ggml_type = reader.u32()
        offset = reader.u64()
        tensors.add(name, _elements(name, dims), dims, ggml_type, offset)
    alignment = meta.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GgufError(f"general.alignment {alignment!r} is not a power of two")
    data_offset = -(-reader.pos // alignment) * alignment
    return _build(reader, meta, tensors, version, tensor_count, alignment, data_offset, file_size)


def _elements(name: str, dims: Sequence[int]) -> int:
    """A tensor's element count, refused where llama.cpp's int64 arithmetic would overflow."""
    elements = 1
    for dim in dims:
        elements *= dim
        if elements > MAX_ELEMENTS:
            raise implausible(f"tensor {name!r} has more than {MAX_ELEMENTS:,} elements")
    return elements


class _TensorTotals:
    """Sums over tensor infos: parameters, bytes per layer, where the data ends."""

    def __init__(self) -> None:
        self.parameters = 0
        self.data_end = 0
        self.layer_bytes: dict[int, int] = {}
        self.input_bytes = 0
        self.output_bytes = 0
        self.has_output = False
        self.elements_by_type: dict[int, int] = {}

    def per_layer(self, n_layers: int) -> tuple[int, ...]:
        # A split set's later shards hold blocks but no block_count: size by what is there.
        # Both are at most MAX_LAYERS.
        count = max(n_layers, max(self.layer_bytes, default=-1) + 1)
        return tuple(self.layer_bytes.get(i, 0) for i in range(count))

    def add(
        self, name: str, elements: int, dims: Sequence[int], ggml_type: int, offset: int
    ) -> None:
        self.parameters += elements
        info = TENSOR_TYPES.get(ggml_type)
        size = -(-elements // info[1]) * info[2] if info else 0
        if offset + size > MAX_ELEMENTS:
            raise implausible(f"tensor {name!r} ends past {MAX_ELEMENTS:,} bytes")
        self.data_end = max(self.data_end, offset + size)
        if len(dims) >= 2:
            # Unknown types share one bucket, so this stays as small as the type table.
            bucket = ggml_type if info else -1
            self.elements_by_type[bucket] = self.elements_by_type.get(bucket, 0) + elements
        if name.startswith("blk."):
            layer = name.split(".", 2)[1]
            # ASCII only: str.isdigit() also accepts digits int() refuses, such as "²".
            if layer.isascii() and layer.isdigit():
                index = int(layer)
                if index >= MAX_LAYERS:
                    raise implausible(
                        f"tensor {name!r} is in layer {index:,}; a model has at most "
                        f"{MAX_LAYERS:,} layers"
                    )
                self.layer_bytes[index] = self.layer_bytes.get(index, 0) + size
                return
        if name.startswith("token_embd."):
            self.input_bytes += size
            return
        self.has_output = self.has_output or name == "output.weight"
        self.output_bytes += size


def _int(value: Any, default: int = 0) -> int:
    """A metadata number as an int; anything else (absent, text, array, inf) gives ``default``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    if isinstance(value, float) and not math.isfinite(value):
        return default
    return int(value)


def _per_layer(value: Any, items: list[Any] | None, n_layers: int, default: int) -> tuple[int, ...]:
    """A per-layer hyperparameter stored either as one number or as an array per layer."""
    if items:
        values = [_int(v) for v in items[:n_layers]]
        return tuple(values + [values[-1]] * (n_layers - len(values)))
    return (_int(value, default),) * n_layers


def _swa_layers(
    reader: _Reader, meta: Mapping[str, Any], arch: str, n_layers: int, window: int
) -> tuple[bool, ...]:
    if window <= 0:
        return ()
    pattern = meta.get(f"{arch}.attention.sliding_window_pattern")
    listed = reader.items(pattern)
    if listed:
        flags = [bool(v) for v in listed[:n_layers]]
        return tuple(flags + [False] * (n_layers - len(flags)))
    period = int(pattern) if isinstance(pattern, int) else SWA_PERIODS.get(arch)
    if period is None:
        return ()
    # llama.cpp's set_swa_pattern: 0 = every layer windowed, n = the n-th layer is full.
    layers = tuple(period == 0 or i % period < period - 1 for i in range(n_layers))
    return layers if any(layers) else ()


def _build(
    reader: _Reader,
    meta: Mapping[str, Any],
    tensors: _TensorTotals,
    version: int,
    tensor_count: int,
    alignment: int,
    data_offset: int,
    file_size: int | None,
) -> GgufHeader:
    arch = str(meta.get("general.architecture") or "")

    def number(key: str, limit: int, default: int = 0) -> int:
        value = meta.get(f"{arch}.{key}")
        items = reader.items(value)
        if items is not None:
            found = max((_int(v) for v in items), default=default)
        else:
            found = _int(value, default)
        return _check_count(f"{arch}.{key}", found, limit)

    n_layers = number("block_count", MAX_LAYERS)
    n_embd = number("embedding_length", MAX_EMBEDDING)
    n_head = number("attention.head_count", MAX_HEADS)
    head_kv = meta.get(f"{arch}.attention.head_count_kv", meta.get(f"{arch}.attention.head_count"))
    n_head_kv = _per_layer(head_kv, reader.items(head_kv), n_layers, n_head)
    for heads in n_head_kv:
        _check_count(f"{arch}.attention.head_count_kv", heads, MAX_HEADS)
    head_dim = n_embd // n_head if n_head else 0
    window = number("attention.sliding_window", MAX_CONTEXT) or _FIXED_WINDOWS.get(arch, 0)
    file_type = _int(meta.get("general.file_type"), -1)
    tokens = meta.get("tokenizer.ggml.tokens")
    n_vocab = tokens.length if isinstance(tokens, _Array) else 0
    return GgufHeader(
        version=version,
        architecture=arch,
        name=str(meta.get("general.name") or ""),
        size_label=str(meta.get("general.size_label") or ""),
        file_type=file_type if file_type >= 0 else None,
        quant=_quant_name(file_type, tensors.elements_by_type),
        parameter_count=tensors.parameters,
        context_length=number("context_length", MAX_CONTEXT),
        n_layers=n_layers,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=number("attention.key_length", MAX_HEAD_DIM, head_dim),
        head_dim_v=number("attention.value_length", MAX_HEAD_DIM, head_dim),
        n_vocab=n_vocab or number("vocab_size", MAX_ARRAY_LENGTH),
        sliding_window=window,
        swa_layers=_swa_layers(reader, meta, arch, n_layers, window),
        split_no=_int(meta.get("split.no")),
        split_count=_int(meta.get("split.count")),
        has_chat_template="tokenizer.chat_template" in meta,
        tensor_count=tensor_count,
        alignment=alignment,
        data_offset=data_offset,
        data_size=tensors.data_end,
        file_size=file_size,
        layer_bytes=tensors.per_layer(n_layers),
        input_bytes=tensors.input_bytes,
        output_bytes=tensors.output_bytes,
        has_output_tensor=tensors.has_output,
    )


def _quant_name(file_type: int, elements_by_type: Mapping[int, int]) -> str:
    """llama.cpp's name for general.file_type, else the type holding most weights."""
    if file_type in FILE_TYPES:
        return FILE_TYPES[file_type]
    if elements_by_type:
        dominant = max(elements_by_type, key=elements_by_type.__getitem__)
        if dominant in TENSOR_TYPES:
            return TENSOR_TYPES[dominant][0]
    return f"file type {file_type}" if file_type >= 0 else "unknown"


def split_shard_paths(path: Path) -> list[Path] | None:
    """All file names of the split set ``path`` belongs to, or None if it is not one."""
    match = SPLIT_NAME.match(path.name)
    if match is None:
        return None
    count = int(match["count"])
    return [path.parent / split_shard_name(match["stem"], i, count) for i in range(1, count + 1)]


def split_shard_name(stem: str, index: int, count: int) -> str:
    """``<stem>-0000i-of-0000n.gguf``, as gguf-split names shard ``index`` (from 1)."""
    return f"{stem}-{index:05d}-of-{count:05d}.gguf"


# A problem lists this many missing shards by name and counts the rest.
MAX_NAMED_SHARDS = 3


def split_set_problem(
    first: Path, count: int, headers: Mapping[Path, GgufHeader | None]
) -> str | None:
    """Why the split set of ``count`` shards whose shard 1 is ``first`` is unusable.

    ``headers`` maps each existing shard (named as the set's) to its header (None: it
    could not be read; a shard absent from the mapping is missing). The work is the shards
    present plus a few, however many the names announce: a name is no reason to walk
    99,999 files.
    """
    match = SPLIT_NAME.match(first.name)
    if match is None:
        raise ValueError(f"{first.name} is not named like a split set")
    stem = match["stem"]
    missing = count - len(headers)
    if missing > 0:
        named: list[str] = []
        index = 1  # each step is a present shard or a missing one named: few steps
        while len(named) < MAX_NAMED_SHARDS and index <= count:
            path = first.parent / split_shard_name(stem, index, count)
            if path not in headers:
                named.append(path.name)
            index += 1
        more = f" and {missing - len(named):,} more" if missing > len(named) else ""
        return f"split set incomplete: missing {', '.join(named)}{more}"
    for shard in sorted(headers, key=lambda p: p.name):
        header = headers[shard]
        found = SPLIT_NAME.match(shard.name)
        if header is None or found is None:
            continue
        index = int(found["index"]) - 1
        if header.split_count != count or header.split_no != index:
            return (
                f"{shard.name} says it is shard {header.split_no + 1} of {header.split_count}, "
                f"not {index + 1} of {count}: shards from different downloads?"
            )
    return None


def check_split_set(path: Path) -> list[Path]:
    """The shards of the split set ``path`` belongs to, after checking each is present.

    Raises GgufError when a shard is missing, unreadable, truncated or from another set.
    A file that is not named like a split set is returned alone.
    """
    shards = split_shard_paths(path)
    if shards is None:
        return [path]
    headers: dict[Path, GgufHeader | None] = {}
    for shard in shards:
        if shard.is_file():
            headers[shard] = read_header(shard)
    problem = split_set_problem(shards[0], len(shards), headers)
    if problem:
        raise GgufError(
            problem, path=shards[0], fix="download every shard of the set into the same folder"
        )
    return shards


def combine_shards(headers: Sequence[GgufHeader]) -> GgufHeader:
    """One header for a whole split set: metadata of shard 1, tensor totals of all shards."""
    first = min(headers, key=lambda h: h.split_no)
    sizes = [h.file_size for h in headers]
    count = max(len(h.layer_bytes) for h in headers)
    layers = [
        sum(h.layer_bytes[i] for h in headers if i < len(h.layer_bytes)) for i in range(count)
    ]
    return dataclasses.replace(
        first,
        parameter_count=sum(h.parameter_count for h in headers),
        tensor_count=sum(h.tensor_count for h in headers),
        data_size=sum(h.data_size for h in headers),
        file_size=None if None in sizes else sum(s or 0 for s in sizes),
        layer_bytes=tuple(layers),
        input_bytes=sum(h.input_bytes for h in headers),
        output_bytes=sum(h.output_bytes for h in headers),
        has_output_tensor=any(h.has_output_tensor for h in headers),
    )
