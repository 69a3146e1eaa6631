"""The polls' executor: its own threads first, the main pool's once all of its own have work."""

import threading
from concurrent import futures

import pytest

from adapters.cri.poll_pool import PollPool


def _thread_name() -> str:
    return threading.current_thread().name


def test_work_past_its_own_threads_goes_to_the_overflow_pool_and_comes_back() -> None:
    overflow = futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="main")
    pool = PollPool(2, overflow, thread_name_prefix="poll")
    release = threading.Event()
    try:
        held = [pool.submit(release.wait, 30) for _ in range(2)]  # both own threads busy
        assert pool.submit(_thread_name).result(timeout=30).startswith("main")
        release.set()
        assert all(future.result(timeout=30) for future in held)
        assert pool.submit(_thread_name).result(timeout=30).startswith("poll")  # its own again once free
    finally:
        release.set()
        pool.shutdown()
        overflow.shutdown()


def test_a_failing_call_gives_its_thread_back() -> None:
    overflow = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="main")
    pool = PollPool(1, overflow, thread_name_prefix="poll")
    try:
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(timeout=30)
        assert pool.submit(_thread_name).result(timeout=30).startswith("poll")
    finally:
        pool.shutdown()
        overflow.shutdown()
