"""Binding a unix socket another process may be serving: a stale socket (its server died) is replaced, a
live one is refused, never unlinked. Unlinking a live socket steals it: the CRI endpoint of another daemon,
or the NRI socket containerd and cri-o serve at the same default path.
"""

import errno
import socket
import stat
from pathlib import Path

import structlog

_log = structlog.get_logger("pycrio.sockets")


class SocketInUse(Exception):
    """Another process serves on the socket path."""


def prepare_socket_path(path: Path, key: str = "grpc.listen") -> None:
    """Create the parent dir; replace a stale socket, refuse a live one or a non-socket file (`key` is the
    setting that names the path, for the message)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise SocketInUse(f"{path} exists and is not a socket; remove it or choose another {key}")
    if is_served(path):
        raise SocketInUse(
            f"{path} is in use by a running process (another pycrio or runtime); choose another {key}"
        )
    path.unlink(missing_ok=True)  # stale: left behind by a daemon that died
    _log.info("removed stale socket", path=str(path))


def is_served(path: Path) -> bool:
    """Whether a process accepts connections on the unix socket at `path` (False: absent, or stale);
    SocketInUse when that cannot be told."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(2)
        probe.connect(str(path))
        return True
    except OSError as err:
        if err.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise SocketInUse(f"{path}: cannot tell whether it is in use: {err.strerror}") from err
    finally:
        probe.close()
