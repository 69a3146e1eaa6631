"""Make and open host paths named by requests without following symbolic links.

The kubelet's log directory and log paths are created and appended to as root, and the directories they
lie in may be writable from a container (a log collector with a hostPath mount of /var/log/pods). A symlink
planted there (`0.log -> /etc/shadow`, `logs -> /etc`) must not turn pycrio's or conmon's writes into writes
elsewhere. Every component is opened relative to its parent's descriptor with O_NOFOLLOW, so the path that
was checked is the path that is used: a symlink anywhere, or a component that is not a directory, is refused
with InvalidArgument.
"""

import contextlib
import errno
import os
import stat

from adapters.host.no_space import is_no_space
from domain.errors import InvalidArgument, ResourceExhausted

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def components(path: str) -> list[str]:
    """The names of an absolute, normal path: no '.', '..' or empty components, no NUL."""
    if not path.startswith("/") or "\0" in path:
        raise InvalidArgument(f"{path[:200]!r} is not an absolute path")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise InvalidArgument(f"{path[:200]!r} must not contain '.' or '..'")
    return parts


def make_directories(path: str, mode: int) -> list[str]:
    """Make the directory `path` and any missing parents (like mkdir -p), never through a symlink.

    Returns the directories it made, outermost first, so that exactly those can be removed later.
    """
    parts = components(path)
    created: list[str] = []
    fd = os.open("/", _DIRECTORY_FLAGS)
    current = ""
    for name in parts:
        current += "/" + name
        try:
            os.mkdir(name, mode, dir_fd=fd)
            created.append(current)
        except FileExistsError:
            pass
        except OSError as err:
            os.close(fd)
            raise _refused(current, err) from None
        fd = _descend(fd, name, current)  # closes fd, also when it raises
    os.close(fd)
    return created


def create_log_file(path: str, mode: int = 0o640) -> tuple[int, int]:
    """Make sure `path` is a regular file (created empty if missing, never truncated), its missing parent
    directories made, without following a symlink anywhere: what a log writer may then open by name.

    Returns the file's (st_dev, st_ino), so that the caller can tell later whether the writer that opened
    the name by itself got this very file (the name may have been swapped for a symlink meanwhile)."""
    parts = components(path)
    if not parts:
        raise InvalidArgument("'/' is not a file")
    parent = "/" + "/".join(parts[:-1])
    make_directories(parent, 0o755)
    fd = open_directory(parent)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            file_fd = os.open(parts[-1], flags, mode, dir_fd=fd)
        except OSError as err:
            raise _refused(path, err, fd, parts[-1]) from None
        try:
            info = os.fstat(file_fd)
            if not stat.S_ISREG(info.st_mode):
                raise InvalidArgument(f"log path {path[:200]!r} is not a regular file")
            return info.st_dev, info.st_ino
        finally:
            os.close(file_fd)
    finally:
        os.close(fd)


def file_identity(path: str) -> tuple[int, int]:
    """(st_dev, st_ino) of what is at `path` now, reached without following symlinks (of the link itself
    when the last component is one)."""
    parts = components(path)
    if not parts:
        raise InvalidArgument("'/' is not a file")
    fd = open_directory("/" + "/".join(parts[:-1]))
    try:
        info = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)
    return info.st_dev, info.st_ino


def open_directory(path: str) -> int:
    """A descriptor of the existing directory `path`, reached without following symlinks."""
    parts = components(path)
    fd = os.open("/", _DIRECTORY_FLAGS)
    current = ""
    for name in parts:
        current += "/" + name
        fd = _descend(fd, name, current)  # closes fd, also when it raises
    return fd


def remove_directories(created: list[str]) -> None:
    """Remove directories make_directories made: the innermost with what it holds, the others only when
    empty (another pod may have made a directory inside them since). Missing ones are skipped."""
    for index, path in enumerate(reversed(created)):
        parent, _, name = path.rpartition("/")
        try:
            fd = open_directory(parent or "/")
        except (InvalidArgument, FileNotFoundError):
            continue
        try:
            if index == 0:
                _remove_tree(fd, name)
            else:
                with contextlib.suppress(FileNotFoundError, OSError):
                    os.rmdir(name, dir_fd=fd)
        finally:
            os.close(fd)


def _remove_tree(parent_fd: int, name: str) -> None:
    """rm -r of `name` inside `parent_fd`, by descriptors: a symlink inside is removed, never followed."""
    try:
        fd = os.open(name, _DIRECTORY_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            os.unlink(name, dir_fd=parent_fd)  # replaced by a link or a file: only that goes
            return
        raise
    try:
        with os.scandir(fd) as listing:
            entries = list(listing)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _remove_tree(fd, entry.name)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(name, dir_fd=parent_fd)


def _descend(fd: int, name: str, path: str) -> int:
    """The descriptor of directory `name` inside `fd`; `fd` is closed either way."""
    try:
        return os.open(name, _DIRECTORY_FLAGS, dir_fd=fd)
    except OSError as err:
        raise _refused(path, err, fd, name) from None
    finally:
        os.close(fd)


def _refused(path: str, err: OSError, parent_fd: int = -1, name: str = "") -> Exception:
    shown = repr(path[:200])
    if err.errno == errno.ENOTDIR and parent_fd >= 0:
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.lstat(name, dir_fd=parent_fd).st_mode):
                err = OSError(errno.ELOOP, os.strerror(errno.ELOOP))
    if err.errno == errno.ELOOP:
        return InvalidArgument(f"{shown} is a symbolic link, which pycrio does not follow here")
    if err.errno == errno.ENOTDIR:
        return InvalidArgument(f"{shown} is not a directory")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ENXIO, errno.EINVAL):
        return InvalidArgument(f"{shown} cannot be used: {err.strerror}")
    if is_no_space(err):
        return ResourceExhausted(f"{shown} cannot be made: {err.strerror}")
    return err
