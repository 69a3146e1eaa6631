"""A signal, given on one thread, that work on other threads should stop, with hooks that unblock that work.

A flag alone does not reach work blocked in a read: the reader registers a hook around the read (an adapter's
hook shuts its socket down), cancelling runs the hook, the read returns, and the reader then finds the flag.
"""

import contextlib
import copy
import threading
from collections.abc import Callable, Iterator


class Cancellation:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: Exception | None = None
        self._hooks: dict[int, Callable[[], None]] = {}
        self._next_key = 0

    @property
    def cancelled(self) -> bool:
        return self._reason is not None

    def cancel(self, reason: Exception) -> bool:
        """Cancel with `reason` (what `check` raises) and run every hook registered now; True the first time.

        Hooks run on this thread, outside the lock; they must not raise."""
        with self._lock:
            if self._reason is not None:
                return False
            self._reason = reason
            hooks = list(self._hooks.values())
            self._hooks.clear()
        for hook in hooks:
            hook()
        return True

    def check(self) -> None:
        """Raise (a copy of) the reason once cancelled: several threads may raise it at once."""
        reason = self._reason
        if reason is not None:
            raise copy.copy(reason)

    @contextlib.contextmanager
    def hook(self, action: Callable[[], None]) -> Iterator[None]:
        """Run `action` if cancelled while the block runs (at once when cancelled already).

        `action` may run on another thread just after the block ended: it must tolerate that (shutting down a
        socket that is closed by then is a harmless error to ignore)."""
        with self._lock:
            key = self._next_key
            self._next_key += 1
            registered = self._reason is None
            if registered:
                self._hooks[key] = action
        if not registered:
            action()
        try:
            yield
        finally:
            with self._lock:
                self._hooks.pop(key, None)
