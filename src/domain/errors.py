"""The one error vocabulary of pycrio.

Domain services and adapters raise these; the CRI interceptor maps each class to one gRPC status code, so
handlers never pick codes themselves and nothing escapes as UNKNOWN by accident (`KubeletNamed` errors are
UNKNOWN on purpose).
"""


class PycrioError(Exception):
    """Base of every error the runtime reports on purpose."""


class NotFound(PycrioError):
    """The object named by the request does not exist."""


class AlreadyExists(PycrioError):
    """A name or id is already taken (e.g. a reserved sandbox or container name)."""


class InvalidArgument(PycrioError):
    """The request itself is wrong; retrying it unchanged cannot succeed."""


class FailedPrecondition(PycrioError):
    """The request is valid but the object is in the wrong state for it."""


class DeadlineExceeded(PycrioError):
    """An operation ran past its deadline (a subprocess, a stalled pull, an exec timeout)."""


class Cancelled(PycrioError):
    """The client went away (cancelled its call): the work it asked for was stopped."""


class Unavailable(PycrioError):
    """A dependency (registry, plugin, runtime) could not be reached; a retry may succeed."""


class ResourceExhausted(PycrioError):
    """A limit was hit (address pool, output cap)."""


class Internal(PycrioError):
    """A failure of pycrio or of a host component, with the component's own message."""


class NotSupported(PycrioError):
    """An optional feature pycrio does not offer (checkpoint/restore). Answered UNIMPLEMENTED with cri-o's
    text for it, so that clients which match that text (the kubelet's checkpoint e2e) recognise ours."""


class KubeletNamed(PycrioError):
    """A failure the kubelet tells apart by the word its message starts with (cri-api's errors package) and
    shows as the container's waiting reason instead of ErrImagePull. The kubelet compares that word only
    after stripping an UNKNOWN status down to its message, so these are answered UNKNOWN, as cri-o's (plain
    Go errors) are; every message starts with `word`."""

    word = ""

    def __init__(self, message: str) -> None:
        super().__init__(message if message.startswith(self.word) else f"{self.word}: {message}")


class SignatureValidationFailed(FailedPrecondition, KubeletNamed):
    """The signature policy refuses an image (cri-api's ErrSignatureValidationFailed)."""

    word = "SignatureValidationFailed"


class RegistryUnavailable(Unavailable, KubeletNamed):
    """No source of an image could be reached (cri-api's ErrRegistryUnavailable)."""

    word = "RegistryUnavailable"
