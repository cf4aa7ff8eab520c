"""Tiny GGUF models generated on the fly, so tests never download weights.

The models are real llama-architecture checkpoints that llama-server loads in milliseconds:
random weights (seeded from ``name`` and ``seed``) over a byte-level BPE vocabulary with
ChatML control tokens. Two tricks make the output test-friendly:

* residual dimension 0 carries a constant that no layer writes to, and the output matrix
  reads it as a per-token bias, so sampling favours printable ASCII and never picks bytes
  that would break UTF-8 or the end-of-generation tokens. Generations therefore always run
  to ``max_tokens`` (clients must send it) and are plain, readable gibberish;
* everything else is random, so a different name or seed gives different text for the
  same prompt, and the same model with temperature 0 gives the same text every time.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

GGUF_MAGIC = b"GGUF"

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# general.file_type values this factory can write (weights of 2-D tensors; norms stay F32).
_WEIGHT_TYPES: dict[int, gguf.GGMLQuantizationType] = {
    gguf.LlamaFileType.ALL_F32: gguf.GGMLQuantizationType.F32,
    gguf.LlamaFileType.MOSTLY_F16: gguf.GGMLQuantizationType.F16,
    gguf.LlamaFileType.MOSTLY_Q8_0: gguf.GGMLQuantizationType.Q8_0,
}

_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

# Common English fragments turned into merges, so prompts tokenize into multi-byte pieces.
# fmt: off
_TINY_MERGE_WORDS = (
    " the", " and", " to", " of", " a", " in", " is", " it", " you", " that", " he", " was",
    " for", " on", " are", " with", " as", " be", " at", " this", " have", " from", " or", " one",
    " had", " by", " word", " but", " not", " what", " all", " were", " we", " when", " your",
    " can", " said", " there", " use", " an", " each", " which", " she", " do", " how", " their",
    " if", " will", " up", " other", " about", " out", " many", " then", " them", " these", " so",
    " some", " her", " would", " make", " like", " him", " into", " time", " has", " look",
    " two", " more", " write", " go", " see", " hello", " world", " model", " test", " say",
    " Hello", " Say", " The", "ing", "ion", "ed", "er", "es", "ly", "ent", "th", "he", "in", "an",
    "re", "on", "at", "nd", "st", "en",
)
# fmt: on


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE vocabs."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\xa1"), ord("\xac") + 1),
        *range(ord("\xae"), ord("\xff") + 1),
    ]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


_BYTE_TO_CHAR = _bytes_to_unicode()
_CHAR_TO_BYTE = {c: b for b, c in _BYTE_TO_CHAR.items()}


def _encode(text: str) -> list[str]:
    return [_BYTE_TO_CHAR[b] for b in text.encode()]


def token_bytes(token: str) -> bytes:
    """The raw bytes a byte-level BPE token stands for."""
    return bytes(_CHAR_TO_BYTE[c] for c in token)


@dataclass(frozen=True)
class _Vocab:
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    bos_id: int
    eos_id: int

    @property
    def size(self) -> int:
        return len(self.tokens)


def _vocab_from(normal: list[str], merges: list[str]) -> _Vocab:
    tokens = [*normal, *_SPECIAL_TOKENS]
    types = [gguf.TokenType.NORMAL] * len(normal) + [gguf.TokenType.CONTROL] * len(_SPECIAL_TOKENS)
    return _Vocab(
        tokens=tokens,
        token_types=[int(t) for t in types],
        merges=merges,
        bos_id=tokens.index("<|endoftext|>"),
        # <|im_end|> ends a ChatML turn; llama.cpp also treats <|endoftext|> as end-of-generation.
        eos_id=tokens.index("<|im_end|>"),
    )


def _tiny_vocab() -> _Vocab:
    """256 byte tokens + merges for common English fragments + ChatML control tokens."""
    tokens = [_BYTE_TO_CHAR[b] for b in range(256)]
    known = set(tokens)
    merges: list[str] = []
    for word in _TINY_MERGE_WORDS:
        pieces = _encode(word)
        # Merge left to right: each merge's parts already exist as tokens.
        acc = pieces[0]
        for piece in pieces[1:]:
            merged = acc + piece
            if merged not in known:
                merges.append(f"{acc} {piece}")
                tokens.append(merged)
                known.add(merged)
            acc = merged
    return _vocab_from(tokens, merges)


def _big_vocab(n_vocab: int, rng: np.random.Generator) -> _Vocab:
    """A valid byte-level BPE vocab of ``n_vocab`` tokens: every merge joins two earlier tokens."""
    n_normal = n_vocab - len(_SPECIAL_TOKENS)
    if n_normal < 256:
        raise ValueError(f"n_vocab must be at least {256 + len(_SPECIAL_TOKENS)}")
    tokens = [_BYTE_TO_CHAR[b] for b in range(256)]
    known = set(tokens)
    merges: list[str] = []
    # Draw pairs in batches; bias toward early (short) tokens like real merge tables.
    while len(tokens) < n_normal:
        batch = max(1024, n_normal - len(tokens))
        limit = len(tokens)
        left = (limit * rng.random(batch) ** 2).astype(np.int64)
        right = (limit * rng.random(batch) ** 3).astype(np.int64)
        for a, b in zip(left.tolist(), right.tolist(), strict=True):
            merged = tokens[a] + tokens[b]
            if merged in known or len(merged) > 24:
                continue
            merges.append(f"{tokens[a]} {tokens[b]}")
            tokens.append(merged)
            known.add(merged)
            if len(tokens) == n_normal:
                break
    return _vocab_from(tokens, merges)


def _token_bias(vocab: _Vocab) -> np.ndarray:
    """Per-token logit bias: words and spaces first, never raw non-ASCII bytes or control tokens."""
    bias = np.full(vocab.size, -1.0, dtype=np.float32)
    for i, (token, kind) in enumerate(zip(vocab.tokens, vocab.token_types, strict=True)):
        if kind != gguf.TokenType.NORMAL:
            continue
        raw = token_bytes(token)
        if not all(0x20 <= b < 0x7F for b in raw):
            continue
        if all(chr(b).islower() or b == 0x20 for b in raw):
            bias[i] = 1.0
        elif all(chr(b).isalnum() or b == 0x20 for b in raw):
            bias[i] = 0.7
        elif all(chr(b).isalnum() or chr(b) in " .,!?'" for b in raw):
            bias[i] = 0.5
        else:
            bias[i] = 0.2
    return bias


def _model_rng(name: str, seed: int) -> np.random.Generator:
    # crc32, not hash(): stable across interpreter runs (PYTHONHASHSEED).
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


@dataclass(frozen=True)
class _Shape:
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ff: int
    context_length: int

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head or self.n_head % self.n_head_kv:
            raise ValueError("n_embd must divide by n_head and n_head by n_head_kv")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError("head size must be even (RoPE)")


def _tensors(
    shape: _Shape,
    vocab: _Vocab,
    rng: np.random.Generator,
    *,
    tie_output: bool,
    eos_bias: float | None = None,
) -> dict[str, np.ndarray]:
    """Weights in numpy row-major order (the reverse of ggml's ne order), all float32."""
    d, ff = shape.n_embd, shape.n_ff
    head = d // shape.n_head
    kv = head * shape.n_head_kv

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) / math.sqrt(cols)).astype(np.float32)

    def norm() -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(d)).astype(np.float32)

    # Residual dim 0 holds a constant that dominates after RMS norm; see the module docstring.
    embd = rng.standard_normal((vocab.size, d)).astype(np.float32)
    embd[:, 0] = 4.0
    out: dict[str, np.ndarray] = {"token_embd.weight": embd}
    for i in range(shape.n_layers):
        attn_output = mat(d, d)
        ffn_down = mat(d, ff)
        # Layers never write to dim 0, so the bias channel survives every block.
        attn_output[0, :] = 0.0
        ffn_down[0, :] = 0.0
        out |= {
            f"blk.{i}.attn_norm.weight": norm(),
            f"blk.{i}.attn_q.weight": mat(d, d),
            f"blk.{i}.attn_k.weight": mat(kv, d),
            f"blk.{i}.attn_v.weight": mat(kv, d),
            f"blk.{i}.attn_output.weight": attn_output,
            f"blk.{i}.ffn_norm.weight": norm(),
            f"blk.{i}.ffn_gate.weight": mat(ff, d),
            f"blk.{i}.ffn_up.weight": mat(ff, d),
            f"blk.{i}.ffn_down.weight": ffn_down,
        }
    output_norm = norm()
    output_norm[0] = 1.0
    out["output_norm.weight"] = output_norm
    if not tie_output:
        output = (2.0 * rng.standard_normal((vocab.size, d))).astype(np.float32)
        # Strong enough that a disfavoured token never wins, even at temperature 1.
        bias = _token_bias(vocab)
        if eos_bias is not None:
            bias[vocab.eos_id] = eos_bias
        output[:, 0] = 12.0 * bias
        out["output.weight"] = output
    return out


