"""Run an operation N times at a concurrency level and collect per-step durations (thread-safe)."""

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager


class Recorder:
    """Durations in seconds per step name, from any number of threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: dict[str, list[float]] = defaultdict(list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self._samples[name].append(seconds)

    def samples(self, name: str) -> list[float]:
        with self._lock:
            return list(self._samples[name])


def run_batch(operation: Callable[[int], None], iterations: int, concurrency: int) -> float:
    """Call operation(0..iterations-1) with `concurrency` threads; returns the wall seconds.

    The first error stops the batch from taking new work and is raised once running calls finish.
    """
    started = time.perf_counter()
    if concurrency <= 1:
        for index in range(iterations):
            operation(index)
        return time.perf_counter() - started
    failed = threading.Event()

    def guarded(index: int) -> None:
        if failed.is_set():
            return
        try:
            operation(index)
        except BaseException:
            failed.set()
            raise

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench")
    try:
        futures = [pool.submit(guarded, index) for index in range(iterations)]
        for future in futures:
            future.result()
    except BaseException:
        # Also on KeyboardInterrupt in this thread: queued calls must not start, so cleanup can begin.
        failed.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return time.perf_counter() - started
