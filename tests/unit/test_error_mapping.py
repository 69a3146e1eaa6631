"""Each pycrio error class reaches the client as one gRPC code; nothing becomes UNKNOWN."""

import grpc
import pytest

from adapters.cri.errors import status_code_for, status_message_for
from domain import errors


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExists("x"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.InvalidArgument("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.DeadlineExceeded("x"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (errors.Cancelled("x"), grpc.StatusCode.CANCELLED),
        (errors.Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (errors.ResourceExhausted("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.Internal("x"), grpc.StatusCode.INTERNAL),
        (errors.NotSupported("x"), grpc.StatusCode.UNIMPLEMENTED),
        (NotImplementedError(), grpc.StatusCode.UNIMPLEMENTED),
        (KeyError("surprise"), grpc.StatusCode.INTERNAL),
        (ZeroDivisionError(), grpc.StatusCode.INTERNAL),
    ],
)
def test_code(error: BaseException, code: grpc.StatusCode) -> None:
    assert status_code_for(error) == code


def test_domain_messages_pass_through_and_others_name_the_type() -> None:
    assert status_message_for(errors.NotFound("pod sandbox abc not found")) == "pod sandbox abc not found"
    assert status_message_for(KeyError("k")) == "internal error: KeyError: 'k'"
