"""Exec, Attach and PortForward requests and the single-use tokens that name them in streaming URLs.

The CRI answers Exec/Attach/PortForward with a URL; the kubelet (or crictl) then opens that URL to stream.
The URL carries a random token that names the validated request, may be used once, and expires unused
after a TTL, the way the kubelet's own streaming request cache works.
"""

import base64
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from domain.errors import InvalidArgument, ResourceExhausted
from ports.streaming_targets import StreamTargets

# The kubelet's cache holds at most this many unused tokens; more means a client is leaking requests.
MAX_IN_FLIGHT = 1000
_TOKEN_BYTES = 8


@dataclass(frozen=True)
class ExecRequest:
    container_id: str
    cmd: tuple[str, ...]
    tty: bool = False
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False


@dataclass(frozen=True)
class AttachRequest:
    container_id: str
    tty: bool = False
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False


@dataclass(frozen=True)
class PortForwardRequest:
    sandbox_id: str
    ports: tuple[int, ...] = ()


StreamRequest = ExecRequest | AttachRequest | PortForwardRequest

# The URL path segment of each kind, as the kubelet names them.
URL_KIND: dict[type, str] = {ExecRequest: "exec", AttachRequest: "attach", PortForwardRequest: "portforward"}


def validate(request: StreamRequest) -> None:
    """The kubelet's rules: a target id; exec needs a command; at least one stream; no stderr with a tty
    (a terminal multiplexes stdout and stderr into one stream)."""
    if isinstance(request, PortForwardRequest):
        if not request.sandbox_id:
            raise InvalidArgument("missing required pod_sandbox_id")
        for port in request.ports:
            if not 0 < port <= 65535:
                raise InvalidArgument(f"port {port} is not a valid port number")
        return
    if not request.container_id:
        raise InvalidArgument("missing required container_id")
    if isinstance(request, ExecRequest) and not request.cmd:
        raise InvalidArgument("exec command cannot be empty")
    if request.tty and request.stderr:
        raise InvalidArgument("tty and stderr cannot both be true")
    if not (request.stdin or request.stdout or request.stderr):
        raise InvalidArgument("one of stdin, stdout, or stderr must be set")


def new_token() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(_TOKEN_BYTES)).decode().rstrip("=")


class RequestCache:
    """Validated requests by token: `insert` hands out a token, `consume` returns the request once.

    Tokens expire `ttl` seconds after insertion; expired entries are dropped lazily on every call.
    """

    def __init__(
        self,
        ttl: float,
        clock: Callable[[], float],
        max_in_flight: int = MAX_IN_FLIGHT,
        token_factory: Callable[[], str] = new_token,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max = max_in_flight
        self._new_token = token_factory
        self._lock = threading.Lock()
        # Insertion order is expiry order, so expired entries are always at the front.
        self._entries: OrderedDict[str, tuple[float, StreamRequest]] = OrderedDict()

    def insert(self, request: StreamRequest) -> str:
        with self._lock:
            self._evict_expired()
            if len(self._entries) >= self._max:
                raise ResourceExhausted("maximum number of in-flight streaming requests exceeded")
            token = self._new_token()
            while token in self._entries:
                token = self._new_token()
            self._entries[token] = (self._clock() + self._ttl, request)
            return token

    def consume(self, token: str) -> StreamRequest | None:
        with self._lock:
            self._evict_expired()
            entry = self._entries.pop(token, None)
        return entry[1] if entry is not None else None

    def __len__(self) -> int:
        with self._lock:
            self._evict_expired()
            return len(self._entries)

    def _evict_expired(self) -> None:
        now = self._clock()
        while self._entries:
            token, (deadline, _) = next(iter(self._entries.items()))
            if deadline > now:
                break
            del self._entries[token]


class StreamingService:
    """Validates a streaming request, checks that its target exists, and returns the URL to stream it."""

    def __init__(self, cache: RequestCache, targets: StreamTargets, base_url: Callable[[], str]) -> None:
        self._cache = cache
        self._targets = targets
        self._base_url = base_url

    def url_for(self, request: StreamRequest) -> str:
        validate(request)
        if isinstance(request, PortForwardRequest):
            self._targets.sandbox_netns(request.sandbox_id)
        else:
            self._targets.container(request.container_id)
        token = self._cache.insert(request)
        return f"{self._base_url().rstrip('/')}/{URL_KIND[type(request)]}/{token}"
