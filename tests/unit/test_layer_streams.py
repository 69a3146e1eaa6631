"""Layer blobs to tar streams: compression from magic bytes, multi-member gzip, multi-frame zstd, and the
checks made while the stream is read (hash, limits, a corrupt gzip trailer)."""

import gzip
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from adapters.storage.limits import RATIO_FLOOR, UnpackLimits
from adapters.storage.streams import TAR_BLOCK, ChunkReader, TarStream, decompressed
from adapters.storage.unpack import CORRUPT_STREAM_ERRORS
from domain.errors import ResourceExhausted


def pieces(data: bytes, size: int = 7) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def read_in(stream: TarStream, size: int) -> bytes:
    out = bytearray()
    while piece := stream.read(size):
        assert len(piece) <= size
        out += piece
    return bytes(out)


@pytest.mark.parametrize(
    "blob",
    [
        b"plain tar bytes" * 100,
        gzip.compress(b"plain tar bytes" * 50) + gzip.compress(b"plain tar bytes" * 50),
        # Zero padding after the last member is accepted, as Python's gzip module does.
        gzip.compress(b"plain tar bytes" * 100) + bytes(64),
        zstandard.ZstdCompressor().compress(b"plain tar bytes" * 50)
        + zstandard.ZstdCompressor().compress(b"plain tar bytes" * 50),
    ],
    ids=["plain", "gzip-two-members", "gzip-zero-padded", "zstd-two-frames"],
)
@pytest.mark.parametrize("read_size", [-1, 1, 512, 100_000])
def test_every_form_reads_back_and_hashes(blob: bytes, read_size: int) -> None:
    reader = TarStream(decompressed(ChunkReader(pieces(blob))))
    out = reader.read() if read_size == -1 else read_in(reader, read_size)
    assert out == b"plain tar bytes" * 100
    assert reader.digest == "sha256:" + hashlib.sha256(out).hexdigest()
    assert reader.length == len(out)


def test_what_tarfile_leaves_unread_is_hashed_by_drain() -> None:
    data = bytes(range(256)) * 20_000  # several blocks
    reader = TarStream(decompressed(ChunkReader(pieces(gzip.compress(data), 65536))))
    assert reader.read(1000) == data[:1000]
    reader.drain()
    assert reader.length == len(data) and reader.digest == "sha256:" + hashlib.sha256(data).hexdigest()


GOOD = gzip.compress(b"layer" * 10_000)


def _flip(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 1
    return bytes(changed)


@pytest.mark.parametrize(
    "blob",
    [GOOD[:-3], _flip(GOOD, -6), _flip(GOOD, -2), _flip(GOOD, 30), GOOD + b"trailing garbage"],
    ids=["truncated", "crc", "length", "deflate-body", "garbage-after"],
)
def test_a_corrupt_gzip_stream_raises_what_the_unpacker_reports_as_corrupt(blob: bytes) -> None:
    reader = TarStream(decompressed(ChunkReader(pieces(blob, 4096))))
    with pytest.raises(CORRUPT_STREAM_ERRORS):
        reader.drain()


def test_a_layer_past_its_size_limit_stops_within_one_block(tmp_path: Path) -> None:
    limits = UnpackLimits(max_layer_bytes=3 * TAR_BLOCK, min_free_bytes=0)
    raw = ChunkReader(pieces(gzip.compress(bytes(10 * TAR_BLOCK), 1), 65536))
    reader = TarStream(decompressed(raw), raw, limits, tmp_path)
    with pytest.raises(ResourceExhausted, match=r"image\.max_layer_bytes"):
        reader.drain()
    assert reader.length <= limits.max_layer_bytes + TAR_BLOCK


def test_a_layer_past_its_ratio_stops(tmp_path: Path) -> None:
    limits = UnpackLimits(max_ratio=10, min_free_bytes=0)
    raw = ChunkReader(pieces(zstandard.ZstdCompressor().compress(bytes(RATIO_FLOOR + 4 * TAR_BLOCK)), 4096))
    reader = TarStream(decompressed(raw), raw, limits, tmp_path)
    with pytest.raises(ResourceExhausted, match=r"image\.max_layer_ratio"):
        reader.drain()
    assert reader.length <= RATIO_FLOOR + TAR_BLOCK


def test_drain_consumes_the_source_so_a_verifying_iterator_gets_to_check() -> None:
    finished: list[bool] = []

    def verifying() -> Iterator[bytes]:
        yield b"abc"
        yield b"def"
        finished.append(True)

    raw = ChunkReader(verifying())
    assert raw.read(2) == b"ab"
    raw.drain()
    assert finished == [True]


def test_chunk_reader_serves_peeked_bytes_and_counts_what_it_took() -> None:
    raw = ChunkReader([b"ab", b"cd", b"efgh"])
    assert raw.peek(3) == b"abc" and raw.received == 4
    buffer = bytearray(5)
    assert raw.readinto(buffer) == 4 and bytes(buffer[:4]) == b"abcd"
    assert raw.read(2) == b"ef" and raw.read() == b"gh" and raw.read() == b""
    assert raw.received == 8
