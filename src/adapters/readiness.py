"""Waiting for a descriptor to become readable, for any descriptor number.

select() takes only descriptors below FD_SETSIZE (1024): a daemon with many containers, streams and
connections open passes that, and select() then fails with "filedescriptor out of range". poll() has no
such limit, so every wait in pycrio goes through here.
"""

import math
import select
from typing import Protocol


class HasFileno(Protocol):
    def fileno(self) -> int: ...


def wait_readable(fd: int | HasFileno, timeout: float) -> bool:
    """True once `fd` is readable (or at its end, or in error: a read then tells which), False after
    `timeout` seconds."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(math.ceil(max(timeout, 0.0) * 1000)))
