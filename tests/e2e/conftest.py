"""Fixtures that start the real daemon."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.daemon import Daemon

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFLIST = REPO / "contrib" / "cni" / "10-pycrio-bridge.conflist"


@pytest.fixture
def cni_conf_dir(tmp_path: Path) -> Path:
    conf = tmp_path / "net.d"
    conf.mkdir()
    (conf / DEFAULT_CONFLIST.name).write_text(DEFAULT_CONFLIST.read_text())
    return conf


@pytest.fixture
def daemon(tmp_path: Path, cni_conf_dir: Path) -> Iterator[Daemon]:
    running = Daemon(tmp_path / "pycrio", [f'network.cni_conf_dir="{cni_conf_dir}"']).start()
    yield running
    running.stop()
