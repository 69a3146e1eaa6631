"""A blocking byte queue between a connection's reader thread and the thread that consumes one stream."""

import threading
from collections import deque

# Unread input above this blocks the reader (and so the peer, through TCP) until the consumer catches up.
MAX_BUFFERED = 1024 * 1024


class InputBuffer:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._ended = False

    def feed(self, data: bytes) -> None:
        with self._cond:
            while self._size > MAX_BUFFERED and not self._ended:
                self._cond.wait()
            if data and not self._ended:
                self._chunks.append(data)
                self._size += len(data)
                self._cond.notify_all()

    def end(self) -> None:
        """No more input: readers get what is queued, then b""."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def read(self, size: int) -> bytes:
        with self._cond:
            while not self._chunks and not self._ended:
                self._cond.wait()
            if not self._chunks:
                return b""
            chunk = self._chunks.popleft()
            if len(chunk) > size:
                self._chunks.appendleft(chunk[size:])
                chunk = chunk[:size]
            self._size -= len(chunk)
            self._cond.notify_all()
            return chunk
