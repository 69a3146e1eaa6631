"""The one gRPC interceptor: request id, structured logging, timing, and error-to-status mapping.

Handlers stay thin: they raise pycrio errors and never pick status codes. Anything unforeseen is logged
with its traceback here and reaches the client as INTERNAL with a one-line message.
"""

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import grpc
import structlog

from adapters.cri.errors import bounded, status_code_for, status_message_for
from adapters.cri.list_answers import pass_encoded
from adapters.cri.request_strings import check_request_strings
from adapters.tracing.spans import annotate, span
from domain.errors import PycrioError, ResourceExhausted
from ports.metrics import RpcObserver

_log = structlog.get_logger("pycrio.cri")
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


class CriInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, observers: Sequence[RpcObserver] = (), max_streams: int = 64) -> None:
        # Told how every call ended (metrics), so that handlers carry no metrics code.
        self._observers = tuple(observers)
        self._streams = _StreamSlots(max_streams)

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        short = method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method, short, self._observers),
                request_deserializer=handler.request_deserializer,
                response_serializer=pass_encoded(handler.response_serializer),
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method, short, self._observers, self._streams),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _wrap_unary(
    behaviour: Callable[[Any, Any], Any], method: str, short: str, observers: tuple[RpcObserver, ...]
) -> Callable[[Any, Any], Any]:
    def run(request: Any, context: grpc.ServicerContext) -> Any:
        with _Call(method, short, context, observers, request, traced=True) as call:
            call.guard(lambda: check_request_strings(request))
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
            call.guard(lambda: check_request_strings(request))
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


class _Call:
    """One RPC: binds a request id to every log line it causes and reports how it ended."""

    def __init__(
        self,
        method: str,
        short: str,
        context: grpc.ServicerContext,
        observers: tuple[RpcObserver, ...],
        request: Any = None,
        traced: bool = False,
    ) -> None:
        # Unary calls only: a stream's span would stay current across its yields into grpc's own code.
        self._span = span(f"cri.{short}", **{"rpc.method": short}) if traced else None
        self._observers = observers
        self._ids = object_ids(request)
        self._method = method
        self._short = short
        self._context = context
        self._request_id = uuid.uuid4().hex[:12]
        self._start = 0.0
        self._code = grpc.StatusCode.OK

    def __enter__(self) -> "_Call":
        self._start = time.monotonic()
        if self._span is not None:
            self._span.__enter__()
            annotate(**{"pycrio.request_id": self._request_id}, **self._ids)
        structlog.contextvars.bind_contextvars(request_id=self._request_id, method=self._short, **self._ids)
        return self

    def __exit__(self, *exc: object) -> None:
        elapsed = time.monotonic() - self._start
        if exc[0] is GeneratorExit and self._code == grpc.StatusCode.OK:
            self._code = grpc.StatusCode.CANCELLED  # a stream the client went away from
        level = "debug" if self._short in _QUIET_METHODS and self._code == grpc.StatusCode.OK else "info"
        getattr(_log, level)("rpc", code=self._code.name, ms=round(elapsed * 1000, 2))
        for observer in self._observers:
            try:
                observer.rpc_finished(self._short, self._code.name, elapsed)
            except Exception:  # metrics must never fail a call
                _log.exception("rpc observer failed")
        structlog.contextvars.unbind_contextvars("request_id", "method", *self._ids)
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
            if isinstance(error, PycrioError | NotImplementedError):
                _log.info("rpc failed", code=self._code.name, error=bounded(str(error)))
            else:
                _log.exception("rpc crashed", code=self._code.name)
            self._context.abort(self._code, status_message_for(error))
            raise  # unreachable: abort raises


# Request fields that name the object an RPC is about, bound to its log lines.
_ID_FIELDS = ("pod_sandbox_id", "container_id")


def object_ids(request: Any) -> dict[str, str]:
    """The ids of the pod, container, image or pod name a request is about (empty fields left out)."""
    ids = {name: _text(request, name) for name in _ID_FIELDS}
    ids["image"] = _text(getattr(request, "image", None), "image")
    metadata = getattr(getattr(request, "config", None), "metadata", None)
    ids["name"] = _text(metadata, "name")
    ids["namespace"] = _text(metadata, "namespace")
    return {key: value for key, value in ids.items() if value}


def _text(message: Any, name: str) -> str:
    value = getattr(message, name, None)
    return value if isinstance(value, str) else ""


def _is_abort(error: Exception, context: grpc.ServicerContext) -> bool:
    """True for the exception grpc raises from context.abort (already carrying a status)."""
    state = getattr(context, "_state", None)
    return bool(state is not None and getattr(state, "aborted", False))
