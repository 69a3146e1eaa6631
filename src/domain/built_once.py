"""A value made at its first use, once, whichever thread asks first: what the daemon defers past start-up
(the registry client, the signature-policy code) to keep the idle daemon small."""

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BuiltOnce(Generic[T]):
    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._built: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        """The value, built now if no call built it yet; a build that raised is tried again next time."""
        built = self._built
        if built is None:
            with self._lock:
                if self._built is None:
                    self._built = self._build()
                built = self._built
        return built

    @property
    def built(self) -> T | None:
        """The value if it was built, without building it."""
        return self._built
