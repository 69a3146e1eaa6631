"""A number that changes whenever what a service's list would answer changes.

The kubelet lists every pod and container about once a second, and nearly always gets the same answer. A
list handler keeps its last answer with the number it was built at and reuses it while the number is the
same. For that to stay exactly right, a service bumps the number after every change it makes to what a
list shows (the change first, then the bump: a reader that read the old number rebuilds on its next call).
"""

import threading


class Generation:
    def __init__(self) -> None:
        # A lock, not a bare `+= 1`: two bumps that interleave could store an older number last, and a
        # cached answer built between them would be taken as current.
        self._lock = threading.Lock()
        self._value = 0

    @property
    def value(self) -> int:
        return self._value

    def bump(self) -> None:
        with self._lock:
            self._value += 1
