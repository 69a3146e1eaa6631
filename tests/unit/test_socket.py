"""Binding the CRI socket: stale sockets are replaced, live ones and other files refused."""

import os
import socket
import stat
from pathlib import Path

import pytest

from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from adapters.host.unix_sockets import SocketInUse, prepare_socket_path


def test_parent_dir_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "cri.sock"
    prepare_socket_path(path)
    assert path.parent.is_dir()


def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "cri.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens
    prepare_socket_path(path)
    assert not path.exists()


def test_live_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cri.sock"
    live = socket.socket(socket.AF_UNIX)
    live.bind(str(path))
    live.listen()
    try:
        with pytest.raises(SocketInUse, match="in use"):
            prepare_socket_path(path)
        assert path.exists()
    finally:
        live.close()


def test_regular_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cri.sock"
    path.write_text("precious")
    with pytest.raises(SocketInUse, match="not a socket"):
        prepare_socket_path(path)
    assert path.read_text() == "precious"


def test_socket_mode_and_removal_on_stop(tmp_path: Path) -> None:
    path = tmp_path / "cri.sock"
    server = CriServer(path, 0o660, runtime_service([]), image_service([]), 2)
    server.start()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    server.stop(1)
    assert not path.exists()
