"""HostFiles.read_text, the fake and the real host alike: files a request names are read without blocking,
only when regular, only up to a cap."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.host.files import RealHostFiles
from domain.errors import InvalidArgument
from ports.host_files import MAX_TEXT_FILE, HostFiles
from tests.fakes.host_files import FakeHostFiles

# Each maker gets the files to lay out (path -> content, None for a FIFO) and returns the HostFiles to ask.
Maker = Callable[[Path, dict[str, bytes | None]], HostFiles]


def _real(root: Path, layout: dict[str, bytes | None]) -> HostFiles:
    for name, content in layout.items():
        if content is None:
            os.mkfifo(root / name)
        else:
            (root / name).write_bytes(content)
    return RealHostFiles()


def _fake(root: Path, layout: dict[str, bytes | None]) -> HostFiles:
    files: dict[str, str | bytes] = {str(root / n): c for n, c in layout.items() if c is not None}
    return FakeHostFiles(files=files, specials={str(root / n) for n, c in layout.items() if c is None})


@pytest.fixture(params=[_real, _fake], ids=["real", "fake"])
def make(request: pytest.FixtureRequest) -> Maker:
    maker: Maker = request.param
    return maker


def test_a_regular_file_is_read_and_an_absent_one_is_none(make: Maker, tmp_path: Path) -> None:
    files = make(tmp_path, {"profile.json": b'{"defaultAction": "SCMP_ACT_ALLOW"}'})
    assert files.read_text(str(tmp_path / "profile.json")) == '{"defaultAction": "SCMP_ACT_ALLOW"}'
    assert files.read_text(str(tmp_path / "absent.json")) is None


def test_a_fifo_is_refused_without_blocking(make: Maker, tmp_path: Path) -> None:
    files = make(tmp_path, {"fifo": None})
    with pytest.raises(InvalidArgument, match="not a regular file"):
        files.read_text(str(tmp_path / "fifo"))


def test_a_file_over_the_cap_or_not_utf8_is_refused(make: Maker, tmp_path: Path) -> None:
    files = make(tmp_path, {"big": b" " * (MAX_TEXT_FILE + 1), "latin1": b"\xff\xfe{}"})
    with pytest.raises(InvalidArgument, match="more than"):
        files.read_text(str(tmp_path / "big"))
    with pytest.raises(InvalidArgument, match="UTF-8"):
        files.read_text(str(tmp_path / "latin1"))


def test_the_real_host_refuses_devices() -> None:
    with pytest.raises(InvalidArgument, match="not a regular file"):
        RealHostFiles().read_text("/dev/zero")
