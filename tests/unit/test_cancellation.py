"""Cancellation: the flag, the reason raised on every thread that checks, and hooks run exactly once."""

import threading

import pytest

from domain.cancellation import Cancellation
from domain.errors import Cancelled, DeadlineExceeded


def test_check_raises_a_copy_of_the_first_reason_only_once_cancelled() -> None:
    cancel = Cancellation()
    cancel.check()
    assert not cancel.cancelled
    reason = Cancelled("gone")
    assert cancel.cancel(reason) and not cancel.cancel(DeadlineExceeded("later"))
    with pytest.raises(Cancelled, match="gone") as raised:
        cancel.check()
    assert raised.value is not reason and cancel.cancelled


def test_a_hook_runs_once_when_cancelled_inside_its_block_and_never_after_it() -> None:
    cancel, calls = Cancellation(), list[str]()
    with cancel.hook(lambda: calls.append("inside")):
        pass
    ran = threading.Event()

    def hook() -> None:
        calls.append("cancelled")
        ran.set()

    with cancel.hook(hook):
        canceller = threading.Thread(target=cancel.cancel, args=(Cancelled("x"),))
        canceller.start()
        assert ran.wait(30)
        canceller.join()
    cancel.cancel(Cancelled("again"))
    assert calls == ["cancelled"]


def test_a_hook_registered_after_cancelling_runs_at_once() -> None:
    cancel, calls = Cancellation(), list[str]()
    cancel.cancel(Cancelled("x"))
    with cancel.hook(lambda: calls.append("now")):
        assert calls == ["now"]
    assert calls == ["now"]
