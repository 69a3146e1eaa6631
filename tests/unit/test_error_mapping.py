"""Each pycrio error class reaches the client as one gRPC code; nothing becomes UNKNOWN by accident."""

import errno
import os

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
        (errors.RegistryUnavailable("x"), grpc.StatusCode.UNKNOWN),
        (errors.SignatureValidationFailed("x"), grpc.StatusCode.UNKNOWN),
        (KeyError("surprise"), grpc.StatusCode.INTERNAL),
        (ZeroDivisionError(), grpc.StatusCode.INTERNAL),
    ],
)
def test_code(error: BaseException, code: grpc.StatusCode) -> None:
    assert status_code_for(error) == code


def test_domain_messages_pass_through_and_others_name_the_type() -> None:
    assert status_message_for(errors.NotFound("pod sandbox abc not found")) == "pod sandbox abc not found"
    assert status_message_for(KeyError("k")) == "internal error: KeyError: 'k'"


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_file_system_is_resource_exhausted_naming_the_path(number: int) -> None:
    error = OSError(number, os.strerror(number), "/var/lib/pycrio/state/pods/.tmp-x.json")
    assert status_code_for(error) == grpc.StatusCode.RESOURCE_EXHAUSTED
    message = status_message_for(error)
    assert message.startswith("no space left: /var/lib/pycrio/state/pods/.tmp-x.json: ")
    assert os.strerror(number) in message


@pytest.mark.parametrize(
    ("number", "code", "words"),
    [
        (errno.EMFILE, grpc.StatusCode.RESOURCE_EXHAUSTED, "out of file descriptors"),
        (errno.ENFILE, grpc.StatusCode.RESOURCE_EXHAUSTED, "the node is out of file descriptors"),
        (errno.ENOMEM, grpc.StatusCode.RESOURCE_EXHAUSTED, "out of memory"),
        (errno.EROFS, grpc.StatusCode.FAILED_PRECONDITION, "read-only file system"),
        (errno.EIO, grpc.StatusCode.UNAVAILABLE, "I/O error"),
    ],
)
def test_the_nodes_troubles_say_what_and_where(number: int, code: grpc.StatusCode, words: str) -> None:
    """Not INTERNAL: the node ran out of something or its storage failed, and the file is named."""
    error = OSError(number, os.strerror(number), "/var/lib/pycrio/state/pods/p.json")
    assert status_code_for(error) == code
    assert status_message_for(error) == f"{words}: /var/lib/pycrio/state/pods/p.json: {os.strerror(number)}"


def test_other_os_errors_stay_internal() -> None:
    assert status_code_for(OSError(errno.EBADF, "Bad file descriptor", "/x")) == grpc.StatusCode.INTERNAL


@pytest.mark.parametrize(
    ("error", "word"),
    [
        (errors.RegistryUnavailable("pulling image 'r.test/a:1': r.test: refused"), "RegistryUnavailable: "),
        (
            errors.SignatureValidationFailed("SignatureValidationFailed: r.test/a:1"),
            "SignatureValidationFailed: ",
        ),
    ],
)
def test_kubelet_named_errors_start_with_the_word_it_matches(error: BaseException, word: str) -> None:
    """The kubelet strips an UNKNOWN status down to its message and compares the start with cri-api's error
    texts (pkg/kubelet/images: evalCRIPullErr); the word appears once."""
    message = status_message_for(error)
    assert message.startswith(word)
    assert message.count(word.rstrip(": ")) == 1
