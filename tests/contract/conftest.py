"""Fixtures shared by the contract suites that run real containers."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.process import runner
from adapters.process.subreaper import become_subreaper
from tests.contract.container_host import build_busybox_rootfs, remove_test_root_if_empty


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(scope="session")
def orphan_reaper() -> Iterator[None]:
    """Like the daemon: adopt and reap what the runtimes and conmon orphan."""
    become_subreaper()
    reaper = runner.OrphanReaper(gap=0.2)
    reaper.start()
    yield
    reaper.stop()
    remove_test_root_if_empty()
