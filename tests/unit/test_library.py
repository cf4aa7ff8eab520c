"""`stack.models.library` lists MODELS_DIR as models: split sets grouped, broken files explained."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest

from stack.models import gguf, library
from stack.models.header import GgufHeader
from stack.models.library import LibraryError, LocalModel, delete_model, scan_library
from tests.support.gguf_factory import (
    STRING,
    U64,
    craft_header,
    write_not_gguf,
    write_split_set,
    write_tiny_model,
    write_truncated,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_tiny_model(root / "chat.gguf", name="chat")
    write_tiny_model(root / "org" / "coder.gguf", name="coder", file_type=7)
    write_split_set(root / "big", "big", shards=3)
    half = write_split_set(root / "half", "half", shards=3)
    half[2].unlink()
    write_not_gguf(root / "weights.gguf")
    write_truncated(root / "cut.gguf")
    # Not models: hidden, partial downloads, other files.
    write_tiny_model(root / ".hidden.gguf")
    write_tiny_model(root / ".cache" / "x.gguf")
    (root / "next.gguf.part").write_bytes(b"GGUF")
    (root / "notes.txt").write_text("hello")
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "library.json"


def _by_path(found: list[LocalModel]) -> dict[str, LocalModel]:
    return {m.relative_path: m for m in found}


def test_scan_groups_split_sets_and_explains_broken_files(models: Path, cache: Path) -> None:
    found = scan_library(models, cache_path=cache)
    assert [m.relative_path for m in found] == [
        "big/big-00001-of-00003.gguf",
        "chat.gguf",
        "cut.gguf",
        "half/half-00001-of-00003.gguf",
        "org/coder.gguf",
        "weights.gguf",
    ]
    by_path = _by_path(found)

    big = by_path["big/big-00001-of-00003.gguf"]
    assert big.usable and big.broken == ""
    assert big.shards == tuple(f"big/big-0000{i}-of-00003.gguf" for i in (1, 2, 3))
    assert big.size == sum((models / s).stat().st_size for s in big.shards)
    assert big.path == models.resolve() / "big/big-00001-of-00003.gguf"
    assert big.header is not None and big.header.name == "big"
    single = gguf.read_header(write_tiny_model(models.parent / "ref.gguf", name="big"))
    assert big.header.parameter_count == single.parameter_count

    coder = by_path["org/coder.gguf"]
    assert coder.usable and coder.header is not None and coder.header.quant == "Q8_0"
    assert coder.name == "coder"

    assert (
        "split set incomplete: missing half-00003-of-00003.gguf"
        in by_path["half/half-00001-of-00003.gguf"].broken
    )
    assert "not a GGUF file" in by_path["weights.gguf"].broken
    assert by_path["weights.gguf"].header is None
    assert by_path["weights.gguf"].name == "weights"
    cut = by_path["cut.gguf"]
    assert "bytes short of its last tensor" in cut.broken
    assert cut.header is not None  # still describes the model
    assert not any(m.is_chat or m.is_code for m in found)


def test_chat_and_code_marks(models: Path, cache: Path) -> None:
    found = scan_library(
        models, cache_path=cache, chat_model="./chat.gguf", code_model="big/big-00001-of-00003.gguf"
    )
    marked = {m.relative_path: (m.is_chat, m.is_code) for m in found if m.is_chat or m.is_code}
    assert marked == {"chat.gguf": (True, False), "big/big-00001-of-00003.gguf": (False, True)}
    same = scan_library(models, cache_path=cache, chat_model="chat.gguf", code_model="chat.gguf")
    assert [m.relative_path for m in same if m.is_chat and m.is_code] == ["chat.gguf"]


def test_broken_shard_and_foreign_shard(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "models"
    shards = write_split_set(root, "set", shards=2)
    with shards[1].open("r+b") as handle:
        handle.truncate(shards[1].stat().st_size - 100)
    renamed = write_split_set(tmp_path / "other", "solo", shards=2)[0].rename(root / "solo.gguf")
    found = _by_path(scan_library(root, cache_path=cache))
    assert found["set-00001-of-00002.gguf"].broken.startswith("shard 2 of 2: the file is ")
    assert "lacks the -0000N-of-0000M part" in found[renamed.name].broken


def test_crafted_files_are_listed_as_broken_and_the_scan_goes_on(
    tmp_path: Path, cache: Path
) -> None:
    root = tmp_path / "models"
    write_tiny_model(root / "good.gguf", name="good")
    # A header claiming 2^40 layers raised MemoryError and failed the whole scan.
    (root / "layers.gguf").write_bytes(
        craft_header([("general.architecture", STRING, "llama"), ("llama.block_count", U64, 2**40)])
    )
    # A name whose shard index is past its count left an empty group: ValueError from max().
    write_tiny_model(root / "odd-00005-of-00003.gguf", name="odd")
    # A name announcing 99,999 shards walked them all (1.2 s, 39 MB) and listed every name.
    write_tiny_model(root / "many-00001-of-99999.gguf", name="many")

    tracemalloc.start()
    try:
        found = _by_path(scan_library(root, cache_path=cache))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert sorted(found) == [
        "good.gguf",
        "layers.gguf",
        "many-00001-of-99999.gguf",
        "odd-00005-of-00003.gguf",
    ]
    assert found["good.gguf"].usable
    layers = found["layers.gguf"]
    assert layers.header is None
    assert (
        layers.broken
        == "not a plausible GGUF: llama.block_count 1,099,511,627,776 is more than 4,096"
    )
    assert found["odd-00005-of-00003.gguf"].usable  # not a member of a set: a file of its own
    many = found["many-00001-of-99999.gguf"]
    assert many.shards == ("many-00001-of-99999.gguf",)
    assert many.broken == (
        "split set incomplete: missing many-00002-of-99999.gguf, many-00003-of-99999.gguf, "
        "many-00004-of-99999.gguf and 99,995 more"
    )
    assert peak < 4 * 2**20, f"{peak:,} bytes"


def test_symlinked_folders_are_followed_once(models: Path, cache: Path) -> None:
    (models / "org" / "loop").symlink_to(models, target_is_directory=True)
    paths = [m.relative_path for m in scan_library(models, cache_path=cache)]
    assert paths.count("chat.gguf") + paths.count("org/loop/chat.gguf") == 1


def test_missing_folder_is_an_empty_library(tmp_path: Path, cache: Path) -> None:
    assert scan_library(tmp_path / "nowhere", cache_path=cache) == []


def test_rescan_uses_the_cache(models: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = scan_library(models, cache_path=cache)
    assert cache.is_file()
    reads: list[Path] = []
    real_read = gguf.read_header

    def counting(source: Path) -> GgufHeader:
        reads.append(Path(source))
        return real_read(source)

    monkeypatch.setattr(library, "read_header", counting)
    assert scan_library(models, cache_path=cache) == first
    assert reads == []

    # New content with the same size and mtime is not noticed: the cache key held.
    chat = models / "chat.gguf"
    stat = chat.stat()
    write_tiny_model(chat, name="other")  # same shape, same size
    os.utime(chat, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert chat.stat().st_size == stat.st_size
    assert _by_path(scan_library(models, cache_path=cache))["chat.gguf"].name == "chat"
    assert reads == []

    # A changed mtime is: only that file is read again.
    os.utime(chat, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert _by_path(scan_library(models, cache_path=cache))["chat.gguf"].name == "other"
    assert reads == [chat.resolve()]


def test_vanished_files_leave_the_cache(models: Path, cache: Path) -> None:
    scan_library(models, cache_path=cache)
    (models / "chat.gguf").unlink()
    scan_library(models, cache_path=cache)
    files = json.loads(cache.read_text())["files"]
    assert str(models.resolve() / "org" / "coder.gguf") in files
    assert not any(key.endswith("chat.gguf") for key in files)


def test_unreadable_or_stale_cache_is_ignored(models: Path, cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    assert len(scan_library(models, cache_path=cache)) == 6
    data = json.loads(cache.read_text())
    data["version"] = -1
    cache.write_text(json.dumps(data))
    assert len(scan_library(models, cache_path=cache)) == 6
    assert json.loads(cache.read_text())["version"] == library.CACHE_VERSION


def test_default_cache_path_honours_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert library.default_cache_path() == tmp_path / "xdg" / "llm-tui" / "library.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert library.default_cache_path() == tmp_path / "home" / ".cache/llm-tui/library.json"


def test_delete_removes_every_shard(models: Path, cache: Path) -> None:
    big = _by_path(scan_library(models, cache_path=cache))["big/big-00001-of-00003.gguf"]
    removed = delete_model(models, big)
    assert sorted(p.name for p in removed) == [f"big-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert not any((models / s).exists() for s in big.shards)
    names = [m.relative_path for m in scan_library(models, cache_path=cache)]
    assert "big/big-00001-of-00003.gguf" not in names
    assert (models / "chat.gguf").is_file()


def test_delete_refuses_paths_outside_models_dir(models: Path, tmp_path: Path) -> None:
    outside = write_tiny_model(tmp_path / "precious.gguf")
    (models / "link").symlink_to(tmp_path)

    def fake(*shards: str) -> LocalModel:
        return LocalModel(shards[0], models / shards[0], shards, 1, 0, None)

    for shards in (
        ("../precious.gguf",),
        (str(outside),),
        ("link/precious.gguf",),
        ("chat.gguf", "../precious.gguf"),  # checked before anything is deleted
    ):
        with pytest.raises(LibraryError, match="not inside MODELS_DIR"):
            delete_model(models, fake(*shards))
    with pytest.raises(LibraryError, match=r"not a \.gguf file"):
        delete_model(models, fake("notes.txt"))
    assert outside.is_file()
    assert (models / "chat.gguf").is_file()
    assert (models / "notes.txt").is_file()


def test_delete_of_a_symlinked_model_removes_the_link_only(models: Path, tmp_path: Path) -> None:
    target = write_tiny_model(tmp_path / "elsewhere.gguf")
    (models / "linked.gguf").symlink_to(target)
    model = _by_path(scan_library(models, cache_path=tmp_path / "c.json"))["linked.gguf"]
    assert model.usable
    assert delete_model(models, model) == [models.resolve() / "linked.gguf"]
    assert target.is_file()
