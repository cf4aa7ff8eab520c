"""The generated GGUF fixtures are well-formed, deterministic and shaped as documented."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import pytest

from tests.support.gguf_factory import (
    ARRAY,
    BOOL,
    F32,
    GGUF_MAGIC,
    STRING,
    U8,
    U32,
    U64,
    RawArray,
    RawTensor,
    craft_header,
    data_offset,
    read_metadata,
    split_shard_names,
    token_bytes,
    write_big_vocab_header,
    write_not_gguf,
    write_split_set,
    write_tiny_model,
    write_truncated,
)

pytestmark = pytest.mark.unit

LLAMA_KEYS = (
    "general.architecture",
    "general.name",
    "general.file_type",
    "llama.context_length",
    "llama.embedding_length",
    "llama.block_count",
    "llama.feed_forward_length",
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.attention.layer_norm_rms_epsilon",
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.chat_template",
)
BLOCK_TENSORS = (
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
    "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
)  # fmt: skip


def _scalar(reader: gguf.GGUFReader, key: str) -> object:
    field = reader.get_field(key)
    assert field is not None, key
    return field.contents()


def test_tiny_model_reads_back(tmp_path: Path) -> None:
    # How fast it is written: bench/bench_models.py.
    path = write_tiny_model(tmp_path / "tiny.gguf", name="unit-tiny", context_length=4096)
    assert path.read_bytes()[:4] == GGUF_MAGIC
    assert path.stat().st_size < 1_000_000

    reader = gguf.GGUFReader(path)
    for key in LLAMA_KEYS:
        assert reader.get_field(key) is not None, key
    assert _scalar(reader, "general.architecture") == "llama"
    assert _scalar(reader, "general.name") == "unit-tiny"
    assert _scalar(reader, "general.file_type") == gguf.LlamaFileType.MOSTLY_F16
    assert _scalar(reader, "llama.context_length") == 4096
    assert _scalar(reader, "llama.attention.head_count_kv") == 2
    assert _scalar(reader, "tokenizer.ggml.model") == "gpt2"
    assert "<|im_start|>" in str(_scalar(reader, "tokenizer.chat_template"))

    tensors = {t.name: t for t in reader.tensors}
    expected = {"token_embd.weight", "output_norm.weight", "output.weight"} | {
        f"blk.{i}.{part}.weight" for i in range(2) for part in BLOCK_TENSORS
    }
    assert set(tensors) == expected
    assert tensors["blk.0.attn_q.weight"].tensor_type == gguf.GGMLQuantizationType.F16
    assert tensors["blk.0.attn_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32
    # ggml order: ne[0] is the input width. K/V project to n_head_kv * head_size.
    assert list(tensors["blk.1.attn_k.weight"].shape) == [64, 32]
    assert list(tensors["blk.1.ffn_down.weight"].shape) == [128, 64]


def test_tokenizer_is_consistent_byte_level_bpe(tmp_path: Path) -> None:
    meta, _ = read_metadata(write_tiny_model(tmp_path / "tiny.gguf"))
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    types: list[int] = meta["tokenizer.ggml.token_type"]
    vocab = set(tokens)
    assert len(vocab) == len(tokens) == len(types) == meta["llama.vocab_size"]
    # All 256 byte tokens exist, so any UTF-8 text tokenizes.
    assert {token_bytes(t) for t in tokens[:256]} == {bytes([b]) for b in range(256)}
    for merge in meta["tokenizer.ggml.merges"]:
        left, right = merge.split(" ")
        assert left in vocab and right in vocab and left + right in vocab, merge
    assert tokens[meta["tokenizer.ggml.eos_token_id"]] == "<|im_end|>"
    assert tokens[meta["tokenizer.ggml.bos_token_id"]] == "<|endoftext|>"
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        assert types[tokens.index(special)] == gguf.TokenType.CONTROL


def test_same_inputs_same_bytes_other_seed_or_name_differs(tmp_path: Path) -> None:
    a = write_tiny_model(tmp_path / "a.gguf", seed=3).read_bytes()
    b = write_tiny_model(tmp_path / "b.gguf", seed=3).read_bytes()
    c = write_tiny_model(tmp_path / "c.gguf", seed=4).read_bytes()
    assert a == b
    assert a != c
    # The name feeds the weights, not only general.name: compare the tensor data.
    one = write_tiny_model(tmp_path / "one.gguf", name="one")
    two = write_tiny_model(tmp_path / "two.gguf", name="two")
    assert one.read_bytes()[data_offset(one) :] != two.read_bytes()[data_offset(two) :]


@pytest.mark.parametrize(
    ("file_type", "qtype"),
    [
        (gguf.LlamaFileType.ALL_F32, gguf.GGMLQuantizationType.F32),
        (gguf.LlamaFileType.MOSTLY_Q8_0, gguf.GGMLQuantizationType.Q8_0),
    ],
)
def test_other_file_types(tmp_path: Path, file_type: int, qtype: gguf.GGMLQuantizationType) -> None:
    reader = gguf.GGUFReader(write_tiny_model(tmp_path / "m.gguf", file_type=file_type))
    assert _scalar(reader, "general.file_type") == file_type
    weights = {t.name: t.tensor_type for t in reader.tensors}
    assert weights["blk.0.ffn_up.weight"] == qtype
    assert weights["output_norm.weight"] == gguf.GGMLQuantizationType.F32


def test_unsupported_file_type_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file_type"):
        write_tiny_model(tmp_path / "m.gguf", file_type=gguf.LlamaFileType.MOSTLY_Q4_K_M)


@pytest.mark.parametrize("shards", [2, 3])
def test_split_set(tmp_path: Path, shards: int) -> None:
    paths = write_split_set(tmp_path, "splitty", shards=shards, seed=1)
    assert [p.name for p in paths] == split_shard_names("splitty", shards)
    assert paths[0].name == f"splitty-00001-of-0000{shards}.gguf"
    assert all(p.exists() and p.read_bytes()[:4] == GGUF_MAGIC for p in paths)
    assert not (tmp_path / "splitty.gguf").exists()

    total = 0
    for index, path in enumerate(paths):
        reader = gguf.GGUFReader(path)
        assert _scalar(reader, "split.no") == index
        assert _scalar(reader, "split.count") == shards
        assert _scalar(reader, "split.tensors.count") == 2 + 9 * 2 + 1
        assert reader.tensors, f"shard {index} holds no tensors"
        total += len(reader.tensors)
        # Only the first shard carries the model's metadata, as gguf-split writes it.
        assert (reader.get_field("general.name") is not None) == (index == 0)
    assert total == 2 + 9 * 2 + 1


def test_split_set_rejects_one_shard(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_split_set(tmp_path, "one", shards=1)


def test_truncated_keeps_header_but_loses_data(tmp_path: Path) -> None:
    full = write_tiny_model(tmp_path / "full.gguf", seed=5)
    cut = write_truncated(tmp_path / "cut.gguf", seed=5)
    start = data_offset(full)
    assert cut.stat().st_size < full.stat().st_size
    assert cut.stat().st_size > start
    assert cut.read_bytes()[:start] == full.read_bytes()[:start]
    # The header still parses: only the tensor data is short.
    meta, n_tensors = read_metadata(cut)
    assert meta["general.name"] == "tiny"
    assert n_tensors == 2 + 9 * 2 + 1


def test_not_gguf(tmp_path: Path) -> None:
    path = write_not_gguf(tmp_path / "fake.gguf")
    assert path.stat().st_size > 0
    assert path.read_bytes()[:4] != GGUF_MAGIC
    with pytest.raises(ValueError):
        gguf.GGUFReader(path)
    with pytest.raises(ValueError):
        read_metadata(path)


def test_big_vocab_header(tmp_path: Path) -> None:
    path = write_big_vocab_header(tmp_path / "big.gguf", n_vocab=150_000)
    assert path.read_bytes()[:4] == GGUF_MAGIC
    meta, _ = read_metadata(path)
    tokens = meta["tokenizer.ggml.tokens"]
    merges = meta["tokenizer.ggml.merges"]
    assert len(tokens) == len(set(tokens)) == 150_000
    assert len(merges) > 140_000
    # A multi-MB metadata block (u64 length + bytes per string), like a Qwen/Llama-3 header.
    assert sum(8 + len(s.encode()) for s in [*tokens, *merges]) > 3_000_000
    sample = set(tokens)
    for merge in merges[::997]:
        left, right = merge.split(" ")
        assert left + right in sample


def test_read_metadata_rejects_short_file(tmp_path: Path) -> None:
    full = write_tiny_model(tmp_path / "m.gguf")
    short = tmp_path / "short.gguf"
    short.write_bytes(full.read_bytes()[:200])
    with pytest.raises(struct.error):
        read_metadata(short)


def test_crafted_header_is_what_gguf_reader_reads(tmp_path: Path) -> None:
    # Told the truth, craft_header writes a header gguf.GGUFReader agrees with, so the
    # lies the reader tests tell are the only thing wrong with theirs.
    path = tmp_path / "crafted.gguf"
    data = craft_header(
        [
            ("general.architecture", STRING, "llama"),
            ("llama.block_count", U32, 2),
            ("llama.context_length", U64, 4096),
            ("x.flag", BOOL, True),
            ("x.scale", F32, 0.5),
            ("x.list", ARRAY, RawArray(U8, [1, 2, 3])),
            ("x.names", ARRAY, RawArray(STRING, ["a", "bc"])),
        ],
        [RawTensor("blk.0.w", dims=(32, 2), ggml_type=0, offset=0)],
    )
    # Tensor data: aligned to 32 bytes, 32 x 2 f32 values.
    path.write_bytes(data + bytes(-len(data) % 32 + 32 * 2 * 4))
    reader = gguf.GGUFReader(path)
    assert _scalar(reader, "general.architecture") == "llama"
    assert _scalar(reader, "llama.block_count") == 2
    assert _scalar(reader, "llama.context_length") == 4096
    assert _scalar(reader, "x.flag") is True
    assert _scalar(reader, "x.scale") == 0.5
    assert _scalar(reader, "x.list") == [1, 2, 3]
    assert _scalar(reader, "x.names") == ["a", "bc"]
    (tensor,) = reader.tensors
    assert (tensor.name, list(tensor.shape), int(tensor.data_offset)) == (
        "blk.0.w",
        [32, 2],
        len(data) + (-len(data) % 32),
    )
    # The counts can lie: here two more tensors are announced than written.
    lying = craft_header(tensors=[RawTensor("t")], tensor_count=3)
    assert struct.unpack_from("<Q", lying, 8)[0] == 3
