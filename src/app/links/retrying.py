"""Retrying what a watcher learnt when acting on it failed for a while (the node out of file descriptors):
the exit-file and pidfd watchers hear of an exit once, and an evented kubelet only listens, so an exit whose
handling failed must be handled again, or its CONTAINER_STOPPED_EVENT is lost until someone relists."""

import time
from collections.abc import Callable

import structlog

_log = structlog.get_logger("pycrio.exits")
FIRST_DELAY = 0.1
MAX_DELAY = 5.0
GIVE_UP_AFTER = 600.0  # seconds; by then a relisting kubelet has asked, and the next exit looks again


def until_done(action: Callable[[], None], what: str, sleep: Callable[[float], None] = time.sleep) -> None:
    """Run `action` until it returns, retrying with a growing delay after any exception (logged)."""
    delay, waited = FIRST_DELAY, 0.0
    while True:
        try:
            action()
            return
        except Exception:
            if waited >= GIVE_UP_AFTER:
                _log.exception(f"{what} failed; giving up")
                return
            _log.exception(f"{what} failed; trying again", retry_in=delay)
        sleep(delay)
        waited += delay
        delay = min(delay * 2, MAX_DELAY)
