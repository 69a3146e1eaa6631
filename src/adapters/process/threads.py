"""Small helpers for the threads that copy a process's streams (exec and attach)."""

import threading
from collections.abc import Callable, Iterator

import structlog

from ports.streaming import TerminalSize

_log = structlog.get_logger("pycrio.streaming")


def start(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def pump_resize(
    events: Iterator[TerminalSize],
    apply: Callable[[TerminalSize], None],
    applied: threading.Event | None = None,
) -> None:
    try:
        for size in events:
            try:
                apply(size)
            except OSError as err:
                _log.debug("terminal resize failed", error=str(err))
            if applied is not None:
                applied.set()
    finally:
        if applied is not None:
            applied.set()  # no size is coming: nobody should wait for one
