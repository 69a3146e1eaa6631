"""HostFiles.remove_if_empty on the fake and on the host: what a failed create made goes, anything holding
data stays."""

from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.host.files import RealHostFiles
from ports.host_files import HostFiles
from tests.fakes.host_files import FakeHostFiles

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
