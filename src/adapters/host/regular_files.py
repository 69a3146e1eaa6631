"""Reading a file a request names (a seccomp profile) or an image carries (/etc/passwd) without trusting it.

A plain open() of a FIFO blocks until a writer comes, which may be never; /dev/zero or a huge file fills
memory. The file is opened with O_NONBLOCK (a FIFO then opens at once), checked to be a regular file on
the open descriptor (no race with a rename), and read only up to a size cap.
"""

import os
import stat

from adapters.host.os_errors import is_node_fault
from domain.errors import InvalidArgument


def read_regular_file(path: str, limit: int, follow_symlinks: bool = True) -> bytes | None:
    """The contents of the regular file at `path`, None when there is none; InvalidArgument when it is
    something else (FIFO, device, socket, directory) or larger than `limit` bytes."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        raise InvalidArgument(f"{path}: a directory, not a regular file") from None
    except OSError as err:
        if is_node_fault(err):  # the node's trouble (no descriptor left ...), not the file's
            raise
        raise InvalidArgument(f"{path}: cannot be read: {err.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidArgument(f"{path}: not a regular file")
        if info.st_size > limit:
            raise InvalidArgument(f"{path}: {info.st_size} bytes, more than the {limit} allowed")
        chunks = []
        size = 0
        while chunk := os.read(fd, min(65536, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew since fstat
                raise InvalidArgument(f"{path}: more than the {limit} bytes allowed")
        return b"".join(chunks)
    finally:
        os.close(fd)
