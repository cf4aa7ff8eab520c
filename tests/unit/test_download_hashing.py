"""A part's sha256 is worked out on a thread beside its writes, and is the same hash."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from stack.hub import hashing
from stack.hub.hashing import BackgroundHash
from stack.hub.parts import PartWriter


def hash_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sha256"]


def test_the_hash_of_pieces_is_the_hash_of_the_whole() -> None:
    data = os.urandom(5 * hashing.BATCH + 12345)
    pieces = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    background = BackgroundHash(hashlib.sha256())
    for piece in pieces:
        background.update(piece)
    assert hash_threads(), "more than a batch was given: the thread hashes it"
    assert background.result().hexdigest() == hashlib.sha256(data).hexdigest()
    assert not hash_threads(), "result() waits for the thread, which ends"


def test_less_than_a_batch_is_hashed_in_line_and_more_can_follow() -> None:
    background = BackgroundHash(hashlib.sha256(b"kept "))  # a resumed part's state
    background.update(b"small")
    assert not hash_threads()
    assert background.result().hexdigest() == hashlib.sha256(b"kept small").hexdigest()
    more = os.urandom(2 * hashing.BATCH)
    background.update(more)
    expected = hashlib.sha256(b"kept small" + more).hexdigest()
    assert background.result().hexdigest() == expected


def test_the_hash_falls_behind_by_at_most_depth_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow hash holds the writer back instead of the pieces piling up in memory."""
    gate = threading.Event()
    hashed: list[int] = []

    class Slow:
        def update(self, chunk: bytes) -> None:
            gate.wait()
            hashed.append(len(chunk))

    monkeypatch.setattr(hashing, "BATCH", 4)
    monkeypatch.setattr(hashing, "DEPTH", 2)
    background = BackgroundHash(Slow())
    writer = threading.Thread(target=lambda: [background.update(b"1234") for _ in range(10)])
    writer.start()
    writer.join(timeout=0.5)  # the bound is what it waits on: it cannot finish while gated
    assert writer.is_alive()
    queue = background._queue
    assert queue is not None and queue.qsize() <= 2
    gate.set()
    writer.join()
    background.result()
    assert sum(hashed) == 40


def test_a_part_writer_restarting_hashes_only_what_follows(tmp_path: Path) -> None:
    part = tmp_path / "model.gguf.part"
    first, second = os.urandom(3 * hashing.BATCH), os.urandom(hashing.BATCH + 7)
    with open(part, "ab", buffering=0) as handle:
        writer = PartWriter(handle, hashlib.sha256(), 0)
        writer.write(first)
        writer.restart()  # a server that ignored the Range: the file starts over
        writer.write(second)
        assert writer.hasher.hexdigest() == hashlib.sha256(second).hexdigest()
    assert part.read_bytes() == second
    assert not hash_threads()
