"""The one wrapper around every CRI handler: request id, structured logging, timing, error-to-status mapping.

Handlers stay thin: they raise pycrio errors and never pick status codes. Anything unforeseen is logged
with its traceback here and reaches the client as INTERNAL with a one-line message.

The kubelet's polls (_QUIET_METHODS) pass through here every second or so, so their successful path does
only what shows: the request id and object ids are bound to log lines only when debug lines are written
(or once the call fails), and each method's wrapped handler is made once, not per call.
"""

import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Any, TypeVar

import grpc
import structlog

from adapters.cri.errors import bounded, known, status_code_for, status_message_for
from adapters.cri.list_answers import pass_encoded
from adapters.cri.request_decoding import Undecodable, tolerant
from adapters.cri.request_fields import check_request_fields
from adapters.tracing.spans import annotate, span
from adapters.tracing.spans import installed as tracing_on
from domain.errors import InvalidArgument, PycrioError, ResourceExhausted
from ports.metrics import RpcObserver

_log = structlog.get_logger("pycrio.cri")
_std_log = logging.getLogger(
    "pycrio.cri"
)  # the level check structlog's filter makes, without building an event
_T = TypeVar("_T")

# Polled every second or so by the kubelet: log these at debug level only.
_QUIET_METHODS = frozenset(
    {
        "Version",
        "Status",
        "ListPodSandbox",
        "StreamPodSandboxes",
        "ListContainers",
        "StreamContainers",
        "ListImages",
        "ImageFsInfo",
        "ListContainerStats",
        "ListPodSandboxStats",
        "PodSandboxStatus",
        "ContainerStatus",
        "ImageStatus",
        "ListPodSandboxMetrics",
        "ListMetricDescriptors",
    }
)


# The kubelet's polls that answer from memory and never wait on another call (a status takes no lock a long
# operation holds: domain/containers.py `status`, `list_containers`). They run on a pool of their own
# (CriServer), so calls that wait cannot starve them. Stats and ImageFsInfo read the disk and stay on the
# main pool.
POLL_METHODS = frozenset(
    {
        "Version",
        "Status",
        "RuntimeConfig",
        "ListPodSandbox",
        "PodSandboxStatus",
        "ListContainers",
        "ContainerStatus",
        "ListImages",
        "ImageStatus",
        "ListMetricDescriptors",
    }
)


class CallWrapper:
    """Wraps each CRI method's handler once, as the services are added to the server (CriServer), rather than
    as a grpc.ServerInterceptor: grpcio runs an interceptor's pipeline on every call, which cost 10-18 us
    of CPU per call here for a look-up whose answer never changes."""

    def __init__(
        self,
        observers: Sequence[RpcObserver] = (),
        max_streams: int = 64,
        poll_pool: futures.ThreadPoolExecutor | None = None,
    ) -> None:
        # Told how every call ended (metrics), so that handlers carry no metrics code.
        self._observers = tuple(observers)
        self._streams = _StreamSlots(max_streams)
        self._poll_pool = poll_pool

    def wrap(self, handler: Any, method: str) -> Any:
        """`handler` of `method` ("/runtime.v1.RuntimeService/Version") with ids, logs, timing, statuses."""
        return self._wrap(handler, method)

    def _wrap(self, handler: Any, method: str) -> Any:
        short = method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            behaviour = _wrap_unary(handler.unary_unary, method, short, self._observers)
            if self._poll_pool is not None and short in POLL_METHODS:
                # grpcio runs a behaviour on the executor it carries as `experimental_thread_pool`.
                behaviour.experimental_thread_pool = self._poll_pool  # type: ignore[attr-defined]
            return grpc.unary_unary_rpc_method_handler(
                behaviour,
                request_deserializer=tolerant(handler.request_deserializer),
                response_serializer=pass_encoded(handler.response_serializer),
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method, short, self._observers, self._streams),
                request_deserializer=tolerant(handler.request_deserializer),
                response_serializer=pass_encoded(handler.response_serializer),
            )
        return handler


def _wrap_unary(
    behaviour: Callable[[Any, Any], Any], method: str, short: str, observers: tuple[RpcObserver, ...]
) -> Callable[[Any, Any], Any]:
    def run(request: Any, context: grpc.ServicerContext) -> Any:
        with _Call(method, short, context, observers, request, traced=True) as call:
            call.guard(lambda: check_decoded(request))
            return call.guard(lambda: behaviour(request, context))

    return run


def _wrap_stream(
    behaviour: Callable[[Any, Any], Iterator[Any]],
    method: str,
    short: str,
    observers: tuple[RpcObserver, ...],
    slots: "_StreamSlots",
) -> Callable[[Any, Any], Iterator[Any]]:
    def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with _Call(method, short, context, observers, request) as call:
            call.guard(lambda: check_decoded(request))
            call.guard(slots.take)
            try:
                responses = call.guard(lambda: behaviour(request, context))
                while True:
                    item = call.guard(lambda: next(responses, _END))
                    if item is _END:
                        return
                    yield item
            finally:
                slots.give_back()

    return run


_END = object()


def check_decoded(request: Any) -> None:
    """A request that parsed, with every string and enum field acceptable; else InvalidArgument."""
    if type(request) is Undecodable:
        raise InvalidArgument(request.reason)
    check_request_fields(request)


