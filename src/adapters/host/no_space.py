"""A full (or over-quota) file system is the node's state, not a bug: the kubelet and the operator must see
RESOURCE_EXHAUSTED naming what did not fit, whichever adapter's write hit ENOSPC or EDQUOT (docs/faults.md).
"""

import contextlib
import errno
from collections.abc import Iterator
from typing import TypeGuard

from domain.errors import ResourceExhausted

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_no_space(error: BaseException) -> TypeGuard[OSError]:
    return isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS


@contextlib.contextmanager
def no_space_left(what: str) -> Iterator[None]:
    """ResourceExhausted "no space left `what`: <strerror>" in place of a full disk's error in the block
    (`what` reads on from there: "for the bundle of ...", "to record ...")."""
    try:
        yield
    except OSError as err:
        if not is_no_space(err):
            raise
        raise ResourceExhausted(f"no space left {what}: {err.strerror}") from None
