"""The single mapping from pycrio's error vocabulary to gRPC status codes."""

import grpc

from adapters.host.os_errors import node_error
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


def known(error: BaseException) -> BaseException:
    """`error`, or the domain error it stands for: an OS error about the node's state (a full disk, no file
    descriptors left, ...) that an adapter did not name itself."""
    return node_error(error) or error


def status_code_for(error: BaseException) -> grpc.StatusCode:
    """The code the client sees; anything unforeseen is INTERNAL. UNKNOWN only for the failures the kubelet
    recognises by their message's first word, which it reads from UNKNOWN answers alone."""
    error = known(error)
    if isinstance(error, errors.KubeletNamed):
        return grpc.StatusCode.UNKNOWN
    for error_class, code in _CODES:
        if isinstance(error, error_class):
            return code
    return grpc.StatusCode.INTERNAL


# A status message travels in a trailer that clients cap (8 KiB by default in grpc) after percent-encoding,
# which triples every byte outside printable ASCII: 2 KiB of UTF-8 always fits.
MAX_MESSAGE_BYTES = 2048


def status_message_for(error: BaseException) -> str:
    error = known(error)
    if isinstance(error, NotImplementedError):
        return "not implemented by pycrio yet"
    if isinstance(error, errors.PycrioError):
        return bounded(str(error))
    return bounded(f"internal error: {type(error).__name__}: {error}")


def bounded(text: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """`text` cut to `limit` UTF-8 bytes, saying how much was left off: messages quote requests, and a
    request may hold a 10 MB id."""
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")
    return f"{kept}... ({len(data) - len(kept.encode())} more bytes)"
