"""The cancellation token every blocking call of the core obeys."""

from __future__ import annotations

import threading

import pytest

from stack.cancel import Cancelled, CancelToken, closing_on_cancel, sleep


def test_callbacks_run_once_in_order_and_late_ones_at_once() -> None:
    token = CancelToken()
    calls: list[str] = []
    token.on_cancel(lambda: calls.append("first"))
    unregister = token.on_cancel(lambda: calls.append("removed"))
    token.on_cancel(lambda: calls.append("second"))
    unregister()
    token.cancel()
    token.cancel()
    assert calls == ["first", "second"]
    token.on_cancel(lambda: calls.append("late"))
    assert calls == ["first", "second", "late"]
    assert token.cancelled


def test_a_failing_callback_does_not_stop_the_others() -> None:
    token = CancelToken()
    calls: list[str] = []

    def broken() -> None:
        raise OSError("already closed")

    token.on_cancel(broken)
    token.on_cancel(lambda: calls.append("ran"))
    token.cancel()
    assert calls == ["ran"]


def test_sleep_and_check_raise_once_cancelled() -> None:
    token = CancelToken()
    token.check()
    sleep(token, 0)
    blocked = threading.Event()
    outcome: dict[str, BaseException] = {}

    def sleeper() -> None:
        blocked.set()
        try:
            sleep(token, 3600, "the long wait")
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=sleeper, daemon=True)
    thread.start()
    assert blocked.wait(10)
    token.cancel()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome["error"], Cancelled)
    assert str(outcome["error"]) == "the long wait was cancelled"
    with pytest.raises(Cancelled):
        token.check()


def test_closing_on_cancel_is_scoped_to_the_block() -> None:
    token = CancelToken()
    closed: list[str] = []
    with closing_on_cancel(token, lambda: closed.append("in block")):
        pass
    token.cancel()
    assert closed == []
    with closing_on_cancel(None, lambda: closed.append("never")):
        pass
    assert closed == []