def _encode_tensor(
    array: np.ndarray, file_type: int
) -> tuple[np.ndarray, gguf.GGMLQuantizationType | None]:
    qtype = _WEIGHT_TYPES[file_type] if array.ndim == 2 else gguf.GGMLQuantizationType.F32
    if qtype == gguf.GGMLQuantizationType.F32:
        return array, None
    if qtype == gguf.GGMLQuantizationType.F16:
        return array.astype(np.float16), None
    return gguf.quants.quantize(array, qtype), qtype


def _add_metadata(writer: gguf.GGUFWriter, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        vtype = gguf.GGUFValueType.get_type(value)
        sub_type = gguf.GGUFValueType.get_type(value[0]) if isinstance(value, list) else None
        writer.add_key_value(key, value, vtype, sub_type)


def _write(
    path: Path,
    *,
    name: str,
    seed: int,
    shape: _Shape,
    vocab: _Vocab,
    file_type: int,
    tie_output: bool,
    chat_template: str | None,
    metadata: Mapping[str, Any] | None,
    shards: int = 1,
    eos_bias: float | None = None,
) -> list[Path]:
    if file_type not in _WEIGHT_TYPES:
        supported = ", ".join(str(int(t)) for t in _WEIGHT_TYPES)
        raise ValueError(f"file_type {file_type} not supported (use one of {supported})")
    rng = _model_rng(name, seed)
    path.parent.mkdir(parents=True, exist_ok=True)

    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(name)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layers)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(shape.n_embd // shape.n_head)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(vocab.size)

    writer.add_tokenizer_model("gpt2")
    # "qwen2" is a pre-tokenizer llama.cpp knows; an unknown one is a load error.
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(vocab.bos_id)
    writer.add_eos_token_id(vocab.eos_id)
    writer.add_pad_token_id(vocab.bos_id)
    writer.add_add_bos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    if metadata:
        _add_metadata(writer, metadata)

    for tensor_name, array in _tensors(
        shape, vocab, rng, tie_output=tie_output, eos_bias=eos_bias
    ).items():
        data, raw_dtype = _encode_tensor(array, file_type)
        writer.add_tensor(tensor_name, data, raw_dtype=raw_dtype)

    if shards > 1:
        # Spread tensors evenly; GGUFWriter then names files <stem>-0000i-of-0000n.gguf and
        # writes split.no / split.count / split.tensors.count like llama.cpp's gguf-split.
        (infos,) = writer.tensors
        if shards > len(infos):
            raise ValueError(f"cannot split {len(infos)} tensors into {shards} shards")
        items = list(infos.items())
        bounds = [round(i * len(items) / shards) for i in range(shards + 1)]
        writer.tensors = [dict(items[lo:hi]) for lo, hi in itertools.pairwise(bounds)]

    paths = writer.format_shard_names(path)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return paths


def write_tiny_model(
    path: Path,
    *,
    name: str = "tiny",
    seed: int = 0,
    n_layers: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    context_length: int = 2048,
    file_type: int = gguf.LlamaFileType.MOSTLY_F16,
    chat_template: str | None = CHATML_TEMPLATE,
    metadata: Mapping[str, Any] | None = None,
    eos_bias: float | None = None,
) -> Path:
    """Write a loadable llama-architecture model (~0.3 MB at the defaults) and return ``path``.

    ``file_type`` is GGML's general.file_type: 0 (F32), 1 (F16) or 7 (Q8_0). ``metadata``
    adds or overrides keys (str, int -> INT32, float -> FLOAT32, bool, or lists of those).
    ``eos_bias`` lets the model end its answers: 2.0 (words have 1.0) stops most within
    ~30 tokens when sampled at temperature 1, for clients that treat a cut answer as an
    error; the default never samples end-of-generation.
    """
    shape = _Shape(n_layers, n_embd, n_head, n_head_kv, n_ff, context_length)
    _write(
        path,
        name=name,
        seed=seed,
        shape=shape,
        vocab=_tiny_vocab(),
        file_type=file_type,
        tie_output=False,
        chat_template=chat_template,
        metadata=metadata,
        eos_bias=eos_bias,
    )
    return path


def split_shard_names(name: str, shards: int) -> list[str]:
    """File names llama.cpp expects for a split set: ``<name>-00001-of-00002.gguf``, ..."""
    return [gguf.SHARD_NAME_FORMAT.format(name, i, shards) for i in range(1, shards + 1)]


def write_split_set(directory: Path, name: str, shards: int = 2, **kw: Any) -> list[Path]:
    """Write a model as ``shards`` files; llama-server loads it given the first one.

    Keyword arguments are those of :func:`write_tiny_model` (``name`` is the file stem and the
    model's general.name). The first shard carries all metadata, the others only split keys.
    """
    if shards < 2:
        raise ValueError("a split set needs at least 2 shards")
    shape = _Shape(
        kw.pop("n_layers", 2),
        kw.pop("n_embd", 64),
        kw.pop("n_head", 4),
        kw.pop("n_head_kv", 2),
        kw.pop("n_ff", 128),
        kw.pop("context_length", 2048),
    )
    paths = _write(
        directory / f"{name}.gguf",
        name=name,
        seed=kw.pop("seed", 0),
        shape=shape,
        vocab=_tiny_vocab(),
        file_type=kw.pop("file_type", gguf.LlamaFileType.MOSTLY_F16),
        tie_output=False,
        chat_template=kw.pop("chat_template", CHATML_TEMPLATE),
        metadata=kw.pop("metadata", None),
        shards=shards,
    )
    if kw:
        raise TypeError(f"unexpected arguments: {', '.join(sorted(kw))}")
    return paths


def data_offset(path: Path) -> int:
    """Byte offset where tensor data starts (header, metadata and tensor infos end)."""
    return int(gguf.GGUFReader(path).data_offset)


# GGUF value type -> struct format (8 = string and 9 = array are handled apart).
_SCALARS: dict[int, str] = dict(enumerate("BbHhIif?", 0)) | {10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


def read_metadata(path: Path) -> tuple[dict[str, Any], int]:
    """Parse a GGUF header: (key -> value, tensor count). An independent test oracle.

    gguf.GGUFReader takes ~10 s on a 150k-token vocab; this plain struct walk takes well
    under a second. Raises ValueError on a bad magic and struct.error on a short file.
    """
    data = path.read_bytes()
    if data[:4] != GGUF_MAGIC:
        raise ValueError(f"{path.name}: not a GGUF file")
    _version, n_tensors, n_kv = struct.unpack_from("<IQQ", data, 4)
    pos = 24

    def string() -> str:
        nonlocal pos
        (length,) = struct.unpack_from("<Q", data, pos)
        pos += 8 + length
        if pos > len(data):
            raise struct.error("string past end of file")
        return data[pos - length : pos].decode("utf-8", errors="surrogateescape")

    def value(vtype: int) -> Any:
        nonlocal pos
        if vtype == _STRING:
            return string()
        if vtype == _ARRAY:
            item_type, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if item_type in _SCALARS:
                fmt = f"<{count}{_SCALARS[item_type]}"
                items = list(struct.unpack_from(fmt, data, pos))
                pos += struct.calcsize(fmt)
                return items
            return [value(item_type) for _ in range(count)]
        fmt = "<" + _SCALARS[vtype]
        (scalar,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return scalar

    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = string()
        (vtype,) = struct.unpack_from("<I", data, pos)
        pos += 4
        metadata[key] = value(vtype)
    return metadata, int(n_tensors)


def write_truncated(path: Path, *, keep: float = 0.5, **kw: Any) -> Path:
    """A model whose header and metadata are intact but whose tensor data is cut short.

    ``keep`` is the fraction of the tensor data left in place (0 keeps none of it).
    """
    if not 0.0 <= keep < 1.0:
        raise ValueError("keep must be in [0, 1)")
    write_tiny_model(path, **kw)
    start = data_offset(path)
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(start + int((size - start) * keep))
    return path


def write_not_gguf(path: Path) -> Path:
    """A file with a .gguf-looking name that is not GGUF (a safetensors-style JSON header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = b'{"__metadata__": {"format": "pt"}}'
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(256))
    return path


# Raw GGUF value types, for headers built byte by byte (see craft_header).
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)


@dataclass(frozen=True)
class RawArray:
    """A metadata array for :func:`craft_header`; ``length`` may claim more than ``items``."""

    item_type: int
    items: Sequence[Any] = ()
    length: int | None = None


@dataclass(frozen=True)
class RawString:
    """A metadata string for :func:`craft_header`; ``length`` may claim more than ``text``."""

    text: str = ""
    length: int | None = None


@dataclass(frozen=True)
class RawTensor:
    """A tensor info for :func:`craft_header`; ``n_dims`` may claim more than ``dims``."""

    name: str
    dims: Sequence[int] = (32,)
    ggml_type: int = 0
    offset: int = 0
    n_dims: int | None = None


def _raw_string(value: str | RawString) -> bytes:
    raw = RawString(value) if isinstance(value, str) else value
    data = raw.text.encode()
    return struct.pack("<Q", len(data) if raw.length is None else raw.length) + data


def _raw_value(vtype: int, value: Any) -> bytes:
    if vtype == STRING:
        return _raw_string(value)
    if vtype == ARRAY:
        array: RawArray = value
        length = len(array.items) if array.length is None else array.length
        head = struct.pack("<IQ", array.item_type, length)
        return head + b"".join(_raw_value(array.item_type, item) for item in array.items)
    return struct.pack("<" + _SCALARS[vtype], value)


def craft_header(
    metadata: Sequence[tuple[str, int, Any]] = (),
    tensors: Sequence[RawTensor] = (),
    *,
    version: int = 3,
    kv_count: int | None = None,
    tensor_count: int | None = None,
    pad_to: int = 0,
) -> bytes:
    """A GGUF header written byte by byte, so it can say what no writer would.

    ``metadata`` is (key, GGUF value type, value): a scalar, a str or :class:`RawString`
    for STRING, a :class:`RawArray` for ARRAY. The counts default to the real ones;
    ``pad_to`` appends zero bytes up to that length (tensor data, or more header to walk).
    """
    out = bytearray(GGUF_MAGIC)
    out += struct.pack("<I", version)
    out += struct.pack("<Q", len(tensors) if tensor_count is None else tensor_count)
    out += struct.pack("<Q", len(metadata) if kv_count is None else kv_count)
    for key, vtype, value in metadata:
        out += _raw_string(key) + struct.pack("<I", vtype) + _raw_value(vtype, value)
    for tensor in tensors:
        n_dims = len(tensor.dims) if tensor.n_dims is None else tensor.n_dims
        out += _raw_string(tensor.name) + struct.pack("<I", n_dims)
        out += struct.pack(f"<{len(tensor.dims)}Q", *tensor.dims)
        out += struct.pack("<IQ", tensor.ggml_type, tensor.offset)
    return bytes(out) + bytes(max(0, pad_to - len(out)))


def write_big_vocab_header(
    path: Path,
    n_vocab: int = 150_000,
    *,
    name: str = "big-vocab",
    seed: int = 0,
    n_embd: int = 8,
    context_length: int = 32768,
) -> Path:
    """A model with a realistic 150k-token byte-level BPE vocab and about as many merges.

    The metadata block is ~4.7 MB, like a Qwen/Llama-3 release, for header-parse speed tests.
    The weights are one tiny layer with tied output (2 bytes * n_embd per token), so the file
    is ~7 MB. llama-server loads it (~0.8 s), but its replies are arbitrary bytes: the
    printable-ASCII bias needs an untied output matrix.
    """
    rng = _model_rng(name, seed)
    shape = _Shape(1, n_embd, 2, 1, 2 * n_embd, context_length)
    _write(
        path,
        name=name,
        seed=seed,
        shape=shape,
        vocab=_big_vocab(n_vocab, rng),
        file_type=gguf.LlamaFileType.MOSTLY_F16,
        tie_output=True,
        chat_template=CHATML_TEMPLATE,
        metadata=None,
    )
    return path


__all__: Sequence[str] = (
    "ARRAY",
    "BOOL",
    "CHATML_TEMPLATE",
    "F32",
    "GGUF_MAGIC",
    "I32",
    "STRING",
    "U8",
    "U32",
    "U64",
    "RawArray",
    "RawString",
    "RawTensor",
    "craft_header",
    "data_offset",
    "read_metadata",
    "split_shard_names",
    "token_bytes",
    "write_big_vocab_header",
    "write_not_gguf",
    "write_split_set",
    "write_tiny_model",
    "write_truncated",
)
