"""OS errors that describe the node rather than a bug: a full disk, no file descriptors left, a read-only
or failing file system. Whichever adapter's call hit one, the kubelet and the operator see a status that
says so and names the file (docs/faults.md), never INTERNAL with a Python traceback in the log.
"""

import contextlib
import errno
from collections.abc import Iterator

from adapters.host.no_space import NO_SPACE_ERRNOS, no_space_left
from domain.errors import FailedPrecondition, PycrioError, ResourceExhausted, Unavailable

_NODE_ERRNOS: dict[int, tuple[type[PycrioError], str]] = {
    **{code: (ResourceExhausted, "no space left") for code in NO_SPACE_ERRNOS},
    errno.EMFILE: (ResourceExhausted, "out of file descriptors"),
    errno.ENFILE: (ResourceExhausted, "the node is out of file descriptors"),
    errno.ENOMEM: (ResourceExhausted, "out of memory"),
    errno.EROFS: (FailedPrecondition, "read-only file system"),
    errno.EIO: (Unavailable, "I/O error"),
}


def is_node_fault(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in _NODE_ERRNOS


def node_error(error: BaseException) -> PycrioError | None:
    """The domain error an OS error about the node's state stands for, naming the file; None otherwise."""
    if not isinstance(error, OSError) or error.errno not in _NODE_ERRNOS:
        return None
    kind, words = _NODE_ERRNOS[error.errno]
    if error.filename is None:
        return kind(f"{words}: {error.strerror}")
    return kind(f"{words}: {error.filename}: {error.strerror}")


@contextlib.contextmanager
def node_fault_named(what: str) -> Iterator[None]:
    """An OS error about the node in the block becomes its domain error saying what could not be written
    (`what` reads on from "cannot write": "to record containers <id> in <dir>"); a full disk in
    no_space_left's words ("no space left to record ...")."""
    try:
        with no_space_left(what):
            yield
    except OSError as err:
        if err.errno not in _NODE_ERRNOS:
            raise
        kind, words = _NODE_ERRNOS[err.errno]
        raise kind(f"{words}: cannot write {what}: {err.strerror}") from None
