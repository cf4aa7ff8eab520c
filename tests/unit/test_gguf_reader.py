"""`stack.gguf` reads what gguf.GGUFReader reads, fast, and explains broken files."""

from __future__ import annotations

import shutil
import struct
import time
from pathlib import Path

import gguf
import pytest

from stack.gguf import (
    FILE_TYPES,
    TENSOR_TYPES,
    GgufError,
    GgufHeader,
    HeaderIncomplete,
    TruncatedData,
    check_split_set,
    combine_shards,
    read_header,
)
from tests.support.gguf_factory import (
    data_offset,
    read_metadata,
    write_big_vocab_header,
    write_not_gguf,
    write_split_set,
    write_tiny_model,
    write_truncated,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def big_vocab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_big_vocab_header(tmp_path_factory.mktemp("big") / "big.gguf")


def _oracle(path: Path) -> tuple[int, int, int, int]:
    """(parameters, data offset, data size, tensor bytes) according to gguf.GGUFReader."""
    reader = gguf.GGUFReader(path)
    end = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    params = sum(int(t.n_elements) for t in reader.tensors)
    tensor_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    return params, int(reader.data_offset), end - int(reader.data_offset), tensor_bytes


@pytest.mark.parametrize(("file_type", "quant"), [(0, "F32"), (1, "F16"), (7, "Q8_0")])
def test_tiny_model_header_matches_gguf_reader(tmp_path: Path, file_type: int, quant: str) -> None:
    path = write_tiny_model(
        tmp_path / "m.gguf",
        name="tiny-chat",
        n_layers=3,
        n_embd=64,
        n_head=4,
        n_head_kv=2,
        context_length=4096,
        file_type=file_type,
    )
    header = read_header(path)
    params, offset, size, tensor_bytes = _oracle(path)
    assert (header.version, header.architecture, header.name) == (3, "llama", "tiny-chat")
    assert (header.n_layers, header.n_embd, header.n_head) == (3, 64, 4)
    assert header.n_head_kv == (2, 2, 2)
    assert header.kv_heads == 2
    assert (header.head_dim_k, header.head_dim_v) == (16, 16)
    assert header.context_length == 4096
    assert (header.file_type, header.quant) == (file_type, quant)
    assert header.parameter_count == params
    assert (header.data_offset, header.data_size) == (offset, size)
    assert header.file_size == path.stat().st_size
    assert header.missing_bytes == 0
    assert header.has_chat_template
    assert (header.split_no, header.split_count) == (0, 0)
    assert header.n_vocab == len(read_metadata(path)[0]["tokenizer.ggml.tokens"])
    assert header.tensor_count == 3 * 9 + 3
    # Every tensor byte is in exactly one bucket.
    assert sum(header.layer_bytes) + header.input_bytes + header.output_bytes == tensor_bytes
    assert header.has_output_tensor


def test_no_chat_template(tmp_path: Path) -> None:
    path = write_tiny_model(tmp_path / "m.gguf", chat_template=None)
    assert not read_header(path).has_chat_template


def test_type_tables_match_gguf_package() -> None:
    for ggml_type, (name, block, size) in TENSOR_TYPES.items():
        quant_type = gguf.GGMLQuantizationType(ggml_type)
        assert quant_type.name == name
        assert gguf.GGML_QUANT_SIZES[quant_type] == (block, size), name
    for file_type, name in FILE_TYPES.items():
        member = gguf.LlamaFileType(file_type).name
        assert member.removeprefix("MOSTLY_").removeprefix("ALL_") == name


def test_big_vocab_header_is_fast_and_exact(big_vocab: Path) -> None:
    read_header(big_vocab)  # first call compiles the string-skipping pattern
    started = time.perf_counter()
    header = read_header(big_vocab)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.2, f"{elapsed:.3f} s"
    metadata, _ = read_metadata(big_vocab)
    assert header.n_vocab == 150_000
    assert header.context_length == metadata["llama.context_length"] == 32768
    # gguf.GGUFReader takes seconds here; the data ending where the file ends (but for the
    # writer's final padding) shows the walk through 300k strings landed exactly.
    slack = big_vocab.stat().st_size - (header.data_offset + header.data_size)
    assert 0 <= slack < header.alignment
    assert not header.has_output_tensor  # tied embeddings


def test_per_layer_and_sliding_window_metadata(tmp_path: Path) -> None:
    # Long and odd string lengths exercise both ways of skipping string arrays.
    strings = ["x" * n for n in (0, 5, 127, 128, 255, 256, 300, 70_000)] * 40
    path = write_tiny_model(
        tmp_path / "m.gguf",
        n_layers=3,
        metadata={
            "llama.attention.head_count_kv": [2, 0, 2],
            "llama.attention.sliding_window": 256,
            "llama.attention.sliding_window_pattern": [True, False, True],
            "llama.attention.key_length": 32,
            "test.strings": strings,
        },
    )
    header = read_header(path)
    assert header.n_head_kv == (2, 0, 2)
    assert header.sliding_window == 256
    assert header.swa_layers == (True, False, True)
    assert (header.head_dim_k, header.head_dim_v) == (32, 16)
    assert header.data_offset == data_offset(path)


def test_sliding_window_period_and_unknown_layout(tmp_path: Path) -> None:
    period = write_tiny_model(
        tmp_path / "p.gguf",
        n_layers=4,
        metadata={
            "llama.attention.sliding_window": 128,
            "llama.attention.sliding_window_pattern": 2,
        },
    )
    assert read_header(period).swa_layers == (True, False, True, False)
    # A window with no known layout: counted as full attention (the safe side).
    unknown = write_tiny_model(
        tmp_path / "u.gguf", n_layers=2, metadata={"llama.attention.sliding_window": 128}
    )
    assert read_header(unknown).swa_layers == ()


def test_quant_falls_back_to_dominant_tensor_type(tmp_path: Path) -> None:
    path = write_tiny_model(tmp_path / "m.gguf", file_type=7, metadata={"general.file_type": 999})
    header = read_header(path)
    assert (header.file_type, header.quant) == (999, "Q8_0")


def test_truncated_data_says_how_many_bytes_are_missing(tmp_path: Path) -> None:
    full = write_tiny_model(tmp_path / "full.gguf").stat().st_size
    path = write_truncated(tmp_path / "cut.gguf", keep=0.5)
    missing = full - path.stat().st_size
    with pytest.raises(TruncatedData) as caught:
        read_header(path)
    assert caught.value.missing == missing
    assert f"{missing:,} bytes short" in str(caught.value)
    assert "cut.gguf" in str(caught.value)
    assert caught.value.header.architecture == "llama"


def test_truncated_header(tmp_path: Path) -> None:
    source = write_tiny_model(tmp_path / "full.gguf")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(source.read_bytes()[:3000])
    with pytest.raises(GgufError, match="ends inside its header: incomplete download"):
        read_header(cut)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(GgufError, match="empty"):
        read_header(empty)


def test_not_gguf(tmp_path: Path) -> None:
    path = write_not_gguf(tmp_path / "x.gguf")
    with pytest.raises(GgufError, match="not a GGUF file") as caught:
        read_header(path)
    assert caught.value.fix
    with pytest.raises(GgufError, match="not a GGUF file"):
        read_header(b"PK\x03\x04")


def test_unsupported_versions(tmp_path: Path) -> None:
    data = bytearray(write_tiny_model(tmp_path / "m.gguf").read_bytes())
    data[4:8] = struct.pack("<I", 1)
    with pytest.raises(GgufError, match="unsupported GGUF version 1"):
        read_header(bytes(data))
    data[4:8] = struct.pack(">I", 3)
    with pytest.raises(GgufError, match="big-endian"):
        read_header(bytes(data))


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(GgufError, match="cannot read"):
        read_header(tmp_path / "absent.gguf")


def test_prefix_asks_for_more_bytes_then_succeeds(big_vocab: Path) -> None:
    data = big_vocab.read_bytes()
    with pytest.raises(HeaderIncomplete) as caught:
        read_header(data[:10])
    assert caught.value.needed >= 24
    size = 1024
    fetches = 0
    while True:
        try:
            header = read_header(data[:size], file_size=len(data))
            break
        except HeaderIncomplete as exc:
            assert exc.needed > size
            size = max(exc.needed, 2 * size)
            fetches += 1
    assert fetches > 3
    assert header == read_header(big_vocab)
    # Without the file size the data cannot be checked, so it is not reported.
    assert read_header(data[: header.data_offset]).file_size is None


def test_whole_file_given_as_bytes_is_truncated_not_incomplete(tmp_path: Path) -> None:
    data = write_tiny_model(tmp_path / "m.gguf").read_bytes()[:3000]
    with pytest.raises(GgufError, match="ends inside its header") as caught:
        read_header(data, file_size=len(data))
    assert not isinstance(caught.value, HeaderIncomplete)


def test_header_round_trips_through_a_dict(tmp_path: Path) -> None:
    header = read_header(write_tiny_model(tmp_path / "m.gguf"))
    assert GgufHeader.from_dict(header.as_dict()) == header
    with pytest.raises(KeyError):
        GgufHeader.from_dict({**header.as_dict(), "extra": 1})


def test_split_set_complete(tmp_path: Path) -> None:
    shards = write_split_set(tmp_path, "big", shards=3)
    assert check_split_set(shards[1]) == shards
    headers = [read_header(p) for p in shards]
    assert [(h.split_no, h.split_count) for h in headers] == [(0, 3), (1, 3), (2, 3)]
    single = read_header(write_tiny_model(tmp_path / "single" / "big.gguf", name="big"))
    combined = combine_shards(headers)
    assert combined.name == "big"
    assert combined.parameter_count == single.parameter_count
    assert combined.layer_bytes == single.layer_bytes
    assert combined.output_bytes == single.output_bytes
    assert combined.file_size == sum(p.stat().st_size for p in shards)
    assert combined.missing_bytes == 0


def test_split_set_incomplete(tmp_path: Path) -> None:
    shards = write_split_set(tmp_path, "big", shards=3)
    shards[1].unlink()
    with pytest.raises(GgufError, match=r"split set incomplete: missing big-00002-of-00003\.gguf"):
        check_split_set(shards[0])


def test_split_set_with_a_foreign_shard(tmp_path: Path) -> None:
    shards = write_split_set(tmp_path / "a", "big", shards=3)
    other = write_split_set(tmp_path / "b", "big", shards=2)
    shutil.copyfile(other[1], shards[1])
    with pytest.raises(GgufError, match="says it is shard 2 of 2, not 2 of 3"):
        check_split_set(shards[0])


def test_a_plain_file_is_its_own_set(tmp_path: Path) -> None:
    path = write_tiny_model(tmp_path / "m.gguf")
    assert check_split_set(path) == [path]
