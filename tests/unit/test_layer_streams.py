"""Layer blobs to tar streams: compression from magic bytes, multi-member gzip, multi-frame zstd."""

import gzip
import hashlib
from collections.abc import Iterator

import pytest
import zstandard

from adapters.storage.streams import ChunkReader, HashingReader, decompressed


def pieces(data: bytes, size: int = 7) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize(
    "blob",
    [
        b"plain tar bytes" * 100,
        gzip.compress(b"plain tar bytes" * 50) + gzip.compress(b"plain tar bytes" * 50),
        zstandard.ZstdCompressor().compress(b"plain tar bytes" * 50)
        + zstandard.ZstdCompressor().compress(b"plain tar bytes" * 50),
    ],
    ids=["plain", "gzip-two-members", "zstd-two-frames"],
)
def test_every_form_reads_back_and_hashes(blob: bytes) -> None:
    raw = ChunkReader(pieces(blob))
    reader = HashingReader(decompressed(raw))
    out = reader.read()
    assert out == b"plain tar bytes" * 100
    assert reader.digest == "sha256:" + hashlib.sha256(out).hexdigest()
    assert reader.length == len(out)


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
