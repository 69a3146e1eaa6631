"""The single mapping from pycrio's error vocabulary to gRPC status codes."""

import grpc

from adapters.host.no_space import is_no_space
from domain import errors

_CODES: list[tuple[type[Exception], grpc.StatusCode]] = [
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.Cancelled, grpc.StatusCode.CANCELLED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Internal, grpc.StatusCode.INTERNAL),
    (errors.NotSupported, grpc.StatusCode.UNIMPLEMENTED),
    (NotImplementedError, grpc.StatusCode.UNIMPLEMENTED),
]


def status_code_for(error: BaseException) -> grpc.StatusCode:
    """The code the client sees; anything unforeseen is INTERNAL. UNKNOWN only for the failures the kubelet
    recognises by their message's first word, which it reads from UNKNOWN answers alone."""
    if isinstance(error, errors.KubeletNamed):
        return grpc.StatusCode.UNKNOWN
    if is_no_space(error):  # an adapter that did not name what was full: the file is named below
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    for error_class, code in _CODES:
        if isinstance(error, error_class):
            return code
    return grpc.StatusCode.INTERNAL


# A status message travels in a trailer that clients cap (8 KiB by default in grpc) after percent-encoding,
# which triples every byte outside printable ASCII: 2 KiB of UTF-8 always fits.
MAX_MESSAGE_BYTES = 2048


def status_message_for(error: BaseException) -> str:
    if isinstance(error, NotImplementedError):
        return "not implemented by pycrio yet"
    if isinstance(error, errors.PycrioError):
        return bounded(str(error))
    if is_no_space(error):
        where = error.filename if error.filename is not None else "a file system of the node"
        return bounded(f"no space left: {where}: {error.strerror}")
    return bounded(f"internal error: {type(error).__name__}: {error}")


def bounded(text: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """`text` cut to `limit` UTF-8 bytes, saying how much was left off: messages quote requests, and a
    request may hold a 10 MB id."""
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")
    return f"{kept}... ({len(data) - len(kept.encode())} more bytes)"
