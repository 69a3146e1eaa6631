"""The single mapping from pycrio's error vocabulary to gRPC status codes."""

import grpc

from domain import errors

_CODES: list[tuple[type[Exception], grpc.StatusCode]] = [
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Internal, grpc.StatusCode.INTERNAL),
    (errors.NotSupported, grpc.StatusCode.UNIMPLEMENTED),
    (NotImplementedError, grpc.StatusCode.UNIMPLEMENTED),
]


def status_code_for(error: BaseException) -> grpc.StatusCode:
    """The code the client sees; anything unforeseen is INTERNAL, never UNKNOWN."""
    for error_class, code in _CODES:
        if isinstance(error, error_class):
            return code
    return grpc.StatusCode.INTERNAL


def status_message_for(error: BaseException) -> str:
    if isinstance(error, NotImplementedError):
        return "not implemented by pycrio yet"
    if isinstance(error, errors.PycrioError):
        return str(error)
    return f"internal error: {type(error).__name__}: {error}"
