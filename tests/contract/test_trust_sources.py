"""The TrustFiles and LookasideSignatures contracts: the in-memory fakes, the files on disk, and a lookaside
read from a directory (file://) and from a web server on 127.0.0.1 (http://)."""

import functools
import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.trust.files import LocalTrustFiles
from adapters.trust.lookaside import LookasideStore
from domain.errors import Unavailable
from domain.registries_d import signature_url
from ports.signatures import MAX_SIGNATURES, LookasideSignatures, TrustFileError, TrustFiles
from tests.fakes.signatures import InMemoryLookaside, InMemoryTrustFiles

DIGEST = "sha256:" + "5a" * 32

# -- TrustFiles -------------------------------------------------------------------------------------------


@pytest.fixture(params=["fake", "disk"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[TrustFiles, Callable[[str, bytes], str]]:
    """The port and a way to put a file at a path (relative names land under one root)."""
    if request.param == "fake":
        fake = InMemoryTrustFiles()

        def put_fake(name: str, data: bytes) -> str:
            fake.files[f"/root/{name}"] = data
            return f"/root/{name}"

        return fake, put_fake

    def put(name: str, data: bytes) -> str:
        path = tmp_path / "root" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return str(path)

    return LocalTrustFiles(), put


def test_files_are_read_and_missing_ones_are_none(
    files: tuple[TrustFiles, Callable[[str, bytes], str]],
) -> None:
    port, put = files
    path = put("policy.json", b"{}")
    assert port.read(path) == b"{}"
    assert port.read(path + ".absent") is None


def test_yaml_files_of_a_directory_in_lexical_order(
    files: tuple[TrustFiles, Callable[[str, bytes], str]],
) -> None:
    port, put = files
    b = put("registries.d/b.yaml", b"b: 1\n")
    a = put("registries.d/a.yaml", b"a: 1\n")
    put("registries.d/ignored.conf", b"x")
    put("registries.d/sub/c.yaml", b"c: 1\n")
    directory = a.rsplit("/", 1)[0]
    assert port.yaml_files(directory) == [(a, "a: 1\n"), (b, "b: 1\n")]
    assert port.yaml_files(directory + "-absent") == []


def test_an_unreadable_file_raises_naming_it(tmp_path: Path) -> None:
    directory = tmp_path / "policy.json"
    directory.mkdir()
    with pytest.raises(TrustFileError, match=str(directory)):
        LocalTrustFiles().read(str(directory))
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate((4 << 20) + 1)
    with pytest.raises(TrustFileError, match="larger than"):
        LocalTrustFiles().read(str(big))
    fake = InMemoryTrustFiles()
    fake.files["/p"], fake.unreadable = b"{}", {"/p"}
    with pytest.raises(TrustFileError, match="/p"):
        fake.read("/p")


# -- LookasideSignatures ------------------------------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(params=["fake", "file", "http"])
def lookaside(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[LookasideSignatures, str, Callable[[int, bytes], None]]]:
    """The port, a base URL, and a way to store signature n under DIGEST."""
    if request.param == "fake":
        fake = InMemoryLookaside()
        base = "https://sigs.test/team/app"
        yield fake, base, lambda n, blob: fake.blobs.__setitem__(signature_url(base, DIGEST, n), blob)
        return

    def put(n: int, blob: bytes) -> None:
        where = tmp_path / "sigs" / "team" / f"app@sha256={'5a' * 32}"
        where.mkdir(parents=True, exist_ok=True)
        (where / f"signature-{n}").write_bytes(blob)

    if request.param == "file":
        yield LookasideStore(), f"file://{tmp_path / 'sigs' / 'team' / 'app'}", put
        return
    handler = functools.partial(_Quiet, directory=str(tmp_path / "sigs"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield LookasideStore(timeout=10), f"http://127.0.0.1:{server.server_port}/team/app", put
    finally:
        server.shutdown()
        server.server_close()


def test_signatures_are_read_in_order_until_one_is_missing(
    lookaside: tuple[LookasideSignatures, str, Callable[[int, bytes], None]],
) -> None:
    port, base, put = lookaside
    assert port.fetch(base, DIGEST) == []
    put(1, b"first")
    put(2, b"second")
    put(4, b"after a gap")
    assert port.fetch(base, DIGEST) == [b"first", b"second"]


def test_a_lookaside_with_too_many_signatures_is_refused(tmp_path: Path) -> None:
    where = tmp_path / f"app@sha256={'5a' * 32}"
    where.mkdir()
    for n in range(1, MAX_SIGNATURES + 2):
        (where / f"signature-{n}").write_bytes(b"x")
    with pytest.raises(Unavailable, match="more than"):
        LookasideStore().fetch(f"file://{tmp_path / 'app'}", DIGEST)
    os.remove(where / f"signature-{MAX_SIGNATURES + 1}")
    assert len(LookasideStore().fetch(f"file://{tmp_path / 'app'}", DIGEST)) == MAX_SIGNATURES


def test_an_unreachable_lookaside_server_is_unavailable() -> None:
    with pytest.raises(Unavailable, match="reading signature"):
        LookasideStore(timeout=5).fetch("http://127.0.0.1:9/team/app", DIGEST)
