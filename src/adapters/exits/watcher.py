"""Notices container exits the moment conmon records them, so a STOPPED event goes out promptly.

conmon writes `<exit dir>/<container id>` when the container's process ends, whoever caused it. An inotify
watch on that directory (IN_CLOSE_WRITE for a file written in place, IN_MOVED_TO for one renamed in) calls
`on_exit(container_id)` from one background thread, instead of polling the directory. The thread sleeps in
poll(2) on the watch and a stop `Wakeup` with no timeout: an idle daemon does not wake it.
"""

import ctypes
import os
import struct
from collections.abc import Callable
from pathlib import Path

import structlog

from adapters.readiness import Wakeup, WatchThread, readable

_log = structlog.get_logger("pycrio.exits")
_libc = ctypes.CDLL(None, use_errno=True)
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_Q_OVERFLOW = 0x00004000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then the name, NUL padded)


class ExitFileWatcher:
    def __init__(self, directory: Path, on_exit: Callable[[str], None]) -> None:
        self._directory = directory
        self._on_exit = on_exit
        self._thread = WatchThread("exit-watcher", self._loop)
        self._fd = -1

    def start(self) -> None:
        if self._thread.running:
            return
        self._directory.mkdir(parents=True, exist_ok=True)
        fd = _libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if _libc.inotify_add_watch(fd, os.fsencode(self._directory), _IN_CLOSE_WRITE | _IN_MOVED_TO) < 0:
            code = ctypes.get_errno()
            os.close(fd)
            raise OSError(code, f"inotify_add_watch {self._directory} failed")
        self._fd = fd
        self._thread.start()

    def stop(self) -> None:
        if not self._thread.stop():
            _log.warning("exit watcher did not stop in time; its inotify descriptor is left open")
            return
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _loop(self, stop: Wakeup) -> None:
        while True:
            if stop.fileno() in readable([self._fd, stop]):
                return
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                continue
            for name in _names(data):
                if name is None:
                    _log.warning("exit watch overflowed; exits will be noticed on the next status call")
                    continue
                try:
                    self._on_exit(name)
                except Exception:  # one bad exit must not end the watch
                    _log.exception("handling a container exit failed", container=name)


def _names(data: bytes) -> list[str | None]:
    """The file names in a buffer of inotify events; None marks a queue overflow."""
    names: list[str | None] = []
    offset = 0
    while offset + _EVENT.size <= len(data):
        _, mask, _, length = _EVENT.unpack_from(data, offset)
        raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
        offset += _EVENT.size + length
        if mask & _IN_Q_OVERFLOW:
            names.append(None)
            continue
        name = raw.split(b"\0", 1)[0].decode(errors="replace")
        if name and not name.startswith("."):
            names.append(name)
    return names
