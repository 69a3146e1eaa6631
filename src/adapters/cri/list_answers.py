"""ListPodSandbox and ListContainers (and their Stream variants) answered from bytes kept per filter, rebuilt
only when the state changed.

The kubelet asks both about once a second, with and without filters, and the answer is nearly always the
one it got last time. Building 300 container messages and serializing them costs milliseconds in Python;
answering with the bytes of the last answer costs a dictionary look-up. An answer is kept with the
service's list version it was built at (domain/generation.py) and reused while the version is unchanged.
"""

import threading
from collections.abc import Callable, Sequence

from google.protobuf.message import Message

# Answers kept: the kubelet uses a few filters (none, one state, one pod id per pod). Past this many kinds
# of request, or this many bytes (300 containers: 64 KiB bare, a few hundred KiB with the kubelet's labels),
# the kept answers are dropped and rebuilt as they are asked for.
MAX_KEPT = 512
MAX_KEPT_BYTES = 8 * 1024 * 1024


class EncodedResponse:
    """A response message serialized already: the server sends its bytes as they are. (A wrapper rather than
    a subclass of bytes: grpc sends exact bytes objects only.)"""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def pass_encoded(serializer: Callable[[Message], bytes] | None) -> Callable[[object], bytes] | None:
    """The method's response serializer, except that an EncodedResponse goes out unchanged."""
    if serializer is None:
        return None

    def serialize(response: object) -> bytes:
        if type(response) is EncodedResponse:
            return response.data
        return serializer(response)  # type: ignore[arg-type]

    return serialize


class ListAnswers:
    """The last answer per request filter, with the list version it was built at. A List answer is one
    message; a Stream answer (StreamPodSandboxes, StreamContainers) the sequence of messages it sends."""

    def __init__(self, max_kept: int = MAX_KEPT, max_bytes: int = MAX_KEPT_BYTES) -> None:
        self._max_kept = max_kept
        self._max_bytes = max_bytes
        self._kept: dict[bytes, tuple[int, tuple[EncodedResponse, ...]]] = {}
        self._bytes = 0
        self._lock = threading.Lock()  # taken to store only: a kept answer is read without it

    def answer(self, key: bytes, version: int, build: Callable[[], Message]) -> EncodedResponse:
        """The kept answer for `key` if it was built at `version`, else a fresh one (then kept). `version`
        must be read before building: a change made while building bumps it, and the next call rebuilds."""
        return self.messages(key, version, lambda: (build(),))[0]

    def messages(
        self, key: bytes, version: int, build: Callable[[], Sequence[Message]]
    ) -> tuple[EncodedResponse, ...]:
        """As `answer`, for an answer of several messages (none is an answer too)."""
        kept = self._kept.get(key)
        if kept is not None and kept[0] == version:
            return kept[1]
        encoded = tuple(EncodedResponse(message.SerializeToString()) for message in build())
        size = sum(len(message.data) for message in encoded)
        with self._lock:
            old = self._kept.pop(key, None)
            self._bytes -= sum(len(message.data) for message in old[1]) if old is not None else 0
            if len(self._kept) >= self._max_kept or self._bytes + size > self._max_bytes:
                self._kept = {}
                self._bytes = 0
            self._kept[key] = (version, encoded)
            self._bytes += size
        return encoded