class _StreamSlots:
    """At most `limit` server-streaming RPCs at once: each holds a server thread while it is open."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._free = threading.BoundedSemaphore(limit)

    def take(self) -> None:
        if not self._free.acquire(blocking=False):
            raise ResourceExhausted(
                f"{self._limit} streams are open already, the most allowed (config key grpc.max_streams)"
            )

    def give_back(self) -> None:
        self._free.release()


# Request ids: unique within this daemon's life (a counter), and across restarts (a random prefix). Cheaper
# than a uuid4 per call, which reads the kernel's random pool.
_ID_PREFIX = secrets.token_hex(3)
_ID_COUNTER = itertools.count(1)


def _request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFF:06x}"


class _Call:
    """One RPC: binds a request id to every log line it causes and reports how it ended. A quiet method's
    ids are bound only while debug lines are written, or from the moment it fails."""

    def __init__(
        self,
        method: str,
        short: str,
        context: grpc.ServicerContext,
        observers: tuple[RpcObserver, ...],
        request: Any = None,
        traced: bool = False,
    ) -> None:
        # Unary calls only: a stream's span would stay current across its yields into grpc's own code. With
        # tracing off, no span and none of its attributes (the ids, a request id) are made.
        self._span = span(f"cri.{short}", **{"rpc.method": short}) if traced and tracing_on() else None
        self._observers = observers
        self._request = request
        self._ids: dict[str, str] | None = None
        self._method = method
        self._short = short
        self._quiet = short in _QUIET_METHODS
        self._context = context
        self._request_id = ""
        self._bound = False
        self._start = 0.0
        self._code = grpc.StatusCode.OK

    def __enter__(self) -> "_Call":
        self._start = time.monotonic()
        if self._span is not None:
            self._span.__enter__()
            self._bind_ids()
            annotate(**{"pycrio.request_id": self._request_id}, **(self._ids or {}))
        if not self._quiet or _std_log.isEnabledFor(logging.DEBUG):
            self._bind()
        return self

    def _bind_ids(self) -> None:
        if self._ids is None:
            self._ids = object_ids(self._request)
            self._request_id = _request_id()

    def _bind(self) -> None:
        """Bind the call's ids to every log line from here on (once)."""
        if self._bound:
            return
        self._bind_ids()
        self._bound = True
        structlog.contextvars.bind_contextvars(
            request_id=self._request_id, method=self._short, **(self._ids or {})
        )

    def __exit__(self, *exc: object) -> None:
        elapsed = time.monotonic() - self._start
        if exc[0] is GeneratorExit and self._code == grpc.StatusCode.OK:
            self._code = grpc.StatusCode.CANCELLED  # a stream the client went away from
        level = logging.DEBUG if self._quiet and self._code == grpc.StatusCode.OK else logging.INFO
        if _std_log.isEnabledFor(level):
            self._bind()
            _log.log(level, "rpc", code=self._code.name, ms=round(elapsed * 1000, 2))
        for observer in self._observers:
            try:
                observer.rpc_finished(self._short, self._code.name, elapsed)
            except Exception:  # metrics must never fail a call
                _log.exception("rpc observer failed")
        if self._bound:
            structlog.contextvars.unbind_contextvars("request_id", "method", *(self._ids or {}))
        if self._span is not None:
            failed = self._code != grpc.StatusCode.OK
            annotate(self._code.name if failed else "", **{"rpc.grpc.status_code": self._code.value[0]})
            self._span.__exit__(None, None, None)

    def guard(self, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except Exception as error:
            if _is_abort(error, self._context):
                raise
            self._code = status_code_for(error)
            self._bind()  # a quiet call's failure is logged with its ids
            named = known(error)
            if isinstance(named, PycrioError | NotImplementedError):
                _log.info("rpc failed", code=self._code.name, error=bounded(str(named)))
            else:
                _log.exception("rpc crashed", code=self._code.name)
            self._context.abort(self._code, status_message_for(error))
            raise  # unreachable: abort raises


# Log keys for the request fields that name the object an RPC is about, and the path to each field.
_ID_PATHS = (
    ("pod_sandbox_id", ("pod_sandbox_id",)),
    ("container_id", ("container_id",)),
    ("image", ("image", "image")),
    ("name", ("config", "metadata", "name")),
    ("namespace", ("config", "metadata", "namespace")),
)
# Per request type, the paths its messages have (looked up in the descriptors once per type).
_PATHS_BY_TYPE: dict[type, tuple[tuple[str, tuple[str, ...]], ...]] = {}


def object_ids(request: Any) -> dict[str, str]:
    """The ids of the pod, container, image or pod name a request is about (empty fields left out)."""
    paths = _PATHS_BY_TYPE.get(type(request))
    if paths is None:
        descriptor = getattr(request, "DESCRIPTOR", None)
        paths = tuple(entry for entry in _ID_PATHS if _has_string_path(descriptor, entry[1]))
        _PATHS_BY_TYPE[type(request)] = paths
    ids = {}
    for key, path in paths:
        value = request
        for name in path:
            value = getattr(value, name)
        if value:
            ids[key] = value
    return ids


def _has_string_path(descriptor: Any, path: tuple[str, ...]) -> bool:
    """Whether following `path` through the message's fields ends at a string field."""
    for index, name in enumerate(path):
        field = descriptor.fields_by_name.get(name) if descriptor is not None else None
        if field is None or field.is_repeated:
            return False
        if index == len(path) - 1:
            return bool(field.type == field.TYPE_STRING)
        descriptor = field.message_type
    return False


def _is_abort(error: Exception, context: grpc.ServicerContext) -> bool:
    """True for the exception grpc raises from context.abort (already carrying a status)."""
    state = getattr(context, "_state", None)
    return bool(state is not None and getattr(state, "aborted", False))
