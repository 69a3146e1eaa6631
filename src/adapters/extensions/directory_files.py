"""Configuration files dropped into directories (CDI specs, OCI hooks), parsed once per version of a file.

Read at every container create that needs them, so a file added, changed or removed is seen at once without
a watcher; a file whose mtime and size are unchanged is not parsed again (nor logged again when broken).
Each file is capped in size.
"""

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

from domain.errors import InvalidArgument

T = TypeVar("T")
_log = structlog.get_logger("pycrio.extensions")
MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class DirectoryFile(Generic[T]):
    index: int  # of the directory in the configured list
    name: str
    path: str
    parsed: T | None
    error: str = ""


class ParsedDirectories(Generic[T]):
    def __init__(
        self, directories: Sequence[str], suffixes: tuple[str, ...], parse: Callable[[str, bytes, int], T]
    ) -> None:
        self._directories = list(directories)
        self._suffixes = suffixes
        self._parse = parse
        self._cache: dict[str, tuple[tuple[int, int], DirectoryFile[T]]] = {}
        self._lock = threading.Lock()

    def read(self) -> list[DirectoryFile[T]]:
        """Every matching regular file of every directory, in directory order, then name order."""
        found: list[DirectoryFile[T]] = []
        seen: set[str] = set()
        for index, directory in enumerate(self._directories):
            try:
                names = sorted(os.listdir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as err:
                found.append(DirectoryFile(index, "", directory, None, f"cannot list: {err.strerror}"))
                continue
            for name in names:
                if not name.endswith(self._suffixes):
                    continue
                path = os.path.join(directory, name)
                entry = self._read_file(index, name, path)
                if entry is not None:
                    seen.add(path)
                    found.append(entry)
        with self._lock:
            for stale in set(self._cache) - seen:
                del self._cache[stale]
        return found

    def _read_file(self, index: int, name: str, path: str) -> DirectoryFile[T] | None:
        try:
            info = os.stat(path)
        except OSError:
            return None  # removed while listing
        if not os.path.isfile(path):
            return None
        version = (info.st_mtime_ns, info.st_size)
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached[0] == version and cached[1].index == index:
            return cached[1]
        if info.st_size > MAX_FILE_BYTES:
            too_big = f"larger than {MAX_FILE_BYTES} bytes"
            entry: DirectoryFile[T] = DirectoryFile(index, name, path, None, too_big)
        else:
            try:
                with open(path, "rb") as handle:
                    data = handle.read(MAX_FILE_BYTES + 1)
                entry = DirectoryFile(index, name, path, self._parse(path, data, index))
            except OSError as err:
                entry = DirectoryFile(index, name, path, None, f"cannot read: {err.strerror}")
            except InvalidArgument as err:
                entry = DirectoryFile(index, name, path, None, str(err))
        if entry.error:
            _log.warning("file not used", path=path, error=entry.error)  # once per version of the file
        with self._lock:
            self._cache[path] = (version, entry)
        return entry
