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

import math
import mmap
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stack.models.ggml import FILE_TYPES, FIXED_WINDOWS, SWA_PERIODS, TENSOR_TYPES
from stack.models.gguf_cursor import U32, Array, Cursor, check_count
from stack.models.header import (
    MAX_ARRAY_LENGTH,
    MAX_CONTEXT,
    MAX_DIMS,
    MAX_ELEMENTS,
    MAX_EMBEDDING,
    MAX_HEAD_DIM,
    MAX_HEADS,
    MAX_LAYERS,
    MAX_METADATA_KEYS,
    MAX_TENSORS,
    GgufError,
    GgufHeader,
    HeaderIncomplete,
    TruncatedData,
    implausible,
)

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

_PREAMBLE = struct.Struct("<4sIQQ")

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
        "attention.sliding_window_pattern", "feed_forward_length",
        "expert_feed_forward_length", "expert_used_count",
    )
)  # fmt: skip
_MAX_KEPT_KEY = 256


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


def _parse(buf: bytes | bytearray | mmap.mmap, file_size: int | None) -> GgufHeader:
    reader = Cursor(buf)
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
    check_count("tensor count", tensor_count, MAX_TENSORS)
    check_count("metadata key count", kv_count, MAX_METADATA_KEYS)
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
        (vtype,) = reader.unpack(U32)
        kept = key is not None and (key in _KEPT_KEYS or key.endswith(_KEPT_ARCH_KEYS))
        value = reader.value(vtype, keep=kept)
        if key is not None and kept:
            meta[key] = value
    tensors = _TensorTotals()
    for _ in range(tensor_count):
        name = reader.string(keep=1024) or ""
        n_dims = reader.u32()
        if n_dims > MAX_DIMS:
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
    reader: Cursor, meta: Mapping[str, Any], arch: str, n_layers: int, window: int
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
    reader: Cursor,
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
        return check_count(f"{arch}.{key}", found, limit)

    n_layers = number("block_count", MAX_LAYERS)
    n_embd = number("embedding_length", MAX_EMBEDDING)
    n_head = number("attention.head_count", MAX_HEADS)
    head_kv = meta.get(f"{arch}.attention.head_count_kv", meta.get(f"{arch}.attention.head_count"))
    n_head_kv = _per_layer(head_kv, reader.items(head_kv), n_layers, n_head)
    for heads in n_head_kv:
        check_count(f"{arch}.attention.head_count_kv", heads, MAX_HEADS)
    head_dim = n_embd // n_head if n_head else 0
    window = number("attention.sliding_window", MAX_CONTEXT) or FIXED_WINDOWS.get(arch, 0)
    file_type = _int(meta.get("general.file_type"), -1)
    # The widest feed-forward activation per token: a dense block's, or the experts' in use.
    experts = number("expert_used_count", MAX_HEADS)
    n_ff = max(
        number("feed_forward_length", MAX_EMBEDDING),
        experts * number("expert_feed_forward_length", MAX_EMBEDDING),
    )
    tokens = meta.get("tokenizer.ggml.tokens")
    n_vocab = tokens.length if isinstance(tokens, Array) else 0
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
        n_ff=n_ff,
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
