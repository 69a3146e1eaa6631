"""Turn a layer blob (an iterator of chunks) into the uncompressed tar stream, hashing it on the way.

The compression is taken from the blob's magic bytes, not from the media type: registries and builders
mislabel layers often enough (a `.tar.gzip` media type on an uncompressed tar, docker's foreign layers),
and the diff id check catches anything that is not the layer the config names.
"""

import gzip
import hashlib
import io
import os
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import zstandard

from adapters.storage.limits import RATIO_FLOOR, UnpackLimits
from domain.errors import ResourceExhausted

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""
        self._done = False
        self.received = 0  # compressed bytes taken from the chunks so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            try:
                self._pending = bytes(next(self._chunks))
                self.received += len(self._pending)
            except StopIteration:
                self._done = True
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def peek(self, size: int) -> bytes:
        while len(self._pending) < size and not self._done:
            try:
                chunk = bytes(next(self._chunks))
                self.received += len(chunk)
                self._pending += chunk
            except StopIteration:
                self._done = True
        return self._pending[:size]

    def drain(self) -> None:
        """Read to the end, so a verifying iterator gets to check its digest."""
        self._pending = b""
        for _ in self._chunks:
            pass
        self._done = True


class _PassThrough(io.RawIOBase):
    """A stream passed through unchanged; `_seen` looks at every piece read."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.length = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        if not data:
            return 0
        size = len(data)
        buffer[:size] = data
        self.length += size
        self._seen(data)
        return size

    def _seen(self, data: bytes) -> None:
        pass


class HashingReader(_PassThrough):
    """Passes a stream through and keeps the sha256 and length of what was read."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__(inner)
        self._hash = hashlib.sha256()

    def _seen(self, data: bytes) -> None:
        self._hash.update(data)

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def decompressed(raw: ChunkReader) -> IO[bytes]:
    """The uncompressed view of a gzip, zstd or plain tar stream."""
    head = raw.peek(4)
    buffered = io.BufferedReader(raw, buffer_size=1 << 20)
    if head.startswith(GZIP_MAGIC):
        return typing.cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
    if head.startswith(ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        return io.BufferedReader(reader, buffer_size=1 << 20)
    return buffered


# How often (in uncompressed bytes) the store's free space is looked at.
_FREE_SPACE_STEP = 16 * 1024 * 1024


class LimitedReader(_PassThrough):
    """The uncompressed stream, stopped with ResourceExhausted as soon as it passes a limit: a gzip bomb is
    refused after `max_layer_bytes` (or the ratio) were written, never after it filled the disk."""

    def __init__(self, inner: IO[bytes], compressed: ChunkReader, limits: UnpackLimits, store: Path) -> None:
        super().__init__(inner)
        self._compressed = compressed
        self._limits = limits
        self._store = store
        self._next_space_check = 0

    def _seen(self, data: bytes) -> None:
        self._check()

    def _check(self) -> None:
        limits = self._limits
        if self.length > limits.max_layer_bytes:
            raise ResourceExhausted(
                f"layer expands to more than {limits.max_layer_bytes} bytes "
                "(config key image.max_layer_bytes)"
            )
        compressed = max(self._compressed.received, 1)
        if self.length > RATIO_FLOOR and self.length > limits.max_ratio * compressed:
            raise ResourceExhausted(
                f"layer expands more than {limits.max_ratio} times its {compressed} compressed bytes "
                "(config key image.max_layer_ratio)"
            )
        if self.length >= self._next_space_check:
            self._next_space_check = self.length + _FREE_SPACE_STEP
            check_free_space(self._store, limits.min_free_bytes)


def check_free_space(path: Path, min_free_bytes: int) -> None:
    """ResourceExhausted when the file system of `path` has less than `min_free_bytes` available."""
    info = os.statvfs(path)
    free = info.f_bavail * info.f_frsize
    if free < min_free_bytes:
        raise ResourceExhausted(
            f"the image store at {path} has {free} bytes free, less than the {min_free_bytes} it keeps "
            "(config key image.min_free_bytes)"
        )
