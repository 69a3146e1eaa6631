"""Turn a layer blob (an iterator of chunks) into the uncompressed tar stream, hashing it on the way.

The compression is taken from the blob's magic bytes, not from the media type: registries and builders
mislabel layers often enough (a `.tar.gzip` media type on an uncompressed tar, docker's foreign layers),
and the diff id check catches anything that is not the layer the config names.

Speed (docs/images.md, "Pull pipeline"): gzip is inflated by ISA-L (`isal`, about 2.5x zlib on ordinary
layers) and zstd by `zstandard`, both with the GIL released, so layers unpacked on other threads run
meanwhile. The uncompressed stream is hashed and checked against the limits once per block of
`TAR_BLOCK` bytes, not once per read tarfile makes, and the chunks are sliced through memoryviews, never
re-copied whole.
"""

import hashlib
import io
import os
import typing
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import zstandard
from isal import igzip

from adapters.storage.limits import RATIO_FLOOR, UnpackLimits
from domain.errors import ResourceExhausted

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# How much uncompressed data is taken (and hashed, and checked) at once.
TAR_BLOCK = 1 << 20


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")
        self._done = False
        self.received = 0  # compressed bytes taken from the chunks so far

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        """Take the next chunk when nothing is pending; False at the end of the chunks."""
        while not self._pending and not self._done:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._done = True
                break
            self._pending = memoryview(chunk).cast("B")
            self.received += len(chunk)
        return bool(self._pending)

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        if not self._fill():
            return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes of one chunk (all of it for -1), without the readinto copy."""
        if not self._fill():
            return b""
        if size < 0 or size >= len(self._pending):
            size = len(self._pending)
        piece, self._pending = self._pending[:size], self._pending[size:]
        return piece.tobytes()

    def peek(self, size: int) -> bytes:
        """The next `size` bytes without consuming them (joins chunks only as far as needed)."""
        head = bytes(self._pending)
        while len(head) < size and not self._done:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._done = True
                break
            self.received += len(chunk)
            head += chunk
        self._pending = memoryview(head).cast("B")
        return head[:size]

    def drain(self) -> None:
        """Read to the end, so a verifying iterator gets to check its digest."""
        self._pending = memoryview(b"")
        for _ in self._chunks:
            pass
        self._done = True


def decompressed(raw: ChunkReader) -> IO[bytes]:
    """The uncompressed view of a gzip, zstd or plain tar stream."""
    head = raw.peek(4)
    source = typing.cast(IO[bytes], raw)
    if head.startswith(GZIP_MAGIC):
        return typing.cast(IO[bytes], igzip.IGzipFile(fileobj=source, mode="rb"))  # type: ignore[no-untyped-call]
    if head.startswith(ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
        return typing.cast(IO[bytes], reader)
    return source


# How often (in uncompressed bytes) the store's free space is looked at.
_FREE_SPACE_STEP = 16 * 1024 * 1024


class TarStream:
    """The uncompressed stream as tarfile reads it, hashed and checked one `TAR_BLOCK` at a time.

    Stopped with ResourceExhausted as soon as it passes a limit: a gzip bomb is refused after
    `max_layer_bytes` (or the ratio) were taken, never after it filled the disk. Without `limits` it only
    hashes (tests, and blobs that are not layers)."""

    def __init__(
        self,
        inner: IO[bytes],
        compressed: ChunkReader | None = None,
        limits: UnpackLimits | None = None,
        store: Path | None = None,
    ) -> None:
        self._inner = inner
        self._compressed = compressed
        self._limits = limits
        self._store = store
        self._hash = hashlib.sha256()
        self._block = memoryview(b"")
        self._next_space_check = 0
        self.length = 0
        # Bytes the unpacker writes that the stream does not carry: the holes of sparse files.
        self.expanded = 0

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (the rest of the stream for -1); b"" at its end."""
        if size < 0:
            return b"".join(iter(lambda: self.read(TAR_BLOCK), b""))
        if not self._block:
            data = self._inner.read(TAR_BLOCK)
            if not data:
                return b""
            self._seen(data)
            self._block = memoryview(data).cast("B")
        size = min(size, len(self._block))
        piece, self._block = self._block[:size], self._block[size:]
        return piece.tobytes()

    def _seen(self, data: bytes) -> None:
        self._hash.update(data)
        self.length += len(data)
        if self._limits is not None:
            self._check(self._limits)

    def drain(self) -> None:
        """Hash whatever follows what tarfile read (tar padding counts towards the diff id)."""
        self._block = memoryview(b"")
        while data := self._inner.read(TAR_BLOCK):
            self._seen(data)

    def charge(self, extra: int) -> None:
        """Count `extra` bytes written to disk without being read from the stream (a sparse file's holes,
        written out whole as containers/storage does) against the same limits."""
        self.expanded += extra
        if self._limits is not None:
            self._check(self._limits)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def _check(self, limits: UnpackLimits) -> None:
        written = self.length + self.expanded
        if written > limits.max_layer_bytes:
            raise ResourceExhausted(
                f"layer expands to more than {limits.max_layer_bytes} bytes "
                "(config key image.max_layer_bytes)"
            )
        compressed = max(self._compressed.received if self._compressed is not None else 0, 1)
        if written > RATIO_FLOOR and written > limits.max_ratio * compressed:
            raise ResourceExhausted(
                f"layer expands more than {limits.max_ratio} times its {compressed} compressed bytes "
                "(config key image.max_layer_ratio)"
            )
        if self._store is not None and written >= self._next_space_check:
            self._next_space_check = written + _FREE_SPACE_STEP
            check_free_space(self._store, limits)


def check_free_space(path: Path, limits: UnpackLimits) -> None:
    """ResourceExhausted when the file system of `path` has less than the free bytes or inodes the limits
    keep. A file system that reports no inode count (btrfs, some network ones) is judged by bytes only."""
    info = os.statvfs(path)
    free = info.f_bavail * info.f_frsize
    if free < limits.min_free_bytes:
        raise ResourceExhausted(
            f"the image store at {path} has {free} bytes free, less than the {limits.min_free_bytes} it "
            "keeps (config key image.min_free_bytes)"
        )
    if info.f_files and info.f_favail < limits.min_free_inodes:
        raise ResourceExhausted(
            f"the image store at {path} has {info.f_favail} inodes free, less than the "
            f"{limits.min_free_inodes} it keeps (config key image.min_free_inodes)"
        )
