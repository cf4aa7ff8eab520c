"""The worker-to-screen mailbox stays bounded however fast a worker puts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import cast

import pytest
from textual.message import Message
from textual.message_pump import MessagePump

from stack.chat import ChatDelta
from tui.mailbox import Mailbox, newest
from tui.screens.chat import merge_deltas

pytestmark = pytest.mark.tui


class Node:
    """Stands in for the screen: counts the wake-ups it is posted (nobody drains here)."""

    def __init__(self) -> None:
        self.posted: list[Message] = []

    def post_message(self, message: Message) -> bool:
        self.posted.append(message)
        return True


def mailbox(
    limit: int, compact: Callable[[list[str]], list[str]] | None = None
) -> tuple[Mailbox[str], Node]:
    node = Node()
    box: Mailbox[str] = Mailbox(cast(MessagePump, node), Message, limit=limit, compact=compact)
    return box, node


def test_a_flood_keeps_the_newest_and_counts_the_rest() -> None:
    box, node = mailbox(limit=100)
    for start in range(0, 10_000, 7):  # a container writing while the screen is stuck
        box.put(f"line {n}" for n in range(start, min(start + 7, 10_000)))
    items, dropped = box.drain()
    assert items == [f"line {n}" for n in range(9_900, 10_000)]
    assert dropped == 9_900
    assert len(node.posted) == 1  # one wake-up for the whole flood
    box.put_one("after")
    assert box.drain() == (["after"], 0)  # the count was handed over once


def test_compact_merges_before_anything_is_dropped() -> None:
    box, _ = mailbox(limit=3, compact=lambda lines: newest(lines, key=lambda s: s[0]))
    box.put(["a1", "b1", "a2", "c1", "b2", "a3"])
    assert box.drain() == (["c1", "b2", "a3"], 0)
    box.put(["a", "b", "c", "d", "e"])  # four kinds, room for three: the oldest goes
    assert box.drain() == (["c", "d", "e"], 2)


def test_tokens_merge_into_one_piece_that_reads_the_same() -> None:
    pieces = [ChatDelta("Hel"), ChatDelta("lo"), ChatDelta("", "stop", {"completion_tokens": 2})]
    assert merge_deltas(pieces) == [ChatDelta("Hello", "stop", {"completion_tokens": 2})]
    node = cast(MessagePump, Node())
    box: Mailbox[ChatDelta] = Mailbox(node, Message, limit=2, compact=merge_deltas)
    for n in range(1000):
        box.put_one(ChatDelta(f"{n} "))
    items, dropped = box.drain()
    assert dropped == 0 and "".join(d.text for d in items) == "".join(f"{n} " for n in range(1000))


def test_a_worker_waits_for_the_screen_to_take_instead_of_dropping() -> None:
    box, _ = mailbox(limit=100)
    assert box.put(f"line {n}" for n in range(30)) == 30
    assert not box.wait_below(20, timeout=0.01)  # nobody took them: the wait runs out
    taken: list[list[str]] = []
    screen = threading.Thread(target=lambda: taken.append(box.take()))
    screen.start()
    assert box.wait_below(20, timeout=30)  # woken by the take, not by the timeout
    screen.join()
    assert taken == [[f"line {n}" for n in range(30)]]
    assert box.wait_below(1, timeout=0)  # empty: no wait at all
