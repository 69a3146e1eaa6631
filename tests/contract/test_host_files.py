"""HostFiles, the fake and the real host alike: read_text reads files a request names without blocking,
only when regular, only up to a cap; remove_if_empty removes what a failed create made, nothing with data."""

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


# ---- remove_if_empty: what a failed create made goes, anything holding data stays ----------------------

Make = Callable[[str, str | None], None]  # (path, None for a directory or a file's text)


@pytest.fixture(params=["fake", "host"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[HostFiles, Make, str]:
    if request.param == "fake":
        fake = FakeHostFiles()

        def make_fake(path: str, text: str | None) -> None:
            fake.paths[path] = path
            if text is not None:
                fake.files[path] = text

        return fake, make_fake, "/h"

    def make_real(path: str, text: str | None) -> None:
        if text is None:
            Path(path).mkdir()
        else:
            Path(path).write_text(text)

    return RealHostFiles(), make_real, str(tmp_path)


def test_empty_directories_and_files_go_others_stay(host: tuple[HostFiles, Make, str]) -> None:
    files, make, root = host
    make(f"{root}/empty", None)
    make(f"{root}/empty-file", "")
    make(f"{root}/full", None)
    make(f"{root}/full/data", "x")
    make(f"{root}/file", "data")
    for name in ("empty", "empty-file", "full", "file", "absent"):
        files.remove_if_empty(f"{root}/{name}")
    assert files.resolve(f"{root}/empty") is None and files.resolve(f"{root}/empty-file") is None
    assert files.resolve(f"{root}/full") is not None and files.resolve(f"{root}/full/data") is not None
    assert files.resolve(f"{root}/file") is not None
