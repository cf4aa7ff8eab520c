"""`stack.models.gguf` reads what gguf.GGUFReader reads, fast, and explains broken files."""

from __future__ import annotations

import shutil
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gguf
import pytest

from stack.models.ggml import FILE_TYPES, TENSOR_TYPES
from stack.models.gguf import read_header
from stack.models.header import (
    IMPLAUSIBLE,
    MAX_LAYERS,
    GgufError,
    GgufHeader,
    HeaderIncomplete,
    TruncatedData,
)
from stack.models.splits import check_split_set, combine_shards
from tests.support.gguf_factory import (
    ARRAY,
    F32,
    I32,
    STRING,
    U8,
    U32,
    U64,
    RawArray,
    RawString,
    RawTensor,
    craft_header,
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


def test_big_vocab_header_is_exact(big_vocab: Path) -> None:
    # How fast: bench/bench_models.py.
    header = read_header(big_vocab)
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


# -- crafted headers: refused at once, in little memory -----------------------------------------

T = TypeVar("T")
MIB = 1 << 20


def _peak(call: Callable[[], T]) -> tuple[T | BaseException, int]:
    """What ``call`` returns or raises, and the most memory it held meanwhile (tracemalloc)."""
    tracemalloc.start()
    try:
        result: T | BaseException = call()
    except BaseException as exc:  # the caller asserts what it was
        result = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, peak


def _llama(*metadata: tuple[str, int, Any], **kw: Any) -> bytes:
    return craft_header([("general.architecture", STRING, "llama"), *metadata], **kw)


# Each a few hundred bytes at most; before the limits, the first took 1.7 GB and seconds,
# the second raised MemoryError, others raised OverflowError or walked gigabytes.
CRAFTED: dict[str, tuple[bytes, str]] = {
    "block_count": (
        _llama(("llama.block_count", U32, 100_000_000)),
        "llama.block_count 100,000,000 is more than 4,096",
    ),
    "block_count 2^40": (
        _llama(("llama.block_count", U64, 2**40)),
        "llama.block_count 1,099,511,627,776 is more than 4,096",
    ),
    "negative block_count": (_llama(("llama.block_count", I32, -1)), "llama.block_count -1 is"),
    "layer index": (
        _llama(tensors=[RawTensor("blk.100000000.attn_q.weight")]),
        "tensor 'blk.100000000.attn_q.weight' is in layer 100,000,000",
    ),
    "head count": (
        _llama(("llama.block_count", U32, 2), ("llama.attention.head_count", U32, 2**31)),
        "llama.attention.head_count 2,147,483,648 is more than 16,384",
    ),
    "per-layer KV heads": (
        _llama(
            ("llama.block_count", U32, 2),
            ("llama.attention.head_count_kv", ARRAY, RawArray(U32, [8, 2**30])),
        ),
        "llama.attention.head_count_kv 1,073,741,824 is more than 16,384",
    ),
    "embedding": (
        _llama(("llama.embedding_length", U64, 2**62)),
        "llama.embedding_length 4,611,686,018,427,387,904 is more than",
    ),
    "context": (_llama(("llama.context_length", U64, 2**40)), "llama.context_length"),
    "tensor count": (_llama(tensor_count=2**63), "tensor count 9,223,372,036,854,775,808 is"),
    "metadata key count": (_llama(kv_count=2**63), "metadata key count 9,223,372,036,854,775,808"),
    "array length": (
        _llama(("tokenizer.ggml.scores", ARRAY, RawArray(U8, length=2**62))),
        "array length 4,611,686,018,427,387,904 is more than 16,777,216",
    ),
    "string array": (
        _llama(("tokenizer.ggml.tokens", ARRAY, RawArray(STRING, length=2**40))),
        "array length 1,099,511,627,776 is more than",
    ),
    "string length": (
        _llama(("general.name", STRING, RawString(length=2**63))),
        "string length 9,223,372,036,854,775,808 is more than 16,777,216",
    ),
    "string in an array": (
        _llama(("tokenizer.ggml.tokens", ARRAY, RawArray(STRING, [RawString(length=2**50)], 1))),
        "string length 1,125,899,906,842,624 is more than",
    ),
    "nested arrays": (
        _llama(("x", ARRAY, RawArray(ARRAY, [RawArray(U8, [1])] * 3))),
        "an array of arrays in the metadata",
    ),
    "dimensions overflow": (
        _llama(tensors=[RawTensor("t", dims=(2**40, 2**40))]),
        "tensor 't' has more than 9,223,372,036,854,775,807 elements",
    ),
    "offset overflow": (
        _llama(tensors=[RawTensor("t", offset=2**64 - 1)]),
        "tensor 't' ends past 9,223,372,036,854,775,807 bytes",
    ),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_header_is_refused_in_little_memory(case: str) -> None:
    data, reason = CRAFTED[case]
    assert len(data) < 512
    # A file's length is known; a prefix from the Hub carries its file size too.
    for size in (len(data), 2**40):
        raised, peak = _peak(lambda size=size: read_header(data, file_size=size))
        assert isinstance(raised, GgufError) and not isinstance(raised, HeaderIncomplete), raised
        assert raised.message.startswith("not a plausible GGUF: "), raised.message
        assert reason in raised.message, raised.message
        assert raised.fix == IMPLAUSIBLE
        assert peak < MIB, f"{peak:,} bytes"


def test_counts_the_file_cannot_hold_are_refused_at_once() -> None:
    data = _llama(kv_count=4000, tensor_count=60_000)
    raised, peak = _peak(lambda: read_header(data, file_size=len(data)))
    assert isinstance(raised, GgufError) and raised.fix == IMPLAUSIBLE, raised
    assert raised.message == (
        "not a plausible GGUF: 4,000 metadata keys and 60,000 tensors need at least "
        "1,492,024 bytes, and the file has 69"
    )
    assert peak < MIB
    # A prefix of a longer file is asked to grow to what the counts need at the least.
    with pytest.raises(HeaderIncomplete) as incomplete:
        read_header(data, file_size=10 * MIB)
    assert incomplete.value.needed == 1_492_024


def test_a_crafted_header_file_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "evil.gguf"
    path.write_bytes(CRAFTED["block_count 2^40"][0])
    with pytest.raises(GgufError, match=r"^evil\.gguf: not a plausible GGUF: llama\.block_count"):
        read_header(path)


def test_the_most_layers_a_header_may_have_are_read() -> None:
    data = _llama(
        ("llama.block_count", U32, MAX_LAYERS),
        ("llama.attention.head_count", U32, 8),
        ("llama.attention.head_count_kv", ARRAY, RawArray(U8, [i % 9 for i in range(MAX_LAYERS)])),
        tensors=[RawTensor(f"blk.{MAX_LAYERS - 1}.attn_q.weight", dims=(32,), ggml_type=0)],
    )
    header, peak = _peak(lambda: read_header(data))
    assert isinstance(header, GgufHeader), header
    assert header.n_layers == len(header.layer_bytes) == len(header.n_head_kv) == MAX_LAYERS
    assert header.n_head_kv[:10] == (0, 1, 2, 3, 4, 5, 6, 7, 8, 0)
    assert header.layer_bytes[-1] == 32 * 4
    assert peak < MIB
    one_more = _llama(tensors=[RawTensor(f"blk.{MAX_LAYERS}.attn_q.weight")])
    with pytest.raises(GgufError, match="is in layer 4,096; a model has at most 4,096 layers"):
        read_header(one_more)


def test_metadata_arrays_are_not_held_in_memory() -> None:
    # 512 per-layer arrays of 4096 items (2 MB): read eagerly they held ~17 MB of lists.
    arrays = [
        (f"arch{i}.attention.head_count_kv", ARRAY, RawArray(U8, [7] * 4096)) for i in range(512)
    ]
    data = _llama(*arrays)
    header, peak = _peak(lambda: read_header(data))
    assert isinstance(header, GgufHeader), header
    assert peak < MIB, f"{peak:,} bytes"


def test_odd_numbers_that_are_harmless_are_read_as_absent() -> None:
    # int(float("inf")) raised OverflowError; "²" passes str.isdigit() but not int().
    data = _llama(
        ("llama.block_count", F32, float("inf")),
        ("llama.context_length", F32, float("nan")),
        tensors=[RawTensor("blk.\u00b2.attn_q.weight", dims=(32,), ggml_type=0)],
    )
    header = read_header(data)
    assert (header.n_layers, header.context_length, header.layer_bytes) == (0, 0, ())
    assert header.output_bytes == 32 * 4  # not a block: counted with the head
