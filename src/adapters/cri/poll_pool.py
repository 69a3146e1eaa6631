"""The executor the kubelet's polls run on: threads of their own, and the main pool's once those are busy.

grpcio's sync server hands a call to its method's executor when the call's headers arrive; the thread then
waits for the request message. So a call holds a thread while its client is slow to send, not only while it
runs. With threads of their own, polls are not starved by long calls on the main pool; by overflowing into
the main pool when all of their own are taken (by polls whose clients stall), they are never worse off
than with the main pool alone.
"""

import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any


class PollPool(futures.ThreadPoolExecutor):
    """A ThreadPoolExecutor (grpcio takes a method's `experimental_thread_pool` only if it is one) that
    sends work to `overflow` while all of its own `max_workers` threads have work."""

    def __init__(self, max_workers: int, overflow: futures.Executor, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._limit = max_workers
        self._overflow = overflow
        self._busy = 0
        self._count_lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        with self._count_lock:
            own = self._busy < self._limit
            if own:
                self._busy += 1
        if not own:
            return self._overflow.submit(fn, *args, **kwargs)
        try:
            return super().submit(self._counted, fn, *args, **kwargs)
        except BaseException:
            self._done()
            raise

    def _counted(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            self._done()

    def _done(self) -> None:
        with self._count_lock:
            self._busy -= 1
