"""A StateStore on the local file system that survives crashes mid-write.

Each document is one JSON file, `<root>/<kind>/<id>.json`, replaced by write-temp, fsync, rename, fsync of
the directory: readers never see a torn file and a power loss keeps either the old or the new version.
A write that fails (a full disk) removes its temp file and leaves the old version in place.

A record that is not JSON at start-up (a disk error, a hand edit) is moved aside to `<id>.json.corrupt`
with an error line, and the rest are served: one bad file must not keep the daemon from starting.
"""

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from adapters.host.os_errors import node_fault_named
from adapters.host.regular_files import read_regular_file
from domain.errors import Internal, InvalidArgument
from domain.names import check_plain_name
from ports.state_store import Document

_log = structlog.get_logger("pycrio.state")
QUARANTINE_SUFFIX = ".corrupt"
# A record holds a request and an OCI spec (kilobytes); the cap keeps what is not a record (a link to a
# device, a runaway file) from filling memory.
MAX_RECORD_BYTES = 64 << 20


class AtomicFileStateStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _dir(self, kind: str) -> Path:
        return self._root / check_plain_name("state kind", kind)

    def _path(self, kind: str, key: str) -> Path:
        return self._dir(kind) / f"{check_plain_name('state id', key)}.json"

    def put(self, kind: str, key: str, document: Mapping[str, Any]) -> None:
        path = self._path(kind, key)
        data = json.dumps(document, sort_keys=True).encode()
        what = f"to record {kind} {key} in {path.parent}"
        with node_fault_named(what):
            if not path.parent.is_dir():
                # Records hold requests (environments, auth): root's alone, as the files mkstemp makes (0600).
                self._root.mkdir(parents=True, exist_ok=True, mode=0o700)
                path.parent.mkdir(exist_ok=True, mode=0o700)
            self._replace(path, data)

    @staticmethod
    def _replace(path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.replace(tmp, path)
            except IsADirectoryError:  # a directory someone put in the record's place: set aside, as at start
                _quarantine(path, "a directory in the record's place")
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)

    def get(self, kind: str, key: str) -> Document | None:
        path = self._path(kind, key)
        raw = _read_record(path)
        return None if raw is None else _decode(path, raw)

    def delete(self, kind: str, key: str) -> None:
        path = self._path(kind, key)
        with node_fault_named(f"to remove {kind} {key} from {path.parent}"):
            try:
                path.unlink()
            except FileNotFoundError:
                return
            except IsADirectoryError:  # not the record: set aside, so that the record's removal is done
                _quarantine(path, "a directory in the record's place")
            _fsync_dir(path.parent)

    def list(self, kind: str) -> dict[str, Document]:
        directory = self._dir(kind)
        found: dict[str, Document] = {}
        if not directory.is_dir():
            return found
        for path in sorted(directory.glob("*.json")):
            if path.name.startswith("."):
                continue  # a temp file left by a crash
            try:
                raw = _read_record(path)
                if raw is None:
                    continue  # deleted while we listed
                found[path.stem] = _decode(path, raw)
            except Internal as err:
                _quarantine(path, str(err))
        return found


def _read_record(path: Path) -> bytes | None:
    """A record's bytes, None when there is none. Something else in its place (a directory, a symlink, a
    FIFO, a device, a file past MAX_RECORD_BYTES) is Internal, so a list moves it aside: before, a directory
    stopped the daemon's start with IsADirectoryError, and a FIFO or a link to /dev/zero hung or filled it."""
    try:
        return read_regular_file(str(path), MAX_RECORD_BYTES, follow_symlinks=False)
    except InvalidArgument as err:
        raise Internal(f"state file {path} is not a record: {err}") from None


def _decode(path: Path, raw: bytes) -> Document:
    try:
        value = json.loads(raw)
    except ValueError as err:
        raise Internal(f"state file {path} is corrupt: {err}") from err
    if not isinstance(value, dict):
        raise Internal(f"state file {path} does not hold an object")
    return value


def _quarantine(path: Path, reason: str) -> None:
    """Move an unreadable record aside (kept for whoever investigates) so later starts skip it."""
    aside = path.with_name(path.name + QUARANTINE_SUFFIX)
    try:
        os.replace(path, aside)
    except OSError as err:
        _log.error("unreadable state record skipped; it could not be moved aside", path=str(path),
                   reason=reason, error=str(err))  # fmt: skip
        return
    _log.error("unreadable state record moved aside", path=str(path), moved_to=str(aside), reason=reason)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
